"""The dub, composed from the stages. The CLI and (later) the server call these functions.

Everything that can be checked before work starts is checked first: the input is media with
audio, the languages are known, each engine supports them, its models are available, and
no output would overwrite a user's file. Only then does the first stage run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.engines.asr import AsrEngine, get_asr_engine
from octavia_cli.engines.mt import get_translation_engine
from octavia_cli.errors import InputError, OctaviaError
from octavia_cli.languages import normalize_language
from octavia_cli.media.ffmpeg import probe
from octavia_cli.models.catalog import preflight
from octavia_cli.progress import ProgressHook, no_progress
from octavia_cli.project.manifest import (
    MANIFEST,
    Project,
    check_project_place,
    default_project_folder,
)
from octavia_cli.project.records import Transcript, stable_hash
from octavia_cli.stages.extract import extract
from octavia_cli.stages.fit import FitOptions, fit
from octavia_cli.stages.fit import report_path as fit_report_path
from octavia_cli.stages.mix import MixOptions, mix
from octavia_cli.stages.mux import check_output, check_output_format, default_output, mux
from octavia_cli.stages.subtitle import (
    SubtitleMode,
    Track,
    build_track,
    options_from,
    write_tracks,
)
from octavia_cli.stages.synthesize import choose_voice, synthesize
from octavia_cli.stages.transcribe import transcribe
from octavia_cli.stages.translate import TranslateOptions, translate
from octavia_cli.text.cues import SubtitleFormat, format_for

logger = logging.getLogger(__name__)


class EngineCache:
    """Engines kept loaded between runs (``serve``'s workers): the last speech recogniser
    and translator used, replaced (and freed) when a run needs a different one."""

    def __init__(self) -> None:
        self._engines: dict[str, tuple[str, Any]] = {}

    def get(self, kind: str, key: str, make: Callable[[], Any]) -> Any:
        cached = self._engines.get(kind)
        if cached is not None and cached[0] == key:
            return cached[1]
        if cached is not None:
            cached[1].close()
        engine = make()
        self._engines[kind] = (key, engine)
        return engine

    def close(self) -> None:
        for _, engine in self._engines.values():
            engine.close()
        self._engines.clear()


# Set by a worker thread for the jobs it runs; None (the CLI): engines live for one run.
ENGINE_CACHE: ContextVar[EngineCache | None] = ContextVar("octavia_engines", default=None)


def _engine(settings: Settings, kind: str, make: Callable[[Settings], Any]) -> Any:
    """A fresh engine, or inside a worker the cached one for the same settings section."""
    cache = ENGINE_CACHE.get()
    if cache is None:
        return make(settings)
    key = stable_hash(dataclasses.asdict(getattr(settings, kind)), settings.general.device)
    return cache.get(kind, key, lambda: make(settings))


def asr_engine(settings: Settings) -> AsrEngine:
    return _engine(settings, "asr", get_asr_engine)


def translation_engine(settings: Settings) -> Any:
    return _engine(settings, "mt", get_translation_engine)


def separation_engine(settings: Settings) -> Any:
    """demucs, or None with separation off."""
    from octavia_cli.engines.separation import get_separation_engine

    if settings.separation.engine == "none":
        return None
    return _engine(settings, "separation", get_separation_engine)


def diarization_engine(settings: Settings) -> Any:
    """The diarizer, or None when it is off or one speaker was asked for."""
    from octavia_cli.engines.diarization import get_diarization_engine

    if settings.diarization.engine == "none" or settings.diarization.speakers == 1:
        return None
    return _engine(settings, "diarization", get_diarization_engine)


def fit_options(settings: Settings) -> FitOptions:
    return FitOptions(
        max_speed=settings.fit.max_speed,
        min_speed=settings.fit.min_speed,
        allow_video_stretch=settings.fit.allow_video_stretch,
        max_video_stretch=settings.fit.max_video_stretch,
    )


def _release(engine: Any) -> None:
    """Free a stage's models once it is done, so that on a GPU only one stage's models are
    in memory at a time (a worker keeps them loaded between jobs instead)."""
    if engine is not None and ENGINE_CACHE.get() is None:
        engine.close()


@dataclass(frozen=True)
class DubRequest:
    """What ``octavia dub`` was asked to do."""

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


# Real-time factors measured with bench/dub_bench.py (2 CPU cores, offline preset) and
# typical of the quality set on one GPU; a plan's time is an order of magnitude, no more.
PLAN_RTF = {("offline", "cpu"): 0.6, ("offline", "cuda"): 0.3, ("quality", "cpu"): 4.0,
            ("quality", "cuda"): 0.3}  # fmt: skip


def plan(request: DubRequest, settings: Settings) -> dict[str, Any]:
    """What a dub would do, checked like a real run but running nothing (``--dry-run``)."""
    from octavia_cli.devices import resolve_device
    from octavia_cli.models.catalog import installed_path, required_models
    from octavia_cli.stages.synthesize import choose_voice

    media = probe(request.source)
    targets = tuple(dict.fromkeys(normalize_language(t) for t in request.targets))
    source = normalize_language(request.source_language) if request.source_language else None
    device = resolve_device(settings.general.device)
    voices = {}
    problems: list[str] = []
    translator = get_translation_engine(settings)
    for target in targets:
        try:
            engine, voice = choose_voice(settings, target)
            voices[target] = f"{engine.name}:{Path(voice).name or voice}"
            if source is not None:
                translator.check_pair(source, target)
        except OctaviaError as exc:
            problems.append(str(exc))
    models = [
        {"name": m.name, "size_mb": m.size_mb, "cached": installed_path(m, settings) is not None}
        for m in required_models(settings, source, targets)
    ]
    separating = settings.separation.engine != "none"
    diarizing = settings.diarization.engine != "none" and settings.diarization.speakers != 1
    stages = ["extract", *(["separate"] if separating else []), "transcribe", "diarize"] + [
        f"{stage}:{t}" for t in targets for stage in ("translate", "synthesize", "fit", "mix",
                                                      "mux")
    ]  # fmt: skip
    seconds = media.duration_s
    rate = media.audio_sample_rate_hz or 48_000
    from octavia_cli.stages.extract import MAX_CHANNELS

    channels = min(max(media.audio_channels, 1), MAX_CHANNELS)
    work_bytes = seconds * (rate * channels * 2 + 16_000 * 2) + len(targets) * seconds * (
        rate * channels * 2 * 2 + 24_000 * 2
    )
    return {
        "input": str(request.source),
        "duration_s": round(seconds, 2),
        "source_language": source or "detect",
        "targets": list(targets),
        "outputs": {t: str(p) for t, p in output_paths(request, media.has_video).items()},
        "device": device,
        "engines": {
            "asr": f"{settings.asr.engine}:{settings.asr.model}",
            "mt": settings.mt.engine
            + (f":{settings.mt.model}" if settings.mt.engine == "transformers" else ""),
            "tts": voices,
            "separation": f"demucs:{settings.separation.model}" if separating else "none",
            "diarization": (
                settings.diarization.engine
                + (
                    f":{settings.diarization.model}"
                    if settings.diarization.engine == "pyannote"
                    else ""
                )
            )
            if diarizing
            else "none (one speaker)",
        },
        "models": models,
        "stages": stages,
        "problems": problems,
        "estimated_s": round(
            seconds
            * PLAN_RTF.get((settings.general.preset, device), 1.0)
            * (1 + 0.3 * (len(targets) - 1)),
            1,
        ),
        "work_disk_mb": round(work_bytes / 1e6, 1),
    }


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given (a quoted glob such as ``'episodes/*.mp3'`` expanded), and the media
    files directly inside each folder (sorted). Octavia's own outputs (``talk.es.mp4``
    beside ``talk.mp4``) are left out when their source is among the inputs, so running
    ``octavia dub episodes/*.mp3`` again does not dub the dubs."""
    import glob

    from octavia_cli.media.ffmpeg import AUDIO_FORMATS, VIDEO_AUDIO_CODECS

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
) -> BatchResult:
    """Dub each request in turn with the models kept loaded between files; a file that
    fails is recorded and the batch goes on."""
    result = BatchResult()
    cache = EngineCache()
    token = ENGINE_CACHE.set(cache)
    try:
        for index, request in enumerate(requests, start=1):
            if on_file is not None:
                on_file(index, len(requests), request.source)
            try:
                result.done[request.source] = dub(request, settings, hook)
            except OctaviaError as exc:
                logger.error("%s: %s", request.source, exc)
                result.failed[request.source] = exc
    finally:
        ENGINE_CACHE.reset(token)
        cache.close()
    return result


def open_project(source: Path, workdir: Path | None) -> Project:
    probe(source)  # a clear error for a missing or non-media input before any folder exists
    return Project.open(default_project_folder(source, workdir), source)


def asr_options_hash(settings: Settings) -> str:
    return stable_hash(settings.asr.beam_size, settings.asr.vad_filter, settings.asr.compute_type)


XTTS_CHARS_PER_S = 14.0  # letters and digits a second, XTTS v2 at speed 1 (typical)


def translate_options(settings: Settings, target: str) -> TranslateOptions:
    """Glossary and length control from the settings; the speech rate is measured with the
    voice that will speak ``target`` (length control is off if no voice can)."""
    from octavia_cli.text.glossary import Glossary, load_glossary
    from octavia_cli.text.length import measure_rate

    glossary = load_glossary(Path(settings.mt.glossary)) if settings.mt.glossary else Glossary()
    if not settings.mt.length_control:
        return TranslateOptions(glossary, None, settings.mt.candidates)
    try:
        engine, voice = choose_voice(settings, target)
    except OctaviaError:
        return TranslateOptions(glossary, None, settings.mt.candidates)

    def rate(texts: list[str]) -> float:
        if not voice:  # a voice cloned from the source later: XTTS's usual rate until then
            return XTTS_CHARS_PER_S
        return measure_rate(engine, voice, target, texts)

    return TranslateOptions(glossary, settings.fit.max_speed, settings.mt.candidates, rate)


def prepare_transcript(
    project: Project,
    source: Path,
    settings: Settings,
    language: str | None,
    hook: ProgressHook,
    asr: AsrEngine | None = None,
    *,
    speakers: bool = False,
) -> Transcript:
    """Run extract, separate (when on), transcribe and, with ``speakers``, diarize; each is
    skipped if already done. Each stage's models are freed before the next one loads."""
    from octavia_cli.engines.diarization import SpeakerCount
    from octavia_cli.stages.diarize import diarize
    from octavia_cli.stages.separate import separate

    asr = asr or asr_engine(settings)
    asr.check(language)
    extract(project, source, hook)
    separator = separation_engine(settings) if speakers else None
    try:
        separate(project, separator, hook)
    finally:
        _release(separator)
    try:
        transcript = transcribe(
            project, asr, language, hook, options_hash=asr_options_hash(settings)
        )
    finally:
        _release(asr)
    if speakers:
        diarizer = diarization_engine(settings)
        try:
            diarize(project, diarizer, SpeakerCount.from_settings(settings), hook)
        finally:
            _release(diarizer)
    return transcript


def dub(request: DubRequest, settings: Settings, hook: ProgressHook = no_progress) -> DubResult:
    """Dub ``request.source`` into each target language; return where the outputs are."""
    source = request.source
    targets = tuple(dict.fromkeys(normalize_language(t) for t in request.targets))
    if not targets:
        raise InputError("No target language given.", "Add --to LANG, e.g. --to es.")
    source_language = (
        normalize_language(request.source_language) if request.source_language else None
    )
    media = probe(source)
    if not media.has_audio:
        raise InputError(
            f"{source} has no audio track, so there is no speech to dub.",
            "Give a video or audio file with sound.",
        )

    # Check every model and engine against every language before any work starts.
    preflight(settings, source_language, targets)
    asr = asr_engine(settings)
    asr.check(source_language)
    from octavia_cli.engines.diarization import SpeakerCount

    SpeakerCount.from_settings(settings)  # a bad range fails now
    diarizer = diarization_engine(settings)
    if diarizer is not None:
        diarizer.check()
    translator = translation_engine(settings)
    for target in targets:
        if source_language is not None:
            if source_language == target:
                raise InputError(f"The source is already in '{target}'.", "Choose another --to.")
            translator.check_pair(source_language, target)
        choose_voice(settings, target)

    options = {target: translate_options(settings, target) for target in targets}
    MixOptions(loudness=settings.mix.loudness).target_lufs(-20.0)  # a bad value fails now
    outputs = output_paths(request, media.has_video)
    folder = default_project_folder(source, request.workdir)
    check_project_place(folder, tuple(outputs.values()))
    project = Project.open(folder, source)
    for output in outputs.values():
        check_output(project, output, source, request.force)

    result = DubResult(project.folder)
    with project.locked():
        began = time.monotonic()
        transcript = prepare_transcript(
            project, source, settings, source_language, hook, asr, speakers=True
        )
        result.source_language = transcript.language
        result.speakers = len(project.speakers)
        if settings.separation.engine == "none":
            result.notes.append(
                "no source separation: the original voices are ducked deeply under the dub "
                "(turn on demucs with --separate for a clean background)"
            )
        # Every language's translation first, so the translation model is freed before the
        # speech models load (on a GPU, one stage's models at a time).
        try:
            for target in targets:
                translate(project, target, translator, hook, options[target])
        finally:
            _release(translator)
        for target in targets:
            synthesize(project, target, settings, hook)
            fit(
                project,
                target,
                fit_options(settings),
                hook,
            )
            result.timing[target] = json.loads(
                project.path(fit_report_path(target)).read_text(encoding="utf-8")
            )
            mix(
                project,
                target,
                MixOptions(ducking=settings.mix.ducking, loudness=settings.mix.loudness),
                hook,
            )
            result.outputs[target] = mux(
                project, source, target, outputs[target], request.force, hook,
                replace_audio=request.replace_audio,
            )  # fmt: skip
        result.stage_seconds = {name: record.seconds for name, record in project.stages.items()}
        from octavia_cli.project.report import write_report

        result.report = write_report(project)
        logger.info("dub finished in %.1f s", time.monotonic() - began)
    return result


@dataclass(frozen=True)
class SubtitleRequest:
    """What ``octavia subtitles`` was asked to do."""

    input: Path  # media, or a project folder
    targets: tuple[str, ...] = ()  # empty: subtitles in the spoken language
    source_language: str | None = None
    output: Path | None = None  # None: beside the source
    fmt: SubtitleFormat | None = None  # None: from the output's extension, else SRT
    mode: SubtitleMode = SubtitleMode.FILE
    workdir: Path | None = None
    force: bool = False
    write: bool = True  # False: build the cues only (printed to stdout by the CLI)


@dataclass
class SubtitleResult:
    project_folder: Path
    language: str
    language_probability: float
    tracks: list[Track]
    outputs: list[Path]


def subtitle_format(request: SubtitleRequest) -> SubtitleFormat:
    if request.fmt is not None:
        return request.fmt
    if request.output is not None and request.mode is SubtitleMode.FILE:
        return format_for(request.output) or SubtitleFormat.SRT
    return SubtitleFormat.SRT


def subtitle_outputs(
    request: SubtitleRequest, source: Path, languages: list[str], tagged: bool
) -> dict[str, Path]:
    """Where each output goes: ``talk.srt`` (spoken language) and ``talk.es.srt`` beside the
    source; ``talk.subtitled.mp4`` for one video with every track embedded;
    ``talk.es.subtitled.mp4`` for each burnt-in language. ``-o`` replaces the default and
    needs ``{lang}`` when it stands for several files."""
    fmt = subtitle_format(request)

    def default(language: str) -> Path:
        tag = f".{language}" if tagged else ""
        if request.mode is SubtitleMode.FILE:
            return source.with_name(f"{source.stem}{tag}.{fmt.value}")
        if request.mode is SubtitleMode.EMBED:
            return source.with_name(f"{source.stem}.subtitled{source.suffix}")
        return source.with_name(f"{source.stem}{tag}.subtitled{source.suffix}")

    keys = ["*"] if request.mode is SubtitleMode.EMBED else languages
    if request.output is None:
        return {key: default(key) for key in keys}
    if len(keys) > 1:
        if "{lang}" not in str(request.output):
            raise InputError(
                "With several --to languages, -o must contain {lang}.",
                "For example: -o 'subs/talk.{lang}.srt'.",
            )
        return {key: Path(str(request.output).replace("{lang}", key)) for key in keys}
    return {keys[0]: Path(str(request.output).replace("{lang}", keys[0]))}


def _subtitle_project(request: SubtitleRequest) -> tuple[Project, Path | None]:
    """The project for ``request.input`` and the source media, if it is still there."""
    if request.input.is_dir() and (request.input / MANIFEST).exists():
        project = Project.load(request.input)
        source = Path(project.source_path)
        if source.exists():
            return Project.open(request.input, source), source
        return project, None
    probe(request.input)
    folder = default_project_folder(request.input, request.workdir)
    outputs = () if request.output is None else (request.output,)
    if request.write and request.output is None:  # the subtitles go beside the input
        outputs = (request.input,)
    check_project_place(folder, outputs)
    return Project.open(folder, request.input), request.input


def subtitles(
    request: SubtitleRequest, settings: Settings, hook: ProgressHook = no_progress
) -> SubtitleResult:
    """Transcribe (and translate) ``request.input`` unless its project already has the
    result, then build cues by the subtitle rules and write them as asked."""
    targets = list(dict.fromkeys(normalize_language(t) for t in request.targets))
    source_language = (
        normalize_language(request.source_language) if request.source_language else None
    )
    project, source = _subtitle_project(request)
    media = probe(source) if source is not None else project.media
    if source is None and (project.transcript is None or request.mode is not SubtitleMode.FILE):
        raise InputError(
            f"The source of {project.folder} ({project.source_path}) is gone.",
            "Put the file back, or give the media file instead of the project.",
        )
    if media is not None and not media.has_audio:
        raise InputError(f"{source} has no audio track, so there is no speech to subtitle.")
    if request.mode is not SubtitleMode.FILE and not (media and media.has_video):
        raise InputError(
            f"--{request.mode.value} needs a video, and {request.input} has no picture.",
            "Write a subtitle file instead (leave out --embed/--burn-in).",
        )
    preflight(
        settings,
        source_language or (project.transcript.language if project.transcript else None),
        tuple(targets),
    )
    asr = asr_engine(settings) if project.transcript is None or source else None
    if asr is not None:
        asr.check(source_language)
    translator = translation_engine(settings) if targets else None
    known_language = source_language or (
        project.transcript.language if project.transcript else None
    )
    if translator is not None and known_language is not None:
        for target in targets:
            if target == known_language:
                continue
            translator.check_pair(known_language, target)
    options = {target: translate_options(settings, target) for target in targets}
    media_path = source or Path(project.source_path)
    spoken = known_language

    def output_paths_for(spoken: str | None) -> dict[str, Path]:
        if not request.write:
            return {}
        paths = subtitle_outputs(
            request, media_path, targets or [spoken or "und"], tagged=bool(targets)
        )
        for path in paths.values():
            check_output(project, path, media_path, request.force)
        return paths

    # Checked before any work; names that depend on the spoken language are checked again
    # once it is detected.
    paths = output_paths_for(spoken)

    with project.locked():
        if source is not None and asr is not None:
            transcript = prepare_transcript(project, source, settings, source_language, hook, asr)
        else:
            transcript = project.require_transcript()
        languages = targets or [transcript.language]
        for target in languages:
            if target != transcript.language:
                assert translator is not None
                translate(project, target, translator, hook, options[target])
        options = options_from(settings.subtitles)
        tracks = [build_track(project, language, options) for language in languages]
        outputs: list[Path] = []
        if request.write:
            if spoken != transcript.language:
                paths = output_paths_for(transcript.language)
            outputs = write_tracks(
                project,
                media_path,
                tracks,
                request.mode,
                subtitle_format(request),
                paths,
                request.force,
                hook,
            )
    return SubtitleResult(
        project.folder, transcript.language, transcript.language_probability, tracks, outputs
    )
