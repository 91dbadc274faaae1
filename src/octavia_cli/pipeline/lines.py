"""One line of a dubbed project, edited and dubbed again in context (``octavia review``).

A new translation of a line is spoken again with its speaker's voice at its speaker's pace
(so no other line is spoken again), fitted, checked (spoken again if the check fails, as in
a dub) and mixed; the project stays the single source of truth, written atomically under
its lock, so a CLI run afterwards sees the edit. Before a line changes, what it was (its
text, its clip record and audio) is kept as a take under ``review/takes/``; the last
:data:`KEPT_TAKES` can be brought back.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings, load_settings
from octavia_cli.errors import InputError
from octavia_cli.files import atomic_write_bytes
from octavia_cli.pipeline.checking import fit_and_check
from octavia_cli.pipeline.runner import Runner, runner_for
from octavia_cli.progress import ProgressHook, no_progress
from octavia_cli.project.manifest import MANIFEST, Project
from octavia_cli.project.records import Clip, Segment
from octavia_cli.project.report import write_report
from octavia_cli.stages.mix import MixOptions, mix
from octavia_cli.stages.synthesize import synthesize

KEPT_TAKES = 5
TAKES = "review/takes"


class StaleEdit(InputError):
    """The project changed since the page read it (another tab, or a CLI run)."""


def version(folder: Path) -> str:
    """What an edit must name to be applied: when project.json was last written (a string:
    nanoseconds lose their last digits as a JavaScript number)."""
    return str((folder / MANIFEST).stat().st_mtime_ns)


def _check_version(folder: Path, expected: str | None) -> None:
    """Raises StaleEdit if the project is no longer at the version the page read."""
    if expected is not None and version(folder) != expected:
        raise StaleEdit("The project changed since this page read it.", "Reload it.")


def line_settings(project: Project, target: str, base: Settings | None = None) -> Settings:
    """The settings a line of ``target`` is spoken again with: the engine that spoke the
    dub (whatever this machine's preset would pick), over ``base`` (the user's)."""
    settings = base or load_settings({})
    record = project.stages.get(f"synthesize:{target}")
    if record is None:
        raise InputError(f"Nothing in {project.folder} is dubbed into '{target}' yet.")
    return replace(settings, tts=replace(settings.tts, engine=record.info.engine))


def _segment(project: Project, line_id: str, target: str) -> Segment:
    segment = next((s for s in project.require_transcript().segments if s.id == line_id), None)
    if segment is None or target not in segment.translations:
        raise InputError(f"There is no line {line_id} dubbed into '{target}'.")
    return segment


def _takes_file(project: Project, target: str, line_id: str) -> Path:
    return project.path(f"{TAKES}/{target}/{line_id}.json")


def takes(project: Project, target: str, line_id: str) -> list[dict[str, Any]]:
    """The line's earlier takes, newest first (at most :data:`KEPT_TAKES`)."""
    try:
        return list(json.loads(_takes_file(project, target, line_id).read_text("utf-8")))
    except (OSError, ValueError):
        return []


def _keep_take(project: Project, target: str, segment: Segment) -> None:
    """Keep what the line is now as a take (its text, clip record and audio)."""
    clip = segment.clips.get(target)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"{time.time() % 1:.3f}"[1:]
    entry: dict[str, Any] = {"text": segment.translations[target].text, "saved_at": stamp,
                             "clip": clip.to_dict() if clip else None, "audio": None}  # fmt: skip
    check = segment.checks.get(target)
    best = check.take(clip.take) if check is not None and clip is not None else None
    if best is not None:
        entry["cer"], entry["heard"] = best.cer, best.heard
    if clip is not None and clip.path and project.path(clip.path).exists():
        kept = f"{TAKES}/{target}/{segment.id}.{stamp}.wav"
        project.path(kept).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project.path(clip.path), project.path(kept))
        entry["audio"] = kept
    history = [entry, *takes(project, target, segment.id)]
    for dropped in history[KEPT_TAKES:]:
        if dropped.get("audio"):
            project.path(dropped["audio"]).unlink(missing_ok=True)
    path = _takes_file(project, target, segment.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(history[:KEPT_TAKES], indent=1).encode("utf-8"))


def _finish(
    project: Project, target: str, settings: Settings, hook: ProgressHook, runner: Runner,
    speak: bool,
) -> None:  # fmt: skip
    """Speak what changed (at the speakers' kept paces), fit, check, mix, and the report."""
    engine = runner.speech(settings, target)
    try:
        if speak:
            synthesize(project, target, engine, settings, hook, keep_paces=True)
        fit_and_check(project, target, settings, hook, runner, engine)
    finally:
        runner.release(engine)
    mix(project, target, mix_options(project, target, settings), hook)
    write_report(project)


MIX_CHOICES = "review/mix.json"


def mix_options(project: Project, target: str, settings: Settings) -> MixOptions:
    """The mix options chosen on the page for ``target`` (a re-dubbed line keeps them), else
    the settings'. (Without separation the mix ducks the original voices deeply whatever
    the preset: the recorded ``ducking`` is then not the one asked for.)"""
    try:
        chosen = json.loads(project.path(MIX_CHOICES).read_text("utf-8"))[target]
        return MixOptions(ducking=str(chosen["ducking"]), loudness=str(chosen["loudness"]))
    except (OSError, ValueError, KeyError, TypeError):
        return MixOptions(ducking=settings.mix.ducking, loudness=settings.mix.loudness)


def redub_line(
    folder: Path, target: str, line_id: str, text: str, expected_version: str | None,
    settings: Settings | None = None, hook: ProgressHook = no_progress,
    runner: Runner | None = None,
) -> None:  # fmt: skip
    """Give line ``line_id`` of ``target`` the translation ``text`` and dub it again in
    context (what it was is kept as a take).

    Raises:
        StaleEdit: the project changed since ``expected_version``.
        InputError: no such line; another run holds the project.
    """
    project = Project.load(folder)
    with project.locked(), runner_for(runner) as run:
        _check_version(folder, expected_version)
        segment = _segment(project, line_id, target)
        chosen = line_settings(project, target, settings)
        _keep_take(project, target, segment)
        translation = segment.translations[target]
        segment.translations[target] = replace(translation, text=" ".join(text.split()),
                                               fallback="", condensed=False)  # fmt: skip
        project.save()
        _finish(project, target, chosen, hook, run, speak=True)


def restore_take(
    folder: Path, target: str, line_id: str, index: int, expected_version: str | None,
    settings: Settings | None = None, hook: ProgressHook = no_progress,
    runner: Runner | None = None,
) -> None:  # fmt: skip
    """Bring back take ``index`` (0: the newest kept) of a line: its text and its audio,
    as they were (nothing is spoken); what the line is now becomes a take in turn."""
    project = Project.load(folder)
    with project.locked(), runner_for(runner) as run:
        _check_version(folder, expected_version)
        segment = _segment(project, line_id, target)
        history = takes(project, target, line_id)
        if not 0 <= index < len(history):
            raise InputError(f"Line {line_id} has no take {index} to bring back.")
        chosen = line_settings(project, target, settings)
        wanted = history[index]
        kept = project.path(wanted["audio"]) if wanted.get("audio") else None
        audio = kept.read_bytes() if kept is not None and kept.exists() else None
        _keep_take(project, target, segment)  # (may drop the oldest take's file: read first)
        segment.translations[target] = replace(segment.translations[target], text=wanted["text"])
        clip = Clip.from_dict(wanted["clip"]) if wanted.get("clip") and audio else None
        if clip is not None and audio is not None:
            atomic_write_bytes(project.path(clip.path), audio)
            segment.clips[target] = clip
        project.save()
        _finish(project, target, chosen, hook, run, speak=clip is None)


def _dubbed(project: Project) -> list[str]:
    return sorted(name.split(":", 1)[1] for name in project.stages if name.startswith("mix:"))


def edit_speaker(
    folder: Path, speaker_id: str, label: str | None, voice: str | None,
    expected_version: str | None, settings: Settings | None = None,
    hook: ProgressHook = no_progress, runner: Runner | None = None,
) -> None:  # fmt: skip
    """Rename a speaker (``label``; the label of another speaker merges them: they share
    the first one's voice) or give them a ``voice``; where that changes who voices a line,
    those lines are spoken again and every dubbed language refitted, checked and mixed.

    Raises:
        StaleEdit: the project changed since ``expected_version``.
        InputError: no such speaker; a voice the engine does not have.
    """
    project = Project.load(folder)
    with project.locked(), runner_for(runner) as run:
        _check_version(folder, expected_version)
        entry = project.speaker(speaker_id)
        if entry is None:
            raise InputError(f"There is no speaker {speaker_id} in {folder}.")
        before = (project.speaker_groups(), {s.id: s.voice for s in project.speakers})
        if label is not None:
            entry.label = " ".join(label.split())[:64] or entry.id
        if voice is not None:
            entry.voice = voice.strip()
        after = (project.speaker_groups(), {s.id: s.voice for s in project.speakers})
        if before == after:  # a new name only: nothing is heard differently
            project.save()
            return
        chosen = {target: line_settings(project, target, settings) for target in _dubbed(project)}
        project.save()
        for target, target_settings in chosen.items():
            _finish(project, target, target_settings, hook, run, speak=True)


def subtitle_rules(settings: Settings | None = None) -> Any:
    from octavia_cli.stages.subtitle import options_from

    return options_from((settings or load_settings({})).subtitles)


def _cues_file(project: Project, target: str) -> Path:
    return project.path(f"subtitles/{target}.cues.json")


def subtitle_cues(project: Project, target: str, settings: Settings | None = None) -> list[Any]:
    """``target``'s subtitle cues: as edited and saved, else made from the dub's lines by the
    subtitle rules (as ``octavia subtitles`` makes them)."""
    from octavia_cli.stages.subtitle import build_track
    from octavia_cli.text.cues import Cue

    try:
        saved = json.loads(_cues_file(project, target).read_text("utf-8"))
        return [Cue(float(c["start_s"]), float(c["end_s"]), list(c["lines"])) for c in saved]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return build_track(project, target, subtitle_rules(settings)).cues


def save_subtitles(
    folder: Path, target: str, cues: list[dict[str, Any]], expected_version: str | None
) -> None:
    """Keep edited cues (``start_s``, ``end_s``, ``text``) as the project's subtitles of
    ``target``, which export writes out.

    Raises:
        StaleEdit: the project changed since ``expected_version``.
        InputError: a cue without text, ending before it starts, or out of order.
    """
    project = Project.load(folder)
    with project.locked():
        _check_version(folder, expected_version)
        if target not in _dubbed(project):
            raise InputError(f"Nothing in {folder} is dubbed into '{target}'.")
        kept, last_end = [], 0.0
        for number, cue in enumerate(cues, start=1):
            start, end = float(cue["start_s"]), float(cue["end_s"])
            lines = [line.strip() for line in str(cue["text"]).splitlines() if line.strip()]
            if not lines:
                raise InputError(f"Cue {number} has no text.", "Write it, or remove the cue.")
            if end <= start or start < last_end - 1e-3:
                raise InputError(
                    f"Cue {number} ({start:.2f}-{end:.2f} s) ends before it starts or overlaps "
                    "the one before.",
                    "Give it times after the cue before it.",
                )
            kept.append({"start_s": round(start, 3), "end_s": round(end, 3), "lines": lines})
            last_end = end
        path = _cues_file(project, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(kept, indent=1, ensure_ascii=False).encode())
        project.save()  # a new version: other tabs reload


def export(
    folder: Path, force: bool, settings: Settings | None = None,
    hook: ProgressHook = no_progress,
) -> list[Path]:  # fmt: skip
    """Write each dubbed language's file and its subtitles (``.srt``) where ``octavia dub``
    writes them (``<stem>.<lang>.<ext>`` beside the source), under the same rule: a file that
    is not Octavia's own output is replaced only with ``force``.

    Raises:
        InputError: the source is gone, or an output exists (without ``force``).
    """
    from octavia_cli.media.ffmpeg import probe
    from octavia_cli.pipeline.dub import DubRequest, output_paths

    project = Project.load(folder)
    source = Path(project.source_path)
    if not source.exists():
        raise InputError(f"The dubbed file {source} is gone.", "Put it back to export.")
    targets = tuple(_dubbed(project))
    request = DubRequest(source=source, targets=targets, force=force)
    return export_to(folder, output_paths(request, probe(source).has_video), force, settings,
                     hook)  # fmt: skip


def export_to(
    folder: Path, outputs: dict[str, Path], force: bool = True, settings: Settings | None = None,
    hook: ProgressHook = no_progress,
) -> list[Path]:  # fmt: skip
    """Mux each language of ``outputs`` (language -> path) into its path, its subtitles
    (``.srt``) beside it."""
    from octavia_cli.stages.mux import mux
    from octavia_cli.stages.subtitle import Track, write_file
    from octavia_cli.text.cues import SubtitleFormat

    project = Project.load(folder)
    source = Path(project.source_path)
    written: list[Path] = []
    with project.locked():
        for target, output in outputs.items():
            written.append(mux(project, source, target, output, force, hook))
            subtitles = output.with_suffix(".srt")
            track = Track(target, subtitle_cues(project, target, settings), True)
            written.append(write_file(project, track, SubtitleFormat.SRT, subtitles, force))
    return written


def edit_line(
    folder: Path, line_id: str, speaker: str | None, shift_s: float | None,
    expected_version: str | None, settings: Settings | None = None,
    hook: ProgressHook = no_progress, runner: Runner | None = None,
) -> None:  # fmt: skip
    """Give a line to another ``speaker`` (it is spoken again in their voice) or move it by
    ``shift_s`` seconds (its words with it, never before the line before it or past the
    next; it is fitted again where it now starts), in every dubbed language.

    Raises:
        StaleEdit: the project changed since ``expected_version``.
        InputError: no such line or speaker.
    """
    project = Project.load(folder)
    with project.locked(), runner_for(runner) as run:
        _check_version(folder, expected_version)
        segments = sorted(project.require_transcript().segments, key=lambda s: s.start_s)
        index = next((i for i, s in enumerate(segments) if s.id == line_id), None)
        if index is None:
            raise InputError(f"There is no line {line_id}.")
        segment = segments[index]
        if speaker is not None:
            if project.speaker(speaker) is None:
                raise InputError(f"There is no speaker {speaker}.", "Choose one of the list.")
            segment.speaker = speaker
        if shift_s:
            low = segments[index - 1].end_s if index else 0.0
            high = segments[index + 1].start_s if index + 1 < len(segments) else float("inf")
            shift = min(max(shift_s, low - segment.start_s), high - segment.end_s)
            segment.start_s = round(segment.start_s + shift, 3)
            segment.end_s = round(segment.end_s + shift, 3)
            for word in segment.words:
                word.start_s, word.end_s = (
                    round(word.start_s + shift, 3),
                    round(word.end_s + shift, 3),
                )
        chosen = {target: line_settings(project, target, settings) for target in _dubbed(project)}
        project.save()
        for target, target_settings in chosen.items():
            _finish(project, target, target_settings, hook, run, speak=True)


def remix(
    folder: Path,
    ducking: str,
    loudness: str,
    expected_version: str | None,
    hook: ProgressHook = no_progress,
) -> None:
    """Mix every dubbed language again with ``ducking`` (a preset) and ``loudness``
    (``match`` or LUFS); later re-dubs keep these.

    Raises:
        ConfigError: a preset or loudness the settings do not take.
    """
    from octavia_cli.config import parse_value

    ducking = str(parse_value("mix.ducking", ducking))
    loudness = str(parse_value("mix.loudness", loudness))
    project = Project.load(folder)
    with project.locked():
        _check_version(folder, expected_version)
        choices = {
            target: {"ducking": ducking, "loudness": loudness} for target in _dubbed(project)
        }
        path = project.path(MIX_CHOICES)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(choices, indent=1).encode("utf-8"))
        for target in choices:
            mix(project, target, MixOptions(ducking=ducking, loudness=loudness), hook)
        write_report(project)


def voice_choices(project: Project, target: str, settings: Settings | None = None) -> list[str]:
    """The voices a speaker of ``target`` can be given with the engine that dubbed it:
    espeak-ng's voices of the language with their variants, the Piper voice in use, or
    (XTTS) the stored voices of the library (none: cloned from their own lines)."""
    from octavia_cli.stages.synthesize import library

    chosen = line_settings(project, target, settings)
    engine = chosen.tts.engine
    if engine == "espeak-ng":
        from octavia_cli.engines.tts.espeak import (
            FEMALE_VARIANTS,
            MALE_VARIANTS,
            installed_voices,
        )

        tags = sorted({tag for code, tag, _ in installed_voices() if code == target})
        return [f"{tag}+{variant}" for tag in tags for variant in MALE_VARIANTS + FEMALE_VARIANTS]
    if engine == "xtts":
        return [profile.name for profile in library(chosen).list_voices()]
    return [chosen.tts.voice] if chosen.tts.voice else []
