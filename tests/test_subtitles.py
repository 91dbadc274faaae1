"""The cue builder's rules on transcripts with known word times (no recogniser involved)."""

from __future__ import annotations

import itertools

import pysubs2
import pytest

from octavia_cli.project.records import Segment, Translation, Word
from octavia_cli.text.cues import (
    SubtitleFormat,
    SubtitleOptions,
    render,
    source_cues,
    translated_cues,
    wrap,
)


def _segment(index: int, text: str, start: float, seconds_per_word: float = 0.3) -> Segment:
    words = []
    at = start
    for token in text.split():
        words.append(Word(token, round(at, 3), round(at + seconds_per_word * 0.9, 3)))
        at += seconds_per_word
    return Segment(index, words[0].start_s, words[-1].end_s, text, words=words)


def _check_rules(cues, options: SubtitleOptions) -> None:
    for cue in cues:
        assert 1 <= len(cue.lines) <= options.max_lines
        assert all(len(line) <= options.max_line_chars for line in cue.lines), cue.lines
        duration = cue.end_s - cue.start_s
        assert duration <= options.max_duration_s + 1e-6
    for before, after in itertools.pairwise(cues):
        assert after.start_s - before.end_s >= options.min_gap_s - 1e-6


def test_wrap_prefers_punctuation_and_avoids_weak_line_ends() -> None:
    tokens = "When the library opens, we will talk about the history of the city".split()
    lines = wrap(tokens, 42, 2)
    assert lines == ["When the library opens,", "we will talk about the history of the city"]
    tokens = "She bought a new book for the children of the town last week".split()
    lines = wrap(tokens, 42, 2)
    assert lines is not None and all(len(line) <= 42 for line in lines)
    assert lines[0].split()[-1] not in ("a", "the", "of", "for")
    assert wrap(["x" * 50], 42, 2) is None


def test_long_speech_is_split_into_cues_that_keep_every_rule() -> None:
    text = (
        "This is a rather long sentence that we speak here, so that the subtitle has to be "
        "split across more than one cue, as the rules of the trade demand from everyone."
    )
    options = SubtitleOptions()
    cues = source_cues([_segment(0, text, 1.0)], "en", options)
    _check_rules(cues, options)
    assert len(cues) >= 2
    assert " ".join(" ".join(c.lines) for c in cues) == text  # nothing lost or reordered
    assert all(cue.cps <= options.max_cps + 1e-6 for cue in cues)


def test_short_cues_are_extended_to_the_minimum_and_reading_speed() -> None:
    options = SubtitleOptions()
    segments = [_segment(0, "Yes.", 1.0, 0.2), _segment(1, "Absolutely not, never again.", 5.0)]
    cues = source_cues(segments, "en", options)
    assert cues[0].end_s - cues[0].start_s >= options.min_duration_s
    assert all(cue.cps <= options.max_cps for cue in cues)


def test_fast_lines_borrow_the_gap_but_keep_two_frames() -> None:
    options = SubtitleOptions()
    fast = _segment(0, "An extremely quick remark with many long words inside", 1.0, 0.12)
    segments = [fast, _segment(1, "Then the next one.", fast.end_s + 0.2)]
    cues = source_cues(segments, "en", options)
    _check_rules(cues, options)
    assert cues[0].end_s > fast.end_s  # extended into the gap...
    assert cues[1].start_s - cues[0].end_s >= options.min_gap_s - 1e-6  # ...not up to it


def test_reading_speed_holds_where_speech_outruns_the_lead_and_delay() -> None:
    """Narrow one-line cues on speech at 25 characters a second: no plan within the 0.5 s
    delay can show every cue long enough to read, and reading speed wins (a cue was cut to
    1.75 s for 30 characters)."""
    options = SubtitleOptions(max_line_chars=30, max_lines=1)
    text = "This is a rather long sentence that we speak here, so that the subtitle has to be "
    cues = source_cues([_segment(0, text * 2, 1.0, 0.2)], "en", options)
    _check_rules(cues, options)
    assert len(cues) >= 6
    assert all(cue.cps <= options.max_cps + 1e-6 for cue in cues), [c.cps for c in cues]


def test_a_long_silence_always_ends_a_cue() -> None:
    segment = _segment(0, "one two three", 1.0)
    later = [Word("four", 5.0, 5.3), Word("five", 5.3, 5.6)]
    segment.words += later
    segment.end_s = 5.6
    cues = source_cues([segment], "en")
    assert [c.text for c in cues] == ["one two three", "four five"]
    assert cues[0].end_s < 5.0


def test_cjk_counts_characters() -> None:
    options = SubtitleOptions()
    characters = list("今日は図書館の歴史について話しますそして新しい部屋も紹介します")
    words = [Word(c, 1.0 + i * 0.2, 1.0 + i * 0.2 + 0.18) for i, c in enumerate(characters)]
    segment = Segment(0, words[0].start_s, words[-1].end_s, "".join(characters), words=words)
    cues = source_cues([segment], "ja", options)
    for cue in cues:
        assert all(len(line) <= options.cjk_max_line_chars for line in cue.lines)
        assert all(" " not in line for line in cue.lines)
    assert "".join("".join(c.lines) for c in cues) == "".join(characters)


def test_translated_cues_follow_the_line_spans() -> None:
    segment = _segment(0, "Welcome to the city library.", 2.0)
    segment.translations["es"] = Translation("Bienvenidos a la biblioteca de la ciudad.", "h", "x")
    cues = translated_cues([segment], "es")
    assert cues[0].start_s == pytest.approx(segment.start_s, abs=0.26)
    assert cues[0].text == "Bienvenidos a la biblioteca de la ciudad."


@pytest.mark.parametrize("fmt", [f for f in SubtitleFormat if f is not SubtitleFormat.TXT])
def test_every_format_round_trips_through_pysubs2(fmt: SubtitleFormat) -> None:
    cues = source_cues(
        [
            _segment(0, "Welcome to the city library, where old books live.", 0.5),
            _segment(1, "Today we talk about them.", 6.0),
        ],
        "en",
    )
    text = render(cues, fmt)
    parsed = pysubs2.SSAFile.from_string(text, format_=fmt.value)
    precision_ms = 10 if fmt is SubtitleFormat.ASS else 1  # ASS counts centiseconds
    for event, cue in zip(parsed, cues, strict=True):
        assert event.start == pytest.approx(cue.start_s * 1000, abs=precision_ms)
        assert event.end == pytest.approx(cue.end_s * 1000, abs=precision_ms)
    assert [e.plaintext for e in parsed] == [c.text for c in cues]
    assert render(cues, fmt) == text  # deterministic
