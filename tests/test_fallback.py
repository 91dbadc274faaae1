"""No line is silently dropped: a translation that comes back empty falls back (the line's
own words, or its sentence's neighbour says it), and the timing report and the summary
count it. Also the message when a detected language cannot be dubbed."""

from __future__ import annotations

import json
from pathlib import Path

from octavia_cli.project.records import Segment, Word
from octavia_cli.stages.translate import translate_segments


def test_an_empty_translation_is_spoken_in_the_source_words(cli, talk: Path, fake_engines) -> None:
    fake_engines.translator.replies["Today we talk about old books."] = " . "
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en")
    assert code == 0, err
    folder = talk.with_name("talk.octavia")
    project = json.loads((folder / "project.json").read_text())
    second = project["transcript"]["segments"][1]
    assert second["text"] == "Today we talk about old books."
    translation = second["translations"]["es"]
    assert translation["text"] == second["text"] and translation["fallback"] == "source"
    assert second["clips"]["es"]["duration_s"] > 0  # spoken, not skipped
    assert (folder / second["clips"]["es"]["path"]).exists()
    report = json.loads((folder / "report" / "timing.es.json").read_text())
    assert report["totals"]["from_source"] == 1 and report["totals"]["merged"] == 0
    assert all(line["dub_s"] > 0 for line in report["lines"])
    flat = " ".join(err.split())
    assert "1 kept in their own words (empty translation)" in flat  # the stage's line
    assert "es: 4 lines" in flat and "1 in their source words" in flat  # the summary


def _line(id_: str, text: str, start: float, end: float) -> Segment:
    return Segment(id_, start, end, text, [Word(text, start, end)])


def test_a_line_left_without_words_is_said_by_its_sentences_neighbour(fake_engines) -> None:
    """A sentence cut over two lines ("We" / "have a plan.") whose translation is one word:
    one line gets all of it, and the other is marked as said by it."""
    lines = [_line("s0001", "We", 1.0, 1.2), _line("s0002", "have a plan.", 1.5, 2.5)]
    fake_engines.translator.replies["We have a plan."] = "Planeamos."
    report = translate_segments(lines, "en", "es", fake_engines.translator)
    said = sorted((t.text, t.fallback) for t in (line.translations["es"] for line in lines))
    assert said == [("", "merged"), ("Planeamos.", "")]
    assert report.merged == 1 and report.from_source == 0


def test_a_detected_language_that_cannot_be_dubbed_says_what_was_heard(
    cli, talk: Path, fake_engines
) -> None:
    fake_engines.recognizer.language = "el"  # as Whisper base hears a short English clip
    code, _, err = cli("dub", str(talk), "--to", "es")
    flat = " ".join(err.split())
    assert code == 1, err
    assert (
        "The spoken language was detected as Greek ('el', probability 0.99, heard in the "
        "first 10 s), and then: The fake translator cannot translate el to es." in flat
    )
    assert "If it is another language, say which with --from (e.g. --from en)." in flat
    assert "Traceback" not in err
