"""Speech to dubbing lines with word times, with the engine named in the settings."""

from __future__ import annotations

import logging
import time

import numpy as np

from octavia_cli.audio import peak_dbfs, read_audio
from octavia_cli.engines.asr import AsrEngine
from octavia_cli.errors import NoSpeechError
from octavia_cli.languages import language_name
from octavia_cli.model import Transcript, stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project
from octavia_cli.stages.extract import ASR_WAV
from octavia_cli.vad import detect_speech, snap_to_speech

logger = logging.getLogger(__name__)

STAGE = "transcribe"
SILENCE_DBFS = -55.0  # quieter than this everywhere: there is nothing to recognise
LOW_CONFIDENCE = 0.5


def transcribe(
    project: Project,
    engine: AsrEngine,
    language: str | None,
    hook: ProgressHook,
    *,
    options_hash: str = "",
) -> Transcript:
    """Transcribe the project's audio unless an identical transcription exists.

    Raises:
        NoSpeechError: the audio is silent, or the recogniser found no words.
    """
    reporter = StageReporter(hook, STAGE)
    inputs = stable_hash(
        project.stages["extract"].inputs_hash, engine.describe(), language, options_hash
    )
    if project.is_current(STAGE, inputs) and project.transcript is not None:
        reporter.skipped()
        return project.transcript
    began = time.monotonic()
    source = project.source_path
    audio, _ = read_audio(project.path(ASR_WAV))
    if audio.size == 0 or peak_dbfs(audio) < SILENCE_DBFS or not np.any(audio):
        raise NoSpeechError(
            f"No speech found in {source}: its audio is silent.",
            "Check that the file has the right audio track.",
        )
    reporter.started(message="loading model")
    transcript = engine.transcribe(project.path(ASR_WAV), language, reporter)
    snap_to_speech(transcript.segments, detect_speech(audio[0]))
    if not transcript.segments:
        raise NoSpeechError(
            f"No speech found in {source}.", "Check the audio, or give its language with --from."
        )
    if language is None:
        message = (
            f"detected {language_name(transcript.language)} "
            f"(probability {transcript.language_probability:.2f})"
        )
        if transcript.language_probability < LOW_CONFIDENCE:
            logger.warning("%s: low confidence; pass --from to set the language", message)
        else:
            logger.info(message)
    project.transcript = transcript
    project.mark_done(
        STAGE,
        inputs,
        time.monotonic() - began,
        language=transcript.language,
        lines=len(transcript.segments),
    )
    reporter.done(f"{len(transcript.segments)} lines")
    return transcript
