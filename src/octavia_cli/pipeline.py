"""The dub, composed from the stages. The CLI and (later) the server call these functions.

Everything that can be checked before work starts is checked first: the input is media with
audio, the languages are known, each engine supports them, its models are available, and
no output would overwrite a user's file. Only then does the first stage run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from octavia_cli.config import Settings
from octavia_cli.engines.asr import AsrEngine, get_asr_engine
from octavia_cli.engines.mt import get_translation_engine
from octavia_cli.errors import InputError
from octavia_cli.languages import normalize_language
from octavia_cli.media import probe
from octavia_cli.model import Transcript, stable_hash
from octavia_cli.progress import ProgressHook, no_progress
from octavia_cli.project import Project, default_project_folder
from octavia_cli.stages.extract import extract
from octavia_cli.stages.fit import FitOptions, fit
from octavia_cli.stages.mix import MixOptions, mix
from octavia_cli.stages.mux import check_output, default_output, mux
from octavia_cli.stages.synthesize import choose_voice, synthesize
from octavia_cli.stages.transcribe import transcribe
from octavia_cli.stages.translate import translate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DubRequest:
    """What ``octavia dub`` was asked to do."""

    source: Path
    targets: tuple[str, ...]
    source_language: str | None = None  # None: detect it
    output: Path | None = None  # None: <stem>.<lang>.<ext> beside the source
    workdir: Path | None = None  # None: the project folder goes beside the source
    force: bool = False


@dataclass
class DubResult:
    project_folder: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    source_language: str = ""


def output_paths(request: DubRequest, has_video: bool) -> dict[str, Path]:
    if request.output is None:
        return {t: default_output(request.source, t, has_video) for t in request.targets}
    if len(request.targets) > 1:
        if "{lang}" not in str(request.output):
            raise InputError(
                "With several --to languages, -o must contain {lang}.",
                "For example: -o 'out/talk.{lang}.mp4'.",
            )
        return {t: Path(str(request.output).replace("{lang}", t)) for t in request.targets}
    return {request.targets[0]: request.output}


def open_project(source: Path, workdir: Path | None) -> Project:
    probe(source)  # a clear error for a missing or non-media input before any folder exists
    return Project.open(default_project_folder(source, workdir), source)


def asr_options_hash(settings: Settings) -> str:
    return stable_hash(settings.asr.beam_size, settings.asr.vad_filter, settings.asr.compute_type)


def prepare_transcript(
    project: Project,
    source: Path,
    settings: Settings,
    language: str | None,
    hook: ProgressHook,
    asr: AsrEngine | None = None,
) -> Transcript:
    """Run extract and transcribe (each skipped if already done); return the transcript."""
    asr = asr or get_asr_engine(settings)
    asr.check(language)
    extract(project, source, hook)
    try:
        return transcribe(project, asr, language, hook, options_hash=asr_options_hash(settings))
    finally:
        asr.close()


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

    # Check every engine against every language before any work starts.
    asr = get_asr_engine(settings)
    asr.check(source_language)
    translator = get_translation_engine(settings)
    for target in targets:
        if source_language is not None:
            if source_language == target:
                raise InputError(f"The source is already in '{target}'.", "Choose another --to.")
            translator.check_pair(source_language, target)
        choose_voice(settings, target)

    project = Project.open(default_project_folder(source, request.workdir), source)
    outputs = output_paths(request, media.has_video)
    for output in outputs.values():
        check_output(project, output, source, request.force)

    result = DubResult(project.folder)
    with project.locked():
        began = time.monotonic()
        transcript = prepare_transcript(project, source, settings, source_language, hook, asr)
        result.source_language = transcript.language
        for target in targets:
            translate(project, target, translator, hook)
            synthesize(project, target, settings, hook)
            fit(project, target, FitOptions(max_speed=settings.fit.max_speed), hook)
            mix(project, target, MixOptions(duck_db=settings.mix.duck_db), hook)
            result.outputs[target] = mux(
                project, source, target, outputs[target], request.force, hook
            )
        result.stage_seconds = {name: record.seconds for name, record in project.stages.items()}
        logger.info("dub finished in %.1f s", time.monotonic() - began)
    return result
