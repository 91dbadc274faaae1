from __future__ import annotations

from octavia_cli.engines.vad import snap_to_speech
from octavia_cli.project.records import Segment, Word
from octavia_cli.text.segmentation import LineOptions, split_into_lines


def words(*items: tuple[str, float, float]) -> list[Word]:
    return [Word(text, start, end) for text, start, end in items]


def test_splits_at_sentence_ends_and_pauses() -> None:
    lines = split_into_lines(
        words(
            (" Hello", 0.0, 0.4),
            (" there.", 0.4, 0.8),  # sentence end
            (" This", 0.85, 1.0),
            (" goes", 1.0, 1.2),
            (" on", 1.25, 2.0),  # pause of 0.5 s follows
            (" and", 2.5, 2.7),
            (" on", 2.75, 2.9),
        )
    )
    assert [line.text for line in lines] == ["Hello there.", "This goes on", "and on"]
    assert [(line.start_s, line.end_s) for line in lines] == [(0.0, 0.8), (0.85, 2.0), (2.5, 2.9)]
    assert [line.id for line in lines] == ["s0001", "s0002", "s0003"]


def test_a_short_fragment_stays_with_the_rest_of_its_sentence() -> None:
    # "Yes," then a 0.5 s pause: too short to dub alone, so it starts the next line...
    lines = split_into_lines(
        words((" Yes,", 0.0, 0.3), (" we", 0.8, 1.0), (" will", 1.0, 1.3), (" open.", 1.3, 1.8))
    )
    assert [line.text for line in lines] == ["Yes, we will open."]
    # ...unless the pause is long, or the fragment is long enough to stand alone.
    lines = split_into_lines(words((" Yes,", 0.0, 0.3), (" we", 1.5, 1.7), (" will.", 1.7, 2.0)))
    assert [line.text for line in lines] == ["Yes,", "we will."]


def test_a_pause_of_six_tenths_splits_the_line_and_shares_its_translation() -> None:
    """A listener hears a pause of 0.6 s: the dub pauses there too, even after a short
    phrase, and the sentence is still translated whole and shared out over its parts."""
    from octavia_cli.engines.mt.apertium import ApertiumEngine
    from octavia_cli.stages.translate import translate_segments

    sentence = words((" Well,", 0.0, 0.4), (" the", 1.0, 1.2), (" library", 1.2, 1.7),
                     (" opens", 1.7, 2.1), (" today.", 2.1, 2.6))  # fmt: skip
    lines = split_into_lines(sentence)
    assert [(line.text, line.start_s) for line in lines] == [
        ("Well,", 0.0),
        ("the library opens today.", 1.0),
    ]
    assert len(split_into_lines(words((" Well,", 0.0, 0.4), (" the", 0.95, 1.2)))) == 1
    engine = ApertiumEngine()
    translate_segments(lines, "en", "es", engine)
    whole = engine.translate(["Well, the library opens today."], "en", "es")[0]
    pieces = [line.translations["es"].text for line in lines]
    assert all(pieces) and " ".join(pieces) == whole


def test_short_pause_does_not_split() -> None:
    lines = split_into_lines(words((" a", 0.0, 0.2), (" b", 0.45, 0.6)))
    assert len(lines) == 1


def test_long_line_is_cut_at_its_longest_pause() -> None:
    items = [
        (f" w{i},", i * 1.0, i * 1.0 + 0.9) if i == 7 else (f" w{i}", i * 1.0, i * 1.0 + 0.95)
        for i in range(20)
    ]
    lines = split_into_lines(words(*items), LineOptions(max_line_s=12.0))
    assert len(lines) >= 2
    assert all(line.end_s - line.start_s <= 12.0 for line in lines)
    assert lines[0].text.endswith("w7,")


def test_no_words_no_lines() -> None:
    assert split_into_lines([]) == []
    assert split_into_lines(words((" ", 0, 1))) == []


def segment(start: float, end: float) -> Segment:
    return Segment(id="x", start_s=start, end_s=end, text="t")


def test_snap_moves_edges_to_nearby_speech() -> None:
    lines = [segment(0.11, 2.03), segment(2.71, 4.91)]
    snap_to_speech(lines, [(0.48, 2.24), (3.04, 4.99)])
    assert [(s.start_s, s.end_s) for s in lines] == [(0.48, 2.24), (3.04, 4.99)]


def test_snap_ignores_far_boundaries_and_never_overlaps() -> None:
    lines = [segment(1.0, 2.0), segment(2.1, 3.0)]
    # One region covers both lines (no pause between them): inner edges stay put.
    snap_to_speech(lines, [(0.9, 3.1)])
    assert [(s.start_s, s.end_s) for s in lines] == [(0.9, 2.0), (2.1, 3.1)]
    far = [segment(5.0, 6.0)]
    snap_to_speech(far, [(0.0, 1.0)])
    assert (far[0].start_s, far[0].end_s) == (5.0, 6.0)


def test_a_line_starting_in_a_pause_moves_to_the_speech_however_far() -> None:
    """Whisper put "and" 0.64 s before the speaker said it, in the pause after the line
    before (two-male-female): further than any snap, so the dub spoke through the pause."""
    before = split_into_lines(words((" There's", 1.03, 1.5), (" iron.", 1.6, 3.5)))[0]
    line = split_into_lines(words((" and", 3.86, 4.2), (" a", 4.6, 4.7), (" grain.", 4.8, 6.3)))
    lines = [before, *line]
    snap_to_speech(lines, [(1.02, 3.57), (4.47, 6.4)])
    assert lines[1].start_s == 4.47 and lines[1].end_s == 6.4
    # A start inside speech keeps to the nearby rule, and an onset after the second word
    # is another phrase's, not this line's.
    inside = split_into_lines(words((" so", 2.0, 2.3), (" it", 2.4, 2.6), (" goes.", 4.0, 4.5)))
    snap_to_speech(inside, [(1.9, 2.7), (3.2, 4.6)])
    assert inside[0].start_s == 1.9
    early = split_into_lines(words((" Hm", 0.2, 0.4), (" yes.", 0.5, 0.9)))
    snap_to_speech(early, [(1.5, 2.0)])
    assert early[0].start_s == 0.2


def test_a_first_word_wholly_in_the_pause_moves_to_the_onset_at_its_second_word() -> None:
    """two-on-the-phone: Whisper put "They" at 30.83-31.41 s, all of it in the pause, and
    "swarmed" from 31.41 s; the speech starts at 31.46 s, inside the second word. The line
    starts there, not 0.63 s early."""
    line = split_into_lines(words((" They", 30.83, 31.41), (" swarmed", 31.41, 31.99),
                                  (" up.", 31.99, 32.23)))  # fmt: skip
    snap_to_speech(line, [(26.95, 30.11), (31.46, 35.77)])
    assert line[0].start_s == 31.46
