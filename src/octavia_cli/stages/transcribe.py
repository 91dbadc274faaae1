"""Speech to dubbing lines with word times, with the engine named in the settings.

The 16 kHz audio is read in windows of ten minutes cut at quiet moments, so a two-hour file
needs no more memory than a ten-minute one; silent windows are skipped without running the
recogniser. Words from all windows are split into dubbing lines, whose edges are then
snapped to the speech found by the VAD.
"""

from __future__ import annotations

import logging
import math
import time

from octavia_cli.audio import iter_chunks, peak_dbfs
from octavia_cli.engines.asr import AsrEngine
from octavia_cli.errors import NoSpeechError
from octavia_cli.languages import language_name
from octavia_cli.model import Transcript, Word, stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project
from octavia_cli.segmentation import split_into_lines
from octavia_cli.stages.extract import ASR_SAMPLE_RATE_HZ
from octavia_cli.vad import detect_speech, snap_to_speech

logger = logging.getLogger(__name__)

STAGE = "transcribe"
SILENCE_DBFS = -55.0  # quieter than this everywhere: there is nothing to recognise
LOW_CONFIDENCE = 0.5
SHORT_CLIP_S = 30.0  # Whisper detects the language from the first 30 s
CHUNK_S = 600.0  # audio is recognised in windows of about this length...
CHUNK_SEARCH_S = 30.0  # ...cut at the quietest moment of their last seconds


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
    from octavia_cli.stages.separate import speech_16k, speech_inputs

    inputs = stable_hash(
        project.stages["extract"].inputs_hash,
        speech_inputs(project),
        engine.describe(),
        language,
        options_hash,
    )
    if project.is_current(STAGE, inputs) and project.transcript is not None:
        reporter.skipped()
        return project.transcript
    began = time.monotonic()
    source = project.source_path
    total = project.stages["extract"].info.get("duration_s") or 0.0
    reporter.started(total=total or None, message="loading model")
    detected: tuple[str, float] | None = None
    words: list[Word] = []
    regions: list[tuple[float, float]] = []
    heard_sound = False
    for offset, chunk in iter_chunks(speech_16k(project), CHUNK_S, CHUNK_SEARCH_S):
        end = offset + len(chunk) / ASR_SAMPLE_RATE_HZ
        if peak_dbfs(chunk[None, :]) < SILENCE_DBFS:
            reporter.advance(end, total)
            continue
        heard_sound = True
        if language is None and detected is None:
            detected = engine.detect_language(chunk)
        chunk_language = language or (detected[0] if detected else "en")
        recognition = engine.recognize(
            chunk, chunk_language, lambda s, o=offset: reporter.advance(o + s, total)
        )
        words.extend(
            Word(w.text, round(w.start_s + offset, 3), round(w.end_s + offset, 3), w.probability)
            for w in recognition.words
        )
        regions.extend((a + offset, b + offset) for a, b in detect_speech(chunk))
        reporter.advance(end, total)
    if not heard_sound:
        raise NoSpeechError(
            f"No speech found in {source}: its audio is silent.",
            "Check that the file has the right audio track.",
        )
    lines = split_into_lines(words)
    snap_to_speech(lines, regions)
    if not lines:
        raise NoSpeechError(
            f"No speech found in {source}.", "Check the audio, or give its language with --from."
        )
    spoken, probability = (language, 1.0) if language else (detected or ("en", 0.0))
    if language is None:
        message = f"detected {language_name(spoken)} (probability {probability:.2f})"
        if probability < LOW_CONFIDENCE:
            short = f" in a short clip ({total:.0f} s of audio)" if total < SHORT_CLIP_S else ""
            logger.warning(
                "%s: low confidence%s; give the language with --language (transcribe) or "
                "--from (subtitles, dub) if that is wrong",
                message,
                short,
            )
        else:
            logger.info(message)
    transcript = Transcript(
        language=spoken,
        language_probability=round(probability, 3),
        duration_s=round(total, 3) if math.isfinite(total) else 0.0,
        engine=engine.describe(),
        model=getattr(engine, "model_spec", ""),
        segments=lines,
    )
    project.transcript = transcript
    project.mark_done(STAGE, inputs, time.monotonic() - began, language=spoken, lines=len(lines))
    reporter.done(f"{len(lines)} lines")
    return transcript
