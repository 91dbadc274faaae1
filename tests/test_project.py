from __future__ import annotations

import json
from pathlib import Path

import pytest

from octavia_cli.errors import InputError, OutputExistsError
from octavia_cli.files import atomic_path, atomic_write_bytes, check_output_path
from octavia_cli.languages import alpha3, language_name, normalize_language
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import (
    ExtractInfo,
    Segment,
    TranscribeInfo,
    Transcript,
    Translation,
    format_timestamp,
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.wav"
    path.write_bytes(b"RIFF" + b"\0" * 100)
    return path


def test_manifest_round_trip(tmp_path: Path, source: Path) -> None:
    project = Project.open(tmp_path / "p", source)
    segment = Segment("s0001", 0.5, 1.5, "Hello.")
    segment.translations["es"] = Translation("Hola.", "abc", "apertium")
    project.transcript = Transcript("en", 0.9, 2.0, "faster-whisper", "m", [segment])
    project.mark_done("transcribe", "h1", 1.234, TranscribeInfo("en", 1))
    again = Project.open(tmp_path / "p", source)
    assert again.transcript == project.transcript
    assert again.is_current("transcribe", "h1") and not again.is_current("transcribe", "h2")
    data = json.loads((tmp_path / "p" / "project.json").read_text())
    assert data["schema_version"] == 3
    assert data["stages"]["transcribe"]["info"] == {"language": "en", "lines": 1}


def test_newer_schema_is_refused(tmp_path: Path, source: Path) -> None:
    Project.open(tmp_path / "p", source).save()
    manifest = tmp_path / "p" / "project.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(InputError, match="schema version 99"):
        Project.open(tmp_path / "p", source)


def test_changed_source_starts_over(tmp_path: Path, source: Path) -> None:
    project = Project.open(tmp_path / "p", source)
    project.mark_done("extract", "h", 0.1, ExtractInfo(48_000, 2, 1.0))
    source.write_bytes(b"RIFF" + b"\1" * 200)
    assert Project.open(tmp_path / "p", source).stages == {}


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt", "home"]


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Outputs are readable as any new file would be (0666 less the umask), not 0600 like
    the temporary they were written to; a file holding secrets is 0600."""
    import os

    folder = tmp_path / "out"
    previous = os.umask(0o022)
    try:
        atomic_write_bytes(folder / "talk.es.srt", b"1")
        with atomic_path(folder / "talk.es.mp4") as tmp:
            tmp.write_bytes(b"2")
        atomic_write_bytes(folder / "config.toml", b"api_key = 'x'", private=True)
        os.umask(0o077)
        atomic_write_bytes(folder / "strict.wav", b"3")
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert modes == {"talk.es.srt": 0o644, "talk.es.mp4": 0o644, "config.toml": 0o600,
                     "strict.wav": 0o600}  # fmt: skip


def test_check_output_path(tmp_path: Path) -> None:
    existing = tmp_path / "x.mp4"
    existing.write_bytes(b"1")
    with pytest.raises(OutputExistsError):
        check_output_path(existing, force=False)
    check_output_path(existing, force=True)
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path, force=True)


def test_languages() -> None:
    assert normalize_language("ES") == "es" and normalize_language("pt-BR") == "pt"
    assert alpha3("de") == "deu" and alpha3("de", bibliographic=True) == "ger"
    assert language_name("es") == "Spanish"
    for bad in ("xx", "english", "", "e1"):
        with pytest.raises(InputError):
            normalize_language(bad)


def test_format_timestamp() -> None:
    assert format_timestamp(0) == "00:00.000"
    assert format_timestamp(3725.5) == "01:02:05.500"
    assert format_timestamp(61.25, decimal=",", always_hours=True) == "00:01:01,250"
