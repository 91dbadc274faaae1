"""Subtitles from the speech: the transcript (the dub project's own, so ``subtitles`` then
``dub`` transcribes once), translated where asked, cut into cues by the subtitle rules, and
written as files, embedded as tracks or burnt into the picture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from octavia_cli.config import Settings
from octavia_cli.errors import InputError
from octavia_cli.media.ffmpeg import probe
from octavia_cli.models.catalog import preflight
from octavia_cli.pipeline.runner import Runner, runner_for
from octavia_cli.pipeline.steps import prepare_transcript, translate_options
from octavia_cli.progress import ProgressHook, no_progress
from octavia_cli.project.manifest import (
    MANIFEST,
    Project,
    check_project_place,
    default_project_folder,
)
from octavia_cli.project.outputs import check_output
from octavia_cli.stages.subtitle import (
    Track,
    build_track,
    options_from,
    write_tracks,
)
from octavia_cli.stages.translate import translate
from octavia_cli.text.cues import SubtitleFormat, SubtitleMode, format_for


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
    request: SubtitleRequest,
    settings: Settings,
    hook: ProgressHook = no_progress,
    runner: Runner | None = None,
) -> SubtitleResult:
    """Transcribe (and translate) ``request.input`` unless its project already has the
    result, then build cues by the subtitle rules and write them as asked."""
    with runner_for(runner) as run:
        return _subtitles(request, settings, hook, run)


def _subtitles(
    request: SubtitleRequest, settings: Settings, hook: ProgressHook, runner: Runner
) -> SubtitleResult:
    targets = list(request.targets)
    source_language = request.source_language
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
    asr = runner.asr(settings) if project.transcript is None or source else None
    if asr is not None:
        asr.check(source_language)
    translator = runner.translator(settings) if targets else None
    known_language = source_language or (
        project.transcript.language if project.transcript else None
    )
    if translator is not None and known_language is not None:
        for target in targets:
            if target == known_language:
                continue
            translator.check_pair(known_language, target)
    options = {target: translate_options(runner, settings, target) for target in targets}
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
            transcript = prepare_transcript(
                project, source, settings, source_language, hook, runner
            )
        else:
            transcript = project.require_transcript()
        languages = targets or [transcript.language]
        try:
            for target in languages:
                if target != transcript.language:
                    assert translator is not None
                    translate(project, target, translator, hook, options[target])
        finally:
            runner.release(translator)
        rules = options_from(settings.subtitles)
        tracks = [build_track(project, language, rules) for language in languages]
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
