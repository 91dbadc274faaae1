"""`octavia translate` on subtitles, with a glossary, and the glossary in a dub."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pysubs2
import pytest


def test_subtitles_keep_their_timing_and_sentences_stay_whole(cli, tmp_path: Path) -> None:
    source = tmp_path / "talk.srt"
    source.write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nWelcome to the city\n\n"
        "2\n00:00:02,600 --> 00:00:04,000\nlibrary of old books.\n\n"
        "3\n00:00:06,000 --> 00:00:07,000\nThank you.\n"
    )
    out = tmp_path / "talk.es.srt"
    code, _, err = cli("translate", str(source), "--from", "en", "--to", "es", "-o", str(out))
    assert code == 0, err
    original, translated = pysubs2.load(str(source)), pysubs2.load(str(out))
    assert [(e.start, e.end) for e in translated] == [(e.start, e.end) for e in original]
    joined = " ".join(e.plaintext for e in translated[:2])
    assert "biblioteca" in joined and "libros" in joined
    assert translated[2].plaintext == "Gracias."
    code, _out_text, err = cli("translate", str(source), "--to", "es")
    assert code == 1 and "--from" in err


@pytest.mark.slow
def test_glossary_on_stdin_and_in_a_dub(cli, monkeypatch, talk: Path, tmp_path: Path) -> None:
    glossary = tmp_path / "terms.toml"
    glossary.write_text('[terms]\nlibrary = "mediateca"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("The city library.\n"))
    code, out, err = cli(
        "translate", "--from", "en", "--to", "es", "--glossary", str(glossary), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert "mediateca" in data["lines"][0]["translation"] and data["glossary_misses"] == {}

    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--glossary", str(glossary))
    assert code == 0, err
    project = json.loads((talk.with_name("talk.octavia") / "project.json").read_text())
    first = project["transcript"]["segments"][0]["translations"]["es"]
    assert "mediateca" in first["text"]
    assert first["estimated_s"] > 0 and first["ratio"] > 0  # length control recorded
    assert project["stages"]["translate:es"]["info"]["chars_per_s"] > 5

    code, _, err = cli("dub", str(talk), "--to", "es", "--glossary", str(tmp_path / "no.csv"))
    assert code == 1 and "does not exist" in err


@pytest.mark.slow
def test_engine_and_model_flags_are_checked_first(cli, talk: Path) -> None:
    assert cli("transcribe", str(talk), "-l", "en")[0] == 0
    project = talk.with_name("talk.octavia")
    code, _, err = cli(
        "translate", str(project), "--to", "es", "--engine", "transformers", "--model",
        "opus-mt-en-de",
    )  # fmt: skip
    assert code == 1 and "has no English→Spanish" in err
    code, _, err = cli("translate", str(project), "--to", "es", "--engine", "deepl")
    assert code == 1 and "must be one of apertium, transformers" in err
