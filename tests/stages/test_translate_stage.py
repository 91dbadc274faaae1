"""Translation by sentence, glossaries and length control, with Apertium (real, offline)
and the pure functions they rest on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from octavia_cli.engines.mt.apertium import ApertiumEngine
from octavia_cli.errors import InputError
from octavia_cli.project.records import Segment
from octavia_cli.stages.translate import (
    TranslateOptions,
    sentence_units,
    split_translation,
    translate_segments,
)
from octavia_cli.text.glossary import Glossary, Term, load_glossary
from octavia_cli.text.length import choose, condense, estimate_s, slot_ratio, spoken_characters


def _segments(*lines: tuple[float, float, str]) -> list[Segment]:
    return [Segment(str(i), a, b, text) for i, (a, b, text) in enumerate(lines)]


def test_a_sentence_split_over_lines_is_translated_whole() -> None:
    engine = ApertiumEngine()
    segments = _segments(
        (0.0, 1.2, "Welcome to the city"), (1.3, 3.0, "library of old books."), (5.0, 6.0, "Bye.")
    )
    assert [len(u) for u in sentence_units(segments)] == [2, 1]
    translate_segments(segments, "en", "es", engine)
    whole = engine.translate(["Welcome to the city library of old books."], "en", "es")[0]
    pieces = [s.translations["es"].text for s in segments[:2]]
    assert all(pieces) and " ".join(pieces) == whole
    assert segments[2].translations["es"].text == "Adiós."
    # A second speaker or a long pause starts a new unit.
    segments[1].speaker = "S2"
    assert [len(u) for u in sentence_units(segments)] == [1, 1, 1]


def test_split_translation_follows_the_source_shares() -> None:
    assert split_translation("uno dos tres cuatro", [10, 10], False) == ["uno dos", "tres cuatro"]
    assert split_translation("uno dos tres", [1, 30], False) == ["uno", "dos tres"]
    assert split_translation("一二三四", [1, 1], True) == ["一二", "三四"]
    assert split_translation("solo", [5, 5, 5], False)[0] == "solo"


def test_glossary_with_apertium_forces_and_keeps_terms(caplog: pytest.LogCaptureFixture) -> None:
    glossary = Glossary((Term("library", "mediateca"), Term("Octavia", "")))
    segments = _segments((0.0, 3.0, "Octavia opens the city library."))
    translate_segments(segments, "en", "es", ApertiumEngine(), TranslateOptions(glossary))
    text = segments[0].translations["es"].text
    assert "mediateca" in text and "Octavia" in text and "biblioteca" not in text
    assert "would not keep" not in caplog.text


def test_glossary_files(tmp_path: Path) -> None:
    csv_file = tmp_path / "terms.csv"
    csv_file.write_text("source,target\nlibrary,mediateca\nOctavia,\n")
    toml_file = tmp_path / "terms.toml"
    toml_file.write_text('[terms]\nlibrary = "mediateca"\nOctavia = ""\n')
    expected = (Term("library", "mediateca"), Term("Octavia", ""))
    assert load_glossary(csv_file).terms == expected == load_glossary(toml_file).terms
    (tmp_path / "bad.csv").write_text("en,es\nlibrary,mediateca\n")
    with pytest.raises(InputError, match="header source,target"):
        load_glossary(tmp_path / "bad.csv")
    (tmp_path / "bad.toml").write_text("library = 1\n")
    with pytest.raises(InputError, match=r"\[terms\]"):
        load_glossary(tmp_path / "bad.toml")
    with pytest.raises(InputError, match="does not exist"):
        load_glossary(tmp_path / "none.csv")
    glossary = load_glossary(csv_file)
    assert {t.source for t in glossary.applicable("The LIBRARY of Octavia")} == {
        "Octavia",
        "library",
    }
    assert glossary.applicable("libraryish") == []  # whole words only


def test_condense_removes_fillers_not_content() -> None:
    text = "Well, you know, I think that basically the new library is very very beautiful."
    assert condense(text, "en") == "I think that the new library is very beautiful."
    assert condense("I like books, so I read.", "en") is None
    assert condense("Um, hello.", "en") == "Hello."


def test_choose_keeps_the_most_faithful_candidate_that_fits() -> None:
    candidates = [("a" * 40, False), ("a" * 30, False), ("a" * 20, False), ("a" * 10, True)]
    # 2 s slot at 10 chars/s and at most 1.5x: 30 characters fit (1.5x), 40 do not.
    choice = choose(candidates, slot_ratio(2.0, 10.0), 10.0, 1.5)
    assert (choice.index, choice.ratio, choice.estimated_s) == (1, 1.5, 3.0)
    choice = choose(candidates, slot_ratio(0.5, 10.0), 10.0, 1.5)  # nothing fits: shortest
    assert choice.index == 3 and choice.condensed
    assert estimate_s("Hola, mundo.", 10.0) == pytest.approx(0.9)
    assert spoken_characters("¡Hola, mundo!") == 9


def test_length_control_with_apertium_uses_the_condensed_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "Well, you know, I think that basically the new library is very very beautiful."
    segments = _segments((0.0, 2.0, text))
    engine = ApertiumEngine()
    full = engine.translate([text], "en", "es")[0]
    rate = 14.0  # characters per second of the (imagined) voice
    options = TranslateOptions(max_speed=1.3, rate=lambda texts: rate)
    report = translate_segments(segments, "en", "es", engine, options)
    translation = segments[0].translations["es"]
    assert estimate_s(full, rate) / 2.0 > 1.3  # the best translation did not fit...
    assert translation.condensed and translation.candidate == 1 and translation.candidates == 2
    assert len(translation.text) < len(full)  # ...a shorter, faithful one was kept
    assert translation.estimated_s == pytest.approx(estimate_s(translation.text, rate), abs=1e-3)
    assert translation.ratio == pytest.approx(translation.estimated_s / 2.0, abs=1e-3)
    assert report.shortened == 1 and report.chars_per_s == rate
    # Without length control the best translation stays.
    segments = _segments((0.0, 2.0, text))
    translate_segments(segments, "en", "es", engine)
    assert segments[0].translations["es"].text == full


def test_missing_glossary_terms_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    class Stubborn(ApertiumEngine):
        keeps_unknown_words = False  # as a neural engine: no placeholders

    glossary = Glossary((Term("city", "urbe"),))
    segments = _segments((0.0, 2.0, "The city library."))
    with caplog.at_level(logging.WARNING, logger="octavia_cli"):
        report = translate_segments(segments, "en", "es", Stubborn(), TranslateOptions(glossary))
    assert report.missing_terms == {"city": 1}
    assert "'city' (1x)" in caplog.text
