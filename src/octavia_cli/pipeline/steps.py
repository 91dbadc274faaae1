"""Steps that dubs, subtitles and the server's jobs share: open a project, bring its
transcript up to date, choose the voice of a language, and the options of the translate and
fit stages. Engines always come from the caller's :class:`Runner`."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from octavia_cli.config import Settings
from octavia_cli.engines.asr.base import AsrEngine
from octavia_cli.engines.diarization.base import SpeakerCount
from octavia_cli.engines.tts.base import SpeechEngine, check_language
from octavia_cli.errors import OctaviaError
from octavia_cli.media.audio import read_audio, trim_silence
from octavia_cli.media.ffmpeg import probe
from octavia_cli.pipeline.runner import Runner
from octavia_cli.progress import ProgressHook
from octavia_cli.project.manifest import Project, default_project_folder
from octavia_cli.project.records import Transcript, stable_hash
from octavia_cli.stages.diarize import diarize
from octavia_cli.stages.extract import extract
from octavia_cli.stages.fit import FitOptions
from octavia_cli.stages.separate import separate
from octavia_cli.stages.synthesize import requested_voice
from octavia_cli.stages.transcribe import transcribe
from octavia_cli.stages.translate import TranslateOptions, translate
from octavia_cli.text.glossary import Glossary, load_glossary
from octavia_cli.text.length import spoken_characters


def open_project(source: Path, workdir: Path | None) -> Project:
    probe(source)  # a clear error for a missing or non-media input before any folder exists
    return Project.open(default_project_folder(source, workdir), source)


def asr_options_hash(settings: Settings) -> str:
    return stable_hash(settings.asr.beam_size, settings.asr.vad_filter, settings.asr.compute_type)


def fit_options(settings: Settings) -> FitOptions:
    return FitOptions(
        max_speed=settings.fit.max_speed,
        min_speed=settings.fit.min_speed,
        allow_video_stretch=settings.fit.allow_video_stretch,
        max_video_stretch=settings.fit.max_video_stretch,
    )


def choose_voice(runner: Runner, settings: Settings, target: str) -> tuple[SpeechEngine, str]:
    """The engine and voice that will speak ``target``; raises if none can. The engine is
    the runner's, so the stage that speaks later uses this same one."""
    engine = runner.speech(settings, target)
    check_language(engine, target)
    return engine, engine.voice_for(target, requested_voice(settings, engine))


XTTS_CHARS_PER_S = 14.0  # letters and digits a second, XTTS v2 at speed 1 (typical)


def translate_options(runner: Runner, settings: Settings, target: str) -> TranslateOptions:
    """Glossary and length control from the settings; the speech rate is measured with the
    voice that will speak ``target`` (length control is off if no voice can)."""

    glossary = load_glossary(Path(settings.mt.glossary)) if settings.mt.glossary else Glossary()
    if not settings.mt.length_control:
        return TranslateOptions(glossary, None, settings.mt.candidates)
    try:
        engine, voice = choose_voice(runner, settings, target)
    except OctaviaError:
        return TranslateOptions(glossary, None, settings.mt.candidates)

    def rate(texts: list[str]) -> float:
        if not voice:  # a voice cloned from the source later: XTTS's usual rate until then
            return XTTS_CHARS_PER_S
        return measure_rate(engine, voice, target, texts)

    return TranslateOptions(glossary, settings.fit.max_speed, settings.mt.candidates, rate)


def measure_rate(engine: SpeechEngine, voice: str, language: str, texts: Sequence[str]) -> float:
    """Characters per second of ``voice`` speaking ``texts`` (silence at the edges cut)."""

    characters = 0
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="octavia-rate-") as scratch:
        for index, text in enumerate(texts):
            path = Path(scratch) / f"{index}.wav"
            engine.synthesize(text, language, voice, path)
            audio, rate = read_audio(path)
            seconds += trim_silence(audio, rate).shape[1] / rate
            characters += spoken_characters(text)
    return characters / seconds if seconds > 0 else 0.0


def prepare_transcript(
    project: Project,
    source: Path,
    settings: Settings,
    language: str | None,
    hook: ProgressHook,
    runner: Runner,
    *,
    speakers: bool = False,
    keep_recogniser: bool = False,
) -> Transcript:
    """Run extract, separate (when on), transcribe and, with ``speakers``, diarize; each is
    skipped if already done. Each stage's engine is released before the next one loads,
    but the recogniser with ``keep_recogniser`` (the caller's line checks hear with it:
    the caller releases it)."""

    asr: AsrEngine = runner.asr(settings)
    asr.check(language)
    extract(project, source, hook)
    separator = runner.separator(settings) if speakers else None
    try:
        separate(project, separator, hook)
    finally:
        runner.release(separator)
    try:
        transcript = transcribe(
            project, asr, language, hook, options_hash=asr_options_hash(settings)
        )
    finally:
        if not keep_recogniser:
            runner.release(asr)
    if speakers:
        diarizer = runner.diarizer(settings)
        try:
            diarize(project, diarizer, SpeakerCount.from_settings(settings), hook)
        finally:
            runner.release(diarizer)
    return transcript


def translate_project(
    project: Project, targets: Sequence[str], settings: Settings, hook: ProgressHook,
    runner: Runner, options: dict[str, TranslateOptions] | None = None,
) -> None:  # fmt: skip
    """Translate the project's transcript into each of ``targets``; the translator is
    released after the last one, before any speech model loads (on a GPU, one stage's
    models at a time)."""
    if options is None:
        options = {t: translate_options(runner, settings, t) for t in targets}
    translator = runner.translator(settings)
    try:
        for target in targets:
            translate(project, target, translator, hook, options[target])
    finally:
        runner.release(translator)
