"""`transcribe`, `translate` and `synthesize`: each runs one part of the same pipeline."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import soundfile

from helpers import speech_onsets, streams


@pytest.mark.slow
def test_transcribe_prints_lines_and_json(cli, talk: Path, tmp_path: Path) -> None:
    code, out, err = cli("transcribe", str(talk), "--language", "en")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("[00:00.")
    assert "library" in lines[0].lower()

    code, out, _ = cli("--quiet", "transcribe", str(talk), "--language", "en", "--json")
    data = json.loads(out)  # stdout holds the JSON only
    assert data["language"] == "en" and len(data["segments"]) == 4
    assert all(s["words"] and s["start_s"] < s["end_s"] for s in data["segments"])

    target = tmp_path / "t.json"
    assert cli("transcribe", str(talk), "-l", "en", "-o", str(target))[0] == 0
    assert json.loads(target.read_text()) == data
    code, _, err = cli("transcribe", str(talk), "-l", "en", "-o", str(target))
    assert code == 1 and "already exists" in err


@pytest.mark.slow
def test_transcribe_then_dub_transcribes_once(cli, talk: Path, fake_engines) -> None:
    assert cli("transcribe", str(talk), "--language", "en")[0] == 0
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en")
    assert code == 0, err
    assert "transcribe: skipped" in err


def test_translate_stdin_text(cli, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello world.\n\nThe cat is black.\n"))
    code, out, err = cli("translate", "--from", "en", "--to", "es")
    assert code == 0, err
    assert out.splitlines() == ["Hola Mundo.", "", "El gato es negro."]


def test_translate_stdin_needs_source_language(cli, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello"))
    code, _, err = cli("translate", "--to", "es")
    assert code == 1 and "Plain text needs its language" in err


@pytest.mark.slow
def test_translate_transcript_json_keeps_timing(cli, talk: Path, tmp_path: Path) -> None:
    transcript = tmp_path / "t.json"
    assert cli("transcribe", str(talk), "-l", "en", "-o", str(transcript))[0] == 0
    code, out, err = cli("translate", str(transcript), "--to", "es", "--json")
    assert code == 0, err
    data = json.loads(out)
    source = json.loads(transcript.read_text())
    assert data["target_language"] == "es" and data["language"] == "en"
    assert [(s["start_s"], s["end_s"]) for s in data["segments"]] == [
        (s["start_s"], s["end_s"]) for s in source["segments"]
    ]
    assert data["segments"][0]["translation"].startswith("Bienvenido")


def test_translate_project_folder(cli, talk: Path) -> None:
    assert cli("transcribe", str(talk), "-l", "en")[0] == 0
    folder = talk.parent / "talk.octavia"
    code, out, err = cli("translate", str(folder), "--to", "es")
    assert code == 0, err
    assert out.splitlines()[0].startswith("Bienvenido")
    manifest = json.loads((folder / "project.json").read_text())
    assert "translate:es" in manifest["stages"]
    assert all("es" in s["translations"] for s in manifest["transcript"]["segments"])


@pytest.mark.parametrize("content", ["{not json", '{"segments": 3}', '["a"]'])
def test_translate_rejects_bad_json(cli, tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = cli("translate", str(bad), "--to", "es")
    assert code == 1 and "is not a transcript JSON" in err


def test_translate_unknown_pair(cli, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello"))
    code, _, err = cli("translate", "--from", "en", "--to", "ja")
    assert code == 1 and "Apertium has no English→Japanese" in err


def test_synthesize_text(cli, tmp_path: Path) -> None:
    target = tmp_path / "hola.wav"
    code, _, err = cli("synthesize", "Hola a todos.", "--to", "es", "-o", str(target))
    assert code == 0, err
    data, rate = soundfile.read(target)
    assert rate == 22050 and 0.5 < len(data) / rate < 3 and abs(data).max() > 0.1


def test_synthesize_piper_voice_to_mp3(cli, tmp_path: Path) -> None:
    target = tmp_path / "hello.mp3"
    code, _, err = cli(
        "synthesize", "Good morning.", "--to", "en", "--tts-engine", "piper", "-o", str(target)
    )
    assert code == 0, err
    (audio,) = streams(target)
    assert audio["codec_name"] == "mp3"


@pytest.mark.slow
def test_synthesize_translation_json_on_its_timeline(cli, talk: Path, tmp_path: Path) -> None:
    transcript, translation = tmp_path / "t.json", tmp_path / "es.json"
    assert cli("transcribe", str(talk), "-l", "en", "-o", str(transcript))[0] == 0
    assert cli("translate", str(transcript), "--to", "es", "--json", "-o", str(translation))[0] == 0
    target = tmp_path / "speech.wav"
    code, _, err = cli("synthesize", str(translation), "--to", "es", "-o", str(target))
    assert code == 0, err
    starts = [s["start_s"] for s in json.loads(translation.read_text())["segments"]]
    onsets = speech_onsets(target)
    for start in starts:
        assert min(abs(start - o) for o in onsets) <= 0.1


def test_synthesize_errors(cli, tmp_path: Path) -> None:
    code, _, err = cli("synthesize", "Hola", "--to", "xx", "-o", str(tmp_path / "a.wav"))
    assert code == 1 and "'xx' is not a known ISO 639-1" in err
    code, _, err = cli(
        "synthesize", "Hello", "--to", "es", "--tts-engine", "piper", "-o", str(tmp_path / "a.wav")
    )
    assert code == 1 and "The piper engine has no voice for Spanish" in err
    code, _, err = cli(
        "synthesize", str(tmp_path / "missing.json"), "--to", "es", "-o", str(tmp_path / "a.wav")
    )
    assert code == 1 and "does not exist" in err
    existing = tmp_path / "exists.wav"
    existing.write_bytes(b"x")
    code, _, err = cli("synthesize", "Hola", "--to", "es", "-o", str(existing))
    assert code == 1 and "already exists" in err and existing.read_bytes() == b"x"
