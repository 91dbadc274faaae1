"""Speech to dubbing lines with word times, with the engine named in the settings.

The 16 kHz audio is read in windows of at most five minutes cut at quiet moments, so a
two-hour file needs no more memory than a five-minute one; an engine that can listen to
several at once (faster-whisper on a CPU: one thread per window, which is faster than two
threads on one) gets shorter windows, as many at a time as it has workers. Silent windows
are skipped without running the recogniser. Words from all windows are split into dubbing
lines, whose edges are then snapped to the speech found by the VAD.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from octavia_cli.engines.asr.base import AsrEngine
from octavia_cli.engines.vad import (
    RECALL,
    detect_speech,
    pause_point,
    refine_words,
    snap_to_speech,
)
from octavia_cli.errors import NoSpeechError
from octavia_cli.languages import language_name
from octavia_cli.media.audio import iter_chunks, peak_dbfs
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import ASR_SAMPLE_RATE_HZ, speech_16k, speech_inputs
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import Segment, TranscribeInfo, Transcript, Word, stable_hash
from octavia_cli.text.segmentation import split_into_lines
from octavia_cli.workers import in_order

logger = logging.getLogger(__name__)

STAGE = "transcribe"
SILENCE_DBFS = -55.0  # quieter than this everywhere: there is nothing to recognise
LOW_CONFIDENCE = 0.5
SHORT_CLIP_S = 30.0  # Whisper detects the language from the first 30 s
CHUNK_S = 300.0  # audio is recognised in windows of at most about this length...
CHUNK_SEARCH_S = 30.0  # ...cut at the quietest moment of their last seconds
MIN_WINDOW_S = 60.0  # shorter audio is not split for parallel workers
PARALLEL_CHUNK_S = 150.0  # the longest window when several are recognised at once
# A stretch of clear speech at least this long that Whisper gave no word is heard again on
# its own (with this much audio either side): Whisper drops phrases, a short interjection
# after a pause most of all (a 2.3 s "The best dramatic is that which is at hand." of one
# shared dialogue, a 3.2 s line of a phone call), and a dropped phrase is a line not dubbed.
UNHEARD_MIN_S = 0.5
UNHEARD_PAD_S = 0.3
# ... unless what it says was said already by the words within this many seconds of it
# (Whisper put those words' times elsewhere): this share of its words or more.
UNHEARD_NEAR_S = 3.0
UNHEARD_REPEATED = 0.8


def inputs_hash(
    project: Project, engine: AsrEngine, language: str | None, options_hash: str
) -> str:
    """What a transcription is computed from: the audio, the engine and model, the language."""

    return stable_hash(
        project.stages["extract"].inputs_hash,
        speech_inputs(project),
        engine.describe(),
        language,
        options_hash,
    )


def windows(project: Project, window_s: float = CHUNK_S) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the windows the speech audio is recognised in: about
    ``window_s`` long, cut in pauses (as a whole run cuts them)."""

    spans = []
    search = min(CHUNK_SEARCH_S, window_s / 2)
    for offset, chunk in iter_chunks(speech_16k(project), window_s, search, pause_point):
        spans.append((offset, offset + len(chunk) / ASR_SAMPLE_RATE_HZ))
    return spans


def recognize_window(
    engine: AsrEngine,
    chunk: Any,
    offset: float,
    language: str,
    on_progress: Any = None,
) -> dict[str, Any]:
    """Words (on the file's timeline) and speech regions of one window; nothing for a
    silent one."""
    if peak_dbfs(chunk[None, :]) < SILENCE_DBFS:
        return {"words": [], "regions": [], "speech": [], "sound": False}
    recognition = engine.recognize(chunk, language, on_progress or (lambda s: None))
    clear = detect_speech(chunk)
    heard = recognition.words + hear_unheard(engine, chunk, language, recognition.words, clear)
    words = [
        Word(w.text, round(w.start_s + offset, 3), round(w.end_s + offset, 3), w.probability)
        for w in sorted(heard, key=lambda w: w.start_s)
    ]
    # Where speech clearly is (line edges snap to it), and every stretch of it (the words
    # are put back on it: a phone line's speech is mostly below the clear threshold).
    regions = [(a + offset, b + offset) for a, b in clear]
    speech = [(a + offset, b + offset) for a, b in detect_speech(chunk, threshold=RECALL)]
    return {"words": words, "regions": regions, "speech": speech, "sound": True}


def hear_unheard(
    engine: AsrEngine,
    chunk: Any,
    language: str,
    words: list[Word],
    clear: list[tuple[float, float]],
) -> list[Word]:
    """The words of each stretch of clear speech (``clear``, seconds into ``chunk``) at least
    :data:`UNHEARD_MIN_S` long that no word of ``words`` touches, recognised on its own
    (times into ``chunk``). Only such stretches: a word anywhere in a stretch means Whisper
    heard it, and hearing it again could say its words twice; and not what the words
    near it already say (:data:`UNHEARD_REPEATED`), whose times Whisper put elsewhere."""
    starts = sorted(w.start_s for w in words)
    ends = sorted(w.end_s for w in words)
    found: list[Word] = []
    for start, end in clear:
        if end - start < UNHEARD_MIN_S:
            continue
        # words that start before the stretch ends and end after it starts
        touching = bisect.bisect_left(starts, end) - bisect.bisect_right(ends, start)
        if touching > 0:
            continue
        first = max(0, round((start - UNHEARD_PAD_S) * ASR_SAMPLE_RATE_HZ))
        last = min(len(chunk), round((end + UNHEARD_PAD_S) * ASR_SAMPLE_RATE_HZ))
        shift = first / ASR_SAMPLE_RATE_HZ
        heard = engine.recognize(chunk[first:last], language, lambda s: None)
        again = [w for w in heard.words if w.text.strip()]
        low, high = start - UNHEARD_NEAR_S, end + UNHEARD_NEAR_S
        near = [w for w in words if w.end_s > low and w.start_s < high]
        if _repeats(again, near):
            logger.debug("heard again %.2f-%.2f s, said already nearby", start, end)
            continue
        found += [dataclasses.replace(w, start_s=w.start_s + shift, end_s=w.end_s + shift)
                  for w in again]  # fmt: skip
        if again:
            logger.debug("heard again %.2f-%.2f s: %s", start, end,
                         "".join(w.text for w in again))  # fmt: skip
    return found


def _repeats(words: list[Word], near: list[Word]) -> bool:
    """Whether ``words`` (two or more) are mostly among ``near`` (letters and digits only,
    any case)."""
    said = [token for token in (_bare(w.text) for w in words) if token]
    if len(said) < 2:
        return False
    pool = collections.Counter(_bare(w.text) for w in near)
    found = 0
    for token in said:
        if pool[token] > 0:
            pool[token] -= 1
            found += 1
    return found >= UNHEARD_REPEATED * len(said)


def _bare(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def window_length(duration_s: float, workers: int) -> float:
    """Windows of :data:`CHUNK_S` for one worker; for several, the audio shared among them
    (at least :data:`MIN_WINDOW_S` each), a cut's search span longer so that the last
    window is not a short remainder."""
    if workers <= 1 or duration_s < 2 * MIN_WINDOW_S:  # a clip of a minute is not cut
        return CHUNK_S
    return min(PARALLEL_CHUNK_S, max(MIN_WINDOW_S, duration_s / workers + CHUNK_SEARCH_S))


class WindowProgress:
    """Seconds recognised over windows that several threads work on at once."""

    def __init__(self, report: Callable[[float], None]) -> None:
        self._report = report
        self._done: dict[float, float] = {}  # window offset -> seconds of it done
        self._lock = threading.Lock()

    def callback(self, offset: float) -> Callable[[float], None]:
        return lambda seconds: self._set(offset, seconds)

    def track(self, offset: float, length: float, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)``, after which the window counts as done (a silent window too)."""
        result = work(*args)
        self._set(offset, length)
        return result

    def _set(self, offset: float, seconds: float) -> None:
        with self._lock:
            self._done[offset] = max(self._done.get(offset, 0.0), seconds)
            done = sum(self._done.values())
        self._report(done)


def read_window(project: Project, start_s: float, end_s: float) -> Any:
    """The speech audio of ``[start_s, end_s)``, 16 kHz mono."""
    import soundfile

    audio, _ = soundfile.read(
        str(speech_16k(project)), start=round(start_s * ASR_SAMPLE_RATE_HZ),
        stop=round(end_s * ASR_SAMPLE_RATE_HZ), dtype="float32", always_2d=True,
    )  # fmt: skip
    return audio.mean(axis=1)


def lines_from_words(
    words: list[Word], speech: list[tuple[float, float]], clear: list[tuple[float, float]]
) -> list[Segment]:
    """Dubbing lines from the recognised ``words``, their edges put where the speaker speaks:
    each word put back on every stretch of ``speech``, then on the ``clear`` speech (a word
    that holds a pause the clear speech shows, as Whisper's "and" at 3.86-4.62 s heard from
    4.48 s where the faint edge of the speech began at 4.10 s, starts where it is heard, so
    the 0.9 s pause before it splits the line), the lines split, and their edges snapped to
    the clear speech."""
    lines = split_into_lines(refine_words(refine_words(words, speech), clear))
    snap_to_speech(lines, clear)
    return lines


def assemble(
    project: Project,
    engine: AsrEngine,
    inputs: str,
    pieces: list[dict[str, Any]],
    spoken: tuple[str, float],
    language_given: bool,
    total: float,
    seconds: float,
) -> Transcript:
    """Lines from every window's words, snapped to the speech; the stage recorded."""
    source = project.source_path
    if not any(piece["sound"] for piece in pieces):
        raise NoSpeechError(
            f"No speech found in {source}: its audio is silent.",
            "Check that the file has the right audio track.",
        )
    words = [w for piece in pieces for w in piece["words"]]
    regions = [tuple(r) for piece in pieces for r in piece["regions"]]
    speech = [tuple(r) for piece in pieces for r in piece.get("speech", piece["regions"])]
    lines = lines_from_words(words, speech, regions)
    if not lines:
        raise NoSpeechError(
            f"No speech found in {source}.", "Check the audio, or give its language with --from."
        )
    language, probability = spoken
    if not language_given:
        message = f"detected {language_name(language)} (probability {probability:.2f})"
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
        language=language,
        language_probability=round(probability, 3),
        duration_s=round(total, 3) if math.isfinite(total) else 0.0,
        engine=engine.describe(),
        model=getattr(engine, "model_spec", ""),
        segments=lines,
    )
    project.transcript = transcript
    project.mark_done(STAGE, inputs, seconds, TranscribeInfo(language, len(lines)))
    return transcript


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
    inputs = inputs_hash(project, engine, language, options_hash)
    if project.is_current(STAGE, inputs) and project.transcript is not None:
        reporter.skipped()
        return project.transcript
    began = time.monotonic()
    total = project.stages["extract"].info.duration_s or 0.0
    reporter.started(total=total or None, message="loading model")
    detected: tuple[str, float] | None = None
    workers = max(1, int(getattr(engine, "parallel_windows", 1)))
    progress = WindowProgress(lambda seconds: reporter.advance(min(seconds, total), total))

    def windows_to_hear() -> Iterator[tuple]:
        nonlocal detected
        window_s = window_length(total, workers)
        for offset, chunk in iter_chunks(speech_16k(project), window_s, CHUNK_SEARCH_S,
                                         pause_point):  # fmt: skip
            sound = peak_dbfs(chunk[None, :]) >= SILENCE_DBFS
            if language is None and detected is None and sound:
                detected = engine.detect_language(chunk)  # before any window is recognised
            chunk_language = language or (detected[0] if detected else "en")
            yield (offset, len(chunk) / ASR_SAMPLE_RATE_HZ, recognize_window, engine, chunk,
                   offset, chunk_language, progress.callback(offset))  # fmt: skip

    pieces = list(in_order(lambda work: progress.track(*work), windows_to_hear(), workers))
    spoken = (language, 1.0) if language else (detected or ("en", 0.0))
    transcript = assemble(
        project, engine, inputs, pieces, spoken, language is not None, total,
        time.monotonic() - began,
    )  # fmt: skip
    reporter.done(f"{len(transcript.segments)} lines")
    return transcript
