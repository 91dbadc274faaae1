"""The dub, composed from the stages: checks first (:func:`prepare`), then the stages.

Everything that can be checked before work starts is checked by one function,
:func:`prepare`: the input is media with audio, the languages are known, each engine
supports them, its models are available, every option is valid, and no output would
overwrite a user's file. A run raises the first problem it finds; ``--dry-run``
(:func:`plan`) runs the very same checks and lists every problem, so the two always agree.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.devices import resolve_device
from octavia_cli.engines.diarization.base import SpeakerCount
from octavia_cli.errors import InputError, OctaviaError
from octavia_cli.languages import language_name
from octavia_cli.media.ffmpeg import AUDIO_FORMATS, VIDEO_AUDIO_CODECS, MediaInfo, probe
from octavia_cli.models.catalog import (
    check_licences,
    installed_path,
    licences,
    preflight,
    required_models,
)
from octavia_cli.pipeline.checking import fit_and_check
from octavia_cli.pipeline.runner import Runner, checker_settings, runner_for, shares_recogniser
from octavia_cli.pipeline.steps import (
    choose_voice,
    prepare_transcript,
    translate_options,
    translate_project,
)
from octavia_cli.progress import ProgressHook, no_progress
from octavia_cli.project.layout import timing_report_path as fit_report_path
from octavia_cli.project.manifest import Project, check_project_place, default_project_folder
from octavia_cli.project.outputs import check_output, check_output_format, default_output
from octavia_cli.project.records import Transcript
from octavia_cli.project.report import write_report
from octavia_cli.stages.extract import MAX_CHANNELS
from octavia_cli.stages.lipsync import LipSyncOptions, lipsync
from octavia_cli.stages.mix import MixOptions, mix
from octavia_cli.stages.mux import mux
from octavia_cli.stages.synthesize import synthesize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DubRequest:
    """What ``octavia dub`` was asked to do. Languages are normalised where they enter (the
    CLI, the API): ``targets`` are ISO 639-1 codes without duplicates."""

    source: Path
    targets: tuple[str, ...]
    source_language: str | None = None  # None: detect it
    output: Path | None = None  # None: <stem>.<lang>.<ext> beside the source
    workdir: Path | None = None  # None: the project folder goes beside the source
    force: bool = False
    replace_audio: bool = False  # True: the dub is the only audio track of a video


@dataclass
class DubResult:
    project_folder: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    source_language: str = ""
    timing: dict[str, dict] = field(default_factory=dict)  # target -> timing report
    report: Path | None = None  # report.html
    notes: list[str] = field(default_factory=list)  # said in the run's summary
    speakers: int = 0
    checks: dict[str, dict] = field(default_factory=dict)  # target -> the check stage's info


def output_paths(request: DubRequest, has_video: bool) -> dict[str, Path]:
    """``-o`` may name the file, or hold ``{lang}`` (several languages) and ``{stem}`` (the
    input's name without extension, for batches).

    Raises:
        InputError: several languages without ``{lang}``, or a format Octavia cannot write.
    """
    if request.output is None:
        return {t: default_output(request.source, t, has_video) for t in request.targets}
    pattern = str(request.output).replace("{stem}", request.source.stem)
    if len(request.targets) > 1 and "{lang}" not in pattern:
        raise InputError(
            "With several --to languages, -o must contain {lang}.",
            "For example: -o 'out/talk.{lang}.mp4'.",
        )
    paths = {t: Path(pattern.replace("{lang}", t)) for t in request.targets}
    for path in paths.values():
        check_output_format(path, has_video)
    return paths


@dataclass
class DubPlan:
    """What :func:`prepare` found: the run's inputs, checked, and the problems it saw."""

    request: DubRequest
    media: MediaInfo
    targets: tuple[str, ...]
    source_language: str | None
    outputs: dict[str, Path] = field(default_factory=dict)
    project: Project | None = None
    voices: dict[str, str] = field(default_factory=dict)  # target -> "engine:voice"
    problems: list[str] = field(default_factory=list)


def prepare(
    request: DubRequest, settings: Settings, runner: Runner, *, collect: bool = False
) -> DubPlan:
    """Every check of a dub, before any work. The engines the checks need come from
    ``runner`` (nothing is loaded), so the run uses the same ones.

    Raises:
        OctaviaError: the first problem, unless ``collect``: then every problem is listed
            in the plan (``--dry-run``). A missing or unreadable input always raises.
    """

    if not request.targets:
        raise InputError("No target language given.", "Add --to LANG, e.g. --to es.")
    media = probe(request.source)
    if not media.has_audio:
        raise InputError(
            f"{request.source} has no audio track, so there is no speech to dub.",
            "Give a video or audio file with sound.",
        )
    source_language = request.source_language
    plan = DubPlan(request, media, request.targets, source_language)

    def check(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except OctaviaError as exc:
            if not collect:
                raise
            plan.problems.append(str(exc))
            return None

    check(lambda: preflight(settings, source_language, request.targets))
    check(lambda: check_licences(settings, source_language, request.targets))
    check(lambda: runner.asr(settings).check(source_language))
    check(lambda: SpeakerCount.from_settings(settings))  # a range upside down
    diarizer = check(lambda: runner.diarizer(settings))
    if diarizer is not None:
        check(diarizer.check)
    translator = check(lambda: runner.translator(settings))
    for target in request.targets:
        if source_language == target:
            check(_same_language(target))
            continue
        if source_language is not None and translator is not None:
            check(partial(translator.check_pair, source_language, target))
        if settings.qa.mode != "off":
            check(partial(_check_hearing, runner, settings, target))
        chosen = check(partial(choose_voice, runner, settings, target))
        if chosen is not None:
            engine, voice = chosen
            plan.voices[target] = f"{engine.name}:{Path(voice).name or voice}"
    if settings.lipsync.enabled and media.has_video:
        check(partial(_check_lip_sync, runner, settings, media))
    check(lambda: MixOptions(loudness=settings.mix.loudness).target_lufs(-20.0))
    plan.outputs = check(lambda: output_paths(request, media.has_video)) or {}
    folder = default_project_folder(request.source, request.workdir)
    if check(lambda: _placed(folder, tuple(plan.outputs.values()))):
        plan.project = check(lambda: Project.open(folder, request.source))
    if plan.project is not None:
        for output in plan.outputs.values():
            check(partial(check_output, plan.project, output, request.source, request.force))
    return plan


def _check_detected(
    checked: DubPlan, transcript: Transcript, settings: Settings, runner: Runner
) -> None:
    """The checks that needed the spoken language, once it is detected; a failure says what
    was detected, how sure the recogniser was, and how to say what it is.

    Raises:
        OctaviaError: the first check that fails, of the same kind, its message prefixed by
            the detected language.
    """
    language = transcript.language
    try:
        translator = runner.translator(settings)
        for target in checked.targets:
            if target == language:
                _same_language(target)()
            translator.check_pair(language, target)
    except OctaviaError as exc:
        heard = (
            f"The spoken language was detected as {language_name(language)} ('{language}', "
            f"probability {transcript.language_probability:.2f}, heard in the first "
            f"{min(checked.media.duration_s, 30.0):.0f} s)"
        )
        raise type(exc)(
            f"{heard}, and then: {exc.message}",
            f"If it is another language, say which with --from (e.g. --from en). "
            f"{exc.hint or ''}".strip(),
        ) from None


def _check_hearing(runner: Runner, settings: Settings, target: str) -> None:
    """The check stage's recogniser knows ``target`` (a .en Whisper does not)."""
    try:
        runner.checker(settings).check(target)
    except OctaviaError as exc:
        raise type(exc)(
            f"The dubbed lines cannot be checked: {exc.message}",
            "Set qa.model to a multilingual Whisper model, or turn the checks off with --qa off.",
        ) from None


# Frames a second MuseTalk 1.5 re-draws: on 2 CPU cores, measured by bench/lipsync_bench.py
# (the full-size networks with random weights, batches of 8, fp32); on a GPU, MuseTalk's own
# figure (30 fps and more on a V100, fp16), not measured here.
LIPSYNC_CPU_FPS = 0.07
LIPSYNC_GPU_FPS = 30.0


def _check_lip_sync(runner: Runner, settings: Settings, media: MediaInfo) -> None:
    """Lip-sync can run: its packages are here, and the picture is not slowed under lines
    (the two are not combined); on the CPU it is allowed, with a warning and an estimate."""
    if settings.fit.allow_video_stretch:
        raise InputError(
            "Lip-sync cannot be combined with --allow-video-stretch: the slowed picture would "
            "need its mouths re-drawn at another pace.",
            "Leave out one of --lip-sync and --allow-video-stretch.",
        )
    runner.lipsync(settings).check()
    if resolve_device(settings.general.device) == "cpu":
        frames = media.duration_s * 25.0
        logger.warning(
            "lip-sync on the CPU is slow: up to %.0f minutes for this video if a speaking "
            "face is on screen throughout (%.2f frames a second on 2 cores; a GPU draws "
            "about %.0f)", frames / LIPSYNC_CPU_FPS / 60, LIPSYNC_CPU_FPS, LIPSYNC_GPU_FPS,
        )  # fmt: skip


def _placed(folder: Path, outputs: tuple[Path, ...]) -> bool:
    check_project_place(folder, outputs)
    return True


def _same_language(target: str) -> Callable[[], None]:
    def refuse() -> None:
        raise InputError(f"The source is already in '{target}'.", "Choose another --to.")

    return refuse


# Real-time factors measured with bench/dub_bench.py (2 CPU cores, offline preset) and
# typical of the quality set on one GPU; a plan's time is an order of magnitude, no more.
PLAN_RTF = {("offline", "cpu"): 0.6, ("offline", "cuda"): 0.3, ("quality", "cpu"): 4.0,
            ("quality", "cuda"): 0.3, ("ultra", "cpu"): 8.0, ("ultra", "cuda"): 0.6}  # fmt: skip


def plan(request: DubRequest, settings: Settings, runner: Runner | None = None) -> dict[str, Any]:
    """What a dub would do, checked by :func:`prepare` exactly as a run is, running nothing
    (``--dry-run``): its ``problems`` are what the run would refuse."""

    with runner_for(runner) as run:
        checked = prepare(request, settings, run, collect=True)
    media, targets, source = checked.media, checked.targets, checked.source_language
    device = resolve_device(settings.general.device)
    models = [
        {
            "name": m.name,
            "kind": m.kind,
            "size_mb": m.size_mb,
            "license": m.license,
            "cached": installed_path(m, settings) is not None,
        }
        for m in required_models(settings, source, targets)
    ]
    separating = settings.separation.engine != "none"
    diarizing = settings.diarization.engine != "none" and settings.diarization.speakers != 1
    per_language = ("translate", "synthesize", "fit",
                    *(["check"] if settings.qa.mode != "off" else []), "mix", "mux")  # fmt: skip
    lip_sync_s = 0.0
    if lip_sync_applies(settings, checked):
        per_language = (*per_language[:-1], "lipsync", "mux")
        # At most: a speaking face on screen throughout (MuseTalk runs at 25 fps).
        fps = LIPSYNC_CPU_FPS if device == "cpu" else LIPSYNC_GPU_FPS
        lip_sync_s = len(targets) * media.duration_s * 25.0 / fps
    stages = ["extract", *(["separate"] if separating else []), "transcribe", "diarize"] + [
        f"{stage}:{t}" for t in targets for stage in per_language
    ]
    seconds = media.duration_s
    rate = media.audio_sample_rate_hz or 48_000
    channels = min(max(media.audio_channels, 1), MAX_CHANNELS)
    work_bytes = seconds * (rate * channels * 2 + 16_000 * 2) + len(targets) * seconds * (
        rate * channels * 2 * 2 + 24_000 * 2
    )
    diarization = settings.diarization.engine + (
        f":{settings.diarization.model}" if settings.diarization.engine == "pyannote" else ""
    )
    return {
        "input": str(request.source),
        "duration_s": round(seconds, 2),
        "source_language": source or "detect",
        "targets": list(targets),
        "outputs": {t: str(p) for t, p in checked.outputs.items()},
        "device": device,
        "engines": {
            "asr": f"{settings.asr.engine}:{settings.asr.model}",
            "mt": settings.mt.engine
            + (f":{settings.mt.model}" if settings.mt.engine == "transformers" else ""),
            "tts": checked.voices,
            "separation": f"demucs:{settings.separation.model}" if separating else "none",
            "diarization": diarization if diarizing else "none (one speaker)",
            "lipsync": (
                f"{settings.lipsync.engine} (MuseTalk 1.5, MIT)"
                if lip_sync_applies(settings, checked)
                else "off"
            ),
            "checks": (
                f"faster-whisper:{checker_settings(settings).asr.model}, best of "
                f"{settings.tts.max_attempts} takes"
                if settings.qa.mode != "off"
                else "off"
            ),
        },
        "models": models,
        "licences": licences(settings, source, targets),
        "stages": stages,
        "problems": checked.problems,
        "estimated_s": round(
            seconds
            * PLAN_RTF.get((settings.general.preset, device), 1.0)
            * (1 + 0.3 * (len(targets) - 1))
            + lip_sync_s,
            1,
        ),
        "work_disk_mb": round(work_bytes / 1e6, 1),
    }


def dub(
    request: DubRequest,
    settings: Settings,
    hook: ProgressHook = no_progress,
    runner: Runner | None = None,
) -> DubResult:
    """Dub ``request.source`` into each target language; return where the outputs are.

    ``runner`` keeps the engines between calls (a batch, a worker); without one, each
    engine lives for its stage only."""
    with runner_for(runner) as run:
        checked = prepare(request, settings, run)
        assert checked.project is not None
        options = {t: translate_options(run, settings, t) for t in checked.targets}
        return _run(checked, checked.project, settings, hook, run, options)


def _run(
    checked: DubPlan, project: Project, settings: Settings, hook: ProgressHook, runner: Runner,
    options: dict[str, Any],
) -> DubResult:  # fmt: skip
    request, targets, source = checked.request, checked.targets, checked.request.source
    result = DubResult(project.folder)
    with project.locked():
        began = time.monotonic()
        # On a CPU, the line checks hear with the transcription's own Whisper (the offline
        # preset): kept loaded from transcription to the checks (a load is 0.6 s).
        hold = settings.qa.mode != "off" and shares_recogniser(settings)
        transcript = prepare_transcript(
            project,
            source,
            settings,
            checked.source_language,
            hook,
            runner,
            speakers=True,
            keep_recogniser=hold,
        )
        result.source_language = transcript.language
        if checked.source_language is None:  # detected: what prepare could not check
            _check_detected(checked, transcript, settings, runner)
        result.speakers = len(project.speakers)
        if settings.separation.engine == "none":
            result.notes.append(
                "no source separation: the original voices are ducked deeply under the dub "
                "(turn on demucs with --separate for a clean background)"
            )
        if settings.lipsync.enabled and not lip_sync_applies(settings, checked):
            result.notes.append("lip-sync: the output has no picture, so no mouth to re-draw")
        # Every language's translation first, so the translation model is freed before the
        # speech models load.
        translate_project(project, targets, settings, hook, runner, options)
        for target in targets:
            engine = runner.speech(settings, target)
            try:
                synthesize(project, target, engine, settings, hook)
                heard = fit_and_check(project, target, settings, hook, runner, engine)
            finally:
                runner.release(engine)
            if heard is not None:
                result.checks[target] = heard.to_dict()
            result.timing[target] = json.loads(
                project.path(fit_report_path(target)).read_text(encoding="utf-8")
            )
            mix(
                project,
                target,
                MixOptions(ducking=settings.mix.ducking, loudness=settings.mix.loudness),
                hook,
            )
            picture = None
            if lip_sync_applies(settings, checked):
                picture = _lip_sync(project, source, target, settings, hook, runner, result)
            result.outputs[target] = mux(
                project, source, target, checked.outputs[target], request.force, hook,
                replace_audio=request.replace_audio, picture=picture,
            )  # fmt: skip
        if hold:  # (the held one, if alive: nothing is built to be released)
            runner.release(runner.alive().get("asr"))
        result.stage_seconds = {name: record.seconds for name, record in project.stages.items()}

        result.report = write_report(project)
        logger.info("dub finished in %.1f s", time.monotonic() - began)
    return result


def lip_sync_applies(settings: Settings, checked: DubPlan) -> bool:
    """Whether the dub re-draws mouths: asked for, and the output is a video."""
    return (
        settings.lipsync.enabled
        and bool(checked.outputs)
        and all(
            checked.media.has_video and path.suffix.lower() in VIDEO_AUDIO_CODECS
            for path in checked.outputs.values()
        )
    )


def _lip_sync(
    project: Project, source: Path, target: str, settings: Settings, hook: ProgressHook,
    runner: Runner, result: DubResult,
) -> tuple[str, int] | None:  # fmt: skip
    """Run the lip-sync stage; the picture mux writes instead of the source's (None: no
    shot needed it, the source's picture is copied)."""
    engine = runner.lipsync(settings)
    try:
        info = lipsync(project, source, target, engine, lip_sync_options(settings), hook)
    finally:
        runner.release(engine)
    counts: dict[str, int] = {}
    for shot in info.shots:
        counts[shot["status"]] = counts.get(shot["status"], 0) + 1
    said = ", ".join(f"{n} {status}" for status, n in counts.items())
    result.notes.append(f"lip-sync ({target}): {len(info.shots)} shot(s): {said}")
    if not info.picture:
        return None
    return info.picture, info.rotation


def lip_sync_options(settings: Settings) -> LipSyncOptions:
    return LipSyncOptions(crf=settings.lipsync.crf, min_face_px=settings.lipsync.min_face_px)


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given (a quoted glob such as ``'episodes/*.mp3'`` expanded), and the media
    files directly inside each folder (sorted). Octavia's own outputs (``talk.es.mp4``
    beside ``talk.mp4``) are left out when their source is among the inputs, so running
    ``octavia dub episodes/*.mp3`` again does not dub the dubs."""
    import glob

    suffixes = set(AUDIO_FORMATS) | set(VIDEO_AUDIO_CODECS)
    files: list[Path] = []
    for item in inputs:
        if not item.exists() and glob.has_magic(str(item)):
            files += sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file())
        elif not item.is_dir():
            files.append(item)
        else:
            files += sorted(
                p
                for p in item.iterdir()
                if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
            )
    files = list(dict.fromkeys(files))
    if len(files) < 2:
        return files
    stems: dict[Path, set[str]] = {}
    for path in files:
        stems.setdefault(path.parent, set()).add(path.stem)
    kept = [p for p in files if not _is_octavia_output(p, stems[p.parent])]
    if len(kept) < len(files):
        logger.info("left out %d dub(s) of the other inputs", len(files) - len(kept))
    return kept


def _is_octavia_output(path: Path, stems: set[str]) -> bool:
    """``talk.es.mp4`` (a dub) or ``talk.subtitled.mp4`` beside ``talk.mp4``."""
    base, _, tag = path.stem.rpartition(".")
    if tag == "subtitled":
        return True
    return bool(base) and len(tag) == 2 and tag.isalpha() and base in stems


@dataclass
class BatchResult:
    done: dict[Path, DubResult] = field(default_factory=dict)
    failed: dict[Path, OctaviaError] = field(default_factory=dict)


def dub_batch(
    requests: list[DubRequest],
    settings: Settings,
    hook: ProgressHook = no_progress,
    on_file: Callable[[int, int, Path], None] | None = None,
    runner: Runner | None = None,
) -> BatchResult:
    """Dub each request in turn with the engines kept loaded between files; a file that
    fails is recorded and the batch goes on."""
    result = BatchResult()
    run = runner or Runner(keep=True)
    try:
        for index, request in enumerate(requests, start=1):
            if on_file is not None:
                on_file(index, len(requests), request.source)
            try:
                result.done[request.source] = dub(request, settings, hook, run)
            except OctaviaError as exc:
                logger.error("%s: %s", request.source, exc)
                result.failed[request.source] = exc
    finally:
        if runner is None:
            run.close()
    return result
