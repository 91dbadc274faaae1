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
    mix(
        project,
        target,
        MixOptions(ducking=settings.mix.ducking, loudness=settings.mix.loudness),
        hook,
    )
    write_report(project)


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
        if expected_version is not None and version(folder) != expected_version:
            raise StaleEdit("The project changed since this page read it.", "Reload the line.")
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
        if expected_version is not None and version(folder) != expected_version:
            raise StaleEdit("The project changed since this page read it.", "Reload the line.")
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
