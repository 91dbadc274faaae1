"""The transcribe stage's own logic: windows over long audio, their offsets, silent windows
skipped, the language detected once and a weak detection reported. The recogniser here is
a small stand-in that reports a word where the audio gets loud (the stage is under test,
not Whisper, which tests/engines covers)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from octavia_cli.engines.asr.base import Recognition
from octavia_cli.progress import no_progress
from octavia_cli.project.manifest import Project, default_project_folder
from octavia_cli.project.records import Word
from octavia_cli.stages import transcribe as stage
from octavia_cli.stages.extract import extract

LINES = ((1.0, "First words here."), (9.0, "Second words here."), (17.0, "Third words here."))


class LoudnessRecogniser:
    """Reports one word at the first loud moment of each stretch it is given."""

    name = "loudness"

    def __init__(self) -> None:
        self.windows: list[int] = []
        self.detections = 0

    def describe(self) -> str:
        return self.name

    def check(self, language: str | None) -> None:
        pass

    def detect_language(self, audio_16k: np.ndarray) -> tuple[str, float]:
        self.detections += 1
        return "en", 0.31

    def recognize(self, audio_16k, language, on_progress) -> Recognition:
        self.windows.append(len(audio_16k))
        loud = np.flatnonzero(np.abs(audio_16k) > 0.1)
        words = []
        if len(loud):
            start = loud[0] / 16_000
            words.append(Word(" word.", round(start, 3), round(start + 0.5, 3), 0.9))
        on_progress(len(audio_16k) / 16_000)
        return Recognition(language, 0.31, words)

    def close(self) -> None:
        pass


def test_windows_are_shifted_to_their_place_in_the_file(
    media_factory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    source = media_factory("three.wav", lines=LINES, duration_s=24.0, video=False, bed=False)
    project = Project.open(default_project_folder(source), source)
    monkeypatch.setattr(stage, "CHUNK_S", 8.0)
    monkeypatch.setattr(stage, "CHUNK_SEARCH_S", 3.0)
    engine = LoudnessRecogniser()
    with project.locked(), caplog.at_level(logging.WARNING, logger="octavia_cli"):
        extract(project, source, no_progress)
        transcript = stage.transcribe(project, engine, None, no_progress)
    assert len(engine.windows) == 3 and max(engine.windows) <= 8 * 16_000
    assert engine.detections == 1  # once, on the first window with sound
    starts = [segment.start_s for segment in transcript.segments]
    assert starts == pytest.approx([start for start, _ in LINES], abs=0.3)
    assert transcript.language == "en" and transcript.language_probability == 0.31
    assert "low confidence in a short clip (24 s of audio)" in caplog.text


def test_silent_windows_are_not_recognised(media_factory, monkeypatch) -> None:
    source = media_factory("late.wav", lines=((17.0, "Only at the end."),), duration_s=24.0,
                           video=False, bed=False)  # fmt: skip
    project = Project.open(default_project_folder(source), source)
    monkeypatch.setattr(stage, "CHUNK_S", 8.0)
    monkeypatch.setattr(stage, "CHUNK_SEARCH_S", 3.0)
    engine = LoudnessRecogniser()
    with project.locked():
        extract(project, source, no_progress)
        transcript = stage.transcribe(project, engine, "en", no_progress)
    assert len(engine.windows) == 1  # the two silent windows were skipped
    assert engine.detections == 0  # the language was given
    assert transcript.segments[0].start_s == pytest.approx(17.0, abs=0.3)


def test_long_file_needs_no_more_memory_than_a_window(tmp_path: Path) -> None:
    from octavia_cli.media.audio import iter_chunks, write_wav

    rate = 16_000
    audio = (0.01 * np.sin(np.arange(60 * rate) / 10)).astype(np.float32)
    write_wav(tmp_path / "minute.wav", audio[None, :], rate)
    sizes = [len(chunk) for _, chunk in iter_chunks(tmp_path / "minute.wav", 10.0, 2.0)]
    assert sum(sizes) == len(audio) and max(sizes) <= 10 * rate and len(sizes) >= 6


def test_words_that_swallow_a_pause_are_put_back_on_the_speech() -> None:
    """The talking-head clip of the real-speech issue: three phrases with pauses of 1.3 s
    and 1.1 s, and Whisper's times put the second phrase's first word at the pause before it
    (4.39 s, speech at 5.25 s) and stretch "and" over the second pause (6.27-7.79 s). Put
    back on the speech the VAD found, the words fall into three lines, each starting where
    its phrase does."""
    from octavia_cli.engines.vad import refine_words, snap_to_speech
    from octavia_cli.text.segmentation import split_into_lines

    regions = [(0.5, 3.1), (5.25, 6.55), (7.65, 9.2)]  # speech, as the VAD hears it
    words = [Word(t, a, b) for t, a, b in (
        ("Welcome", 0.5, 0.9), (" to", 0.95, 1.1), (" the", 1.1, 1.3), (" show", 1.35, 3.1),
        (" Today", 4.39, 5.6), (" we", 5.65, 5.8), (" talk", 5.85, 6.2), (" and", 6.27, 7.79),
        (" laugh", 7.8, 8.3), (" together", 8.35, 9.2),
    )]  # fmt: skip
    refined = refine_words(words, regions)
    assert (refined[4].start_s, refined[4].end_s) == (5.25, 5.6)  # onto the onset
    assert (refined[7].start_s, refined[7].end_s) == (6.27, 6.55)  # the side that holds it
    assert refined[:4] == words[:4] and refined[8:] == words[8:]  # no silence in them
    lines = split_into_lines(refined)
    snap_to_speech(lines, regions)
    assert [(line.start_s, line.text) for line in lines] == [
        (0.5, "Welcome to the show"),
        (5.25, "Today we talk and"),
        (7.65, "laugh together"),
    ]


class ParallelRecogniser(LoudnessRecogniser):
    """Two windows at once, the first one slowest: the stage must keep the file's order."""

    parallel_windows = 2

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.threads: set[str] = set()
        self.calls = 0
        self._lock = threading.Lock()

    def recognize(self, audio_16k, language, on_progress) -> Recognition:
        import threading
        import time

        with self._lock:
            self.calls += 1
            first = self.calls == 1
        self.threads.add(threading.current_thread().name)
        time.sleep(0.3 if first else 0.0)
        return super().recognize(audio_16k, language, on_progress)


def test_windows_recognised_in_parallel_give_the_same_lines(media_factory, monkeypatch) -> None:
    source = media_factory("three.wav", lines=LINES, duration_s=24.0, video=False, bed=False)
    monkeypatch.setattr(stage, "PARALLEL_CHUNK_S", 8.0)
    monkeypatch.setattr(stage, "MIN_WINDOW_S", 4.0)
    monkeypatch.setattr(stage, "CHUNK_SEARCH_S", 3.0)
    transcripts = []
    engines = (LoudnessRecogniser(), ParallelRecogniser())
    for engine in engines:
        if not isinstance(engine, ParallelRecogniser):
            monkeypatch.setattr(stage, "CHUNK_S", 8.0)
        project = Project.open(default_project_folder(source), source)
        with project.locked():
            extract(project, source, no_progress)
            project.transcript = None
            project.stages.pop(stage.STAGE, None)
            transcripts.append(stage.transcribe(project, engine, "en", no_progress))
    serial, parallel = transcripts
    assert len(engines[1].windows) == 3 and len(engines[1].threads) == 2
    assert len(parallel.segments) == 3
    assert [(s.start_s, s.text) for s in parallel.segments] == [
        (s.start_s, s.text) for s in serial.segments
    ]


def test_window_length() -> None:
    assert stage.window_length(3600.0, 1) == stage.CHUNK_S
    assert stage.window_length(100.0, 2) == stage.CHUNK_S  # under two minutes: not cut
    assert stage.window_length(200.0, 2) == pytest.approx(130.0)  # 100 s each, and the search
    assert stage.window_length(3600.0, 2) == stage.PARALLEL_CHUNK_S


class DroppingRecogniser:
    """Whisper dropping a phrase: given a whole window it hears only the first stretch of
    speech; given a stretch on its own it hears it."""

    name = "dropping"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def recognize(self, audio_16k, language, on_progress) -> Recognition:
        self.calls.append(len(audio_16k))
        if len(self.calls) == 1:
            return Recognition(language, 1.0, [Word(" First.", 0.5, 1.5, 0.9)])
        return Recognition(language, 1.0, [Word(" Again.", 0.3, 0.9, 0.8), Word(" ", 1, 1)])


def test_speech_that_whisper_gave_no_word_is_heard_again_on_its_own() -> None:
    """monologue-with-interjections: Whisper base heard nothing of a 2.3 s interjection
    ("The best dramatic is that which is at hand.") between two turns of the other speaker,
    so it was never dubbed. A stretch of clear speech of 0.5 s or more that no word
    touches is recognised alone; one a word touches, or a shorter one, is not."""
    chunk = np.zeros(16_000 * 12, np.float32)
    clear = [(0.5, 1.5), (3.0, 4.2), (6.0, 6.3), (8.0, 9.0)]
    words = [Word(" First.", 0.5, 1.5, 0.9), Word(" late", 8.9, 9.4, 0.9)]
    engine = DroppingRecogniser()
    engine.calls.append(0)  # the window itself was heard already
    found = stage.hear_unheard(engine, chunk, "en", words, clear)
    assert engine.calls[1:] == [round((4.2 + 0.3 - (3.0 - 0.3)) * 16_000)]  # padded, once
    assert [(w.text, w.start_s, w.end_s) for w in found] == [(" Again.", 3.0, 3.6)]


def test_a_window_keeps_the_words_heard_again_in_time_order(monkeypatch) -> None:
    """What recognize_window gives: the first stretch's word, then the dropped stretch's,
    on the file's timeline."""
    chunk = np.zeros(16_000 * 6, np.float32)
    chunk[16_000 * 3 : 16_000 * 4] = 0.3  # something not silent
    monkeypatch.setattr(stage, "detect_speech",
                        lambda audio, threshold=None: [(0.5, 1.5), (3.0, 4.0)])  # fmt: skip
    piece = stage.recognize_window(DroppingRecogniser(), chunk, 10.0, "en")
    assert [(w.text, w.start_s) for w in piece["words"]] == [(" First.", 10.5), (" Again.", 13.0)]


def test_a_word_holding_a_pause_the_clear_speech_shows_splits_its_line() -> None:
    """two-male-female: "in all our blood," (0.98 s) then "and" put at 3.86-4.62 s, where the
    speech at the recall threshold starts at 4.10 s (a silence of 0.24 s in the word: kept)
    but clear speech at 4.48 s (0.62 s: the word is moved). The 0.9 s pause then splits the
    line, and the second line starts where its speaker does (the ground truth: 4.50 s)."""
    words = [Word(t, a, b) for t, a, b in (
        (" in", 2.46, 2.76), (" all", 2.76, 2.92), (" our", 2.92, 3.06), (" blood,", 3.06, 3.44),
        (" and", 3.86, 4.62), (" a", 4.62, 4.74), (" grain", 4.74, 4.9), (" or", 4.9, 5.08),
        (" two", 5.08, 5.26), (" perhaps", 5.26, 5.6), (" is", 5.6, 5.84), (" good.", 5.84, 6.12),
    )]  # fmt: skip
    speech = [(1.03, 2.37), (2.59, 3.58), (4.1, 6.4)]
    clear = [(1.03, 2.33), (2.59, 3.55), (4.48, 6.4)]
    lines = stage.lines_from_words(words, speech, clear)
    assert [(line.start_s, line.text) for line in lines] == [
        (2.59, "in all our blood,"),
        (4.48, "and a grain or two perhaps is good."),
    ]


class MisplacingRecogniser:
    """Whisper having heard a phrase but put its words' times in the speech before it:
    heard alone, the stretch says the same words again."""

    name = "misplacing"

    def recognize(self, audio_16k, language, on_progress) -> Recognition:
        words = [Word(" Good", 0.3, 0.5, 0.9), Word(" night,", 0.5, 0.8, 0.9),
                 Word(" all.", 0.8, 1.0, 0.9)]  # fmt: skip
        return Recognition(language, 1.0, words)


def test_a_stretch_heard_again_is_not_said_twice() -> None:
    """A stretch no word touches, whose words Whisper had put in the second before it, is
    not dubbed a second time; one that says something else is kept."""
    chunk = np.zeros(16_000 * 12, np.float32)
    clear = [(0.5, 2.0), (3.0, 4.2)]
    words = [Word(" Good", 1.0, 1.3), Word(" night", 1.3, 1.6), Word(" all.", 1.6, 1.9)]
    assert stage.hear_unheard(MisplacingRecogniser(), chunk, "en", words, clear) == []
    words = [Word(" Good", 1.0, 1.3), Word(" morning", 1.3, 1.6), Word(" everyone.", 1.6, 1.9)]
    again = stage.hear_unheard(MisplacingRecogniser(), chunk, "en", words, clear)
    assert [w.text for w in again] == [" Good", " night,", " all."]
