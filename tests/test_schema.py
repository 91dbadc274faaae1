"""project.json is strict and versioned: a misspelt key is one sentence naming it and the
file, every stage's info has its type, and a project written by an older Octavia (schema 1)
is migrated and keeps working."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from octavia_cli.errors import InputError
from octavia_cli.project.manifest import SCHEMA_VERSION, Project, migrate
from octavia_cli.project.records import STAGE_INFOS

V1 = Path(__file__).parent / "data" / "project-v1.json"
EXAMPLE = Path(__file__).parents[1] / "examples" / "talk.mp4"


@pytest.fixture
def v1_project(tmp_path: Path) -> tuple[Path, Path]:
    """``talk.mp4`` (the bundled example) and its project folder as Octavia 0.x wrote it
    (schema 1, made by the commit before the redesign; the audio files are left out)."""
    source = tmp_path / "talk.mp4"
    shutil.copy(EXAMPLE, source)
    folder = tmp_path / "talk.octavia"
    folder.mkdir()
    text = (
        V1.read_text()
        .replace("{SOURCE}", str(source))
        .replace("{OUTPUT}", str(tmp_path / "talk.es.mp4"))
    )
    (folder / "project.json").write_text(text)
    return source, folder


def test_a_v1_project_is_migrated(v1_project: tuple[Path, Path]) -> None:
    source, folder = v1_project
    data = json.loads((folder / "project.json").read_text())
    assert data["schema_version"] == 1 and "within_10_percent" in data["stages"]["fit:es"]["info"]
    project = Project.open(folder, source)
    fit = project.stages["fit:es"].info
    assert fit.report == "report/timing.es.json" and fit.totals["lines"] == 4
    assert project.stages["extract"].info.sample_rate_hz == 48_000
    assert len(project.require_transcript().segments) == 4
    project.save()
    saved = json.loads((folder / "project.json").read_text())
    assert saved["schema_version"] == SCHEMA_VERSION == 3
    assert saved["stages"]["fit:es"]["info"]["totals"]["lines"] == 4
    assert migrate(saved) == saved  # the current version goes through unchanged


def test_a_v1_project_resumes_and_keeps_a_rename(cli, v1_project: tuple[Path, Path]) -> None:
    """A project folder of the old schema, with the speaker renamed by hand: the dub runs
    on it (what is missing is made again) and the name stays."""
    source, folder = v1_project
    manifest = folder / "project.json"
    data = json.loads(manifest.read_text())
    data["speakers"][0]["label"] = "Anna"
    manifest.write_text(json.dumps(data))
    code, out, err = cli("dub", str(source), "--to", "es", "--from", "en", "--force")
    assert code == 0, err
    assert Path(out.strip()).exists()
    saved = json.loads(manifest.read_text())
    assert saved["schema_version"] == 3 and saved["speakers"][0]["label"] == "Anna"
    assert "transcribe: skipped" in err  # the transcript of the old project was kept


@pytest.mark.parametrize(
    ("where", "edit", "said"),
    [
        ("a speaker", lambda d: d["speakers"][0].update(lable="Anna"),
         "unknown key 'lable' in speakers[0]. Known keys there: id, label,"),
        ("a line", lambda d: d["transcript"]["segments"][1].update(txt="Hi"),
         "unknown key 'txt' in transcript.segments[1]."),
        ("a clip", lambda d: d["transcript"]["segments"][0]["clips"]["es"].update(pat="x"),
         "unknown key 'pat' in transcript.segments[0].clips.es."),
        ("a stage's info", lambda d: d["stages"]["mix:es"]["info"].update(extra=1),
         "unknown key 'extra' in stages.mix:es.info."),
        ("the top", lambda d: d.update(speaker=[]), "unknown key 'speaker' in the top level."),
        ("a missing key", lambda d: d["transcript"]["segments"][0].pop("text"),
         "missing key 'text' in transcript.segments[0]."),
    ],
)  # fmt: skip
def test_a_misspelt_key_is_one_sentence_naming_it_and_the_file(
    cli, v1_project: tuple[Path, Path], where: str, edit, said: str
) -> None:
    source, folder = v1_project
    Project.open(folder, source).save()  # schema 2, as Octavia writes it now
    manifest = folder / "project.json"
    data = json.loads(manifest.read_text())
    edit(data)
    manifest.write_text(json.dumps(data))
    before = manifest.read_text()
    code, _, err = cli("dub", str(source), "--to", "es", "--from", "en")
    flat = " ".join(err.split())
    assert code == 1, err
    assert f"{manifest}: {said}" in flat and "Traceback" not in flat
    assert "delete the project folder to start over" in flat
    assert manifest.read_text() == before  # the user's edit is not overwritten
    with pytest.raises(InputError, match=r"unknown key|missing key"):
        Project.load(folder)


def test_every_stage_has_a_typed_info() -> None:
    """The stages of a dub each record their own type (the schema), every field with a
    JSON type."""
    assert set(STAGE_INFOS) == {"extract", "separate", "transcribe", "diarize", "translate",
                                "check", "synthesize", "fit", "mix", "lipsync", "mux"}  # fmt: skip
    for kind, info in STAGE_INFOS.items():
        assert dataclasses.is_dataclass(info), kind
        assert all(f.type for f in dataclasses.fields(info)), kind


def test_an_early_v1_project_is_read_as_v1_was(v1_project: tuple[Path, Path]) -> None:
    """Version 1 was read leniently: keys it did not know were dropped, and early releases
    wrote stage infos with fewer keys. Those keys are dropped again, and a stage whose info
    lacks what version 2 needs runs again instead of the project being refused."""
    source, folder = v1_project
    manifest = folder / "project.json"
    data = json.loads(manifest.read_text())
    del data["stages"]["fit:es"]["info"]["report"]  # before the timing report existed
    data["stages"]["synthesize:es"]["info"]["voice"] = "es"  # a retired key
    del data["stages"]["mix:es"]["info"]["ducking"]
    data["transcript"]["segments"][0]["old"] = 1
    data["transcript"]["segments"][0]["clips"]["es"]["retired"] = True
    data["speakers"][0]["colour"] = "red"
    manifest.write_text(json.dumps(data))
    project = Project.open(folder, source)
    assert set(project.stages) == {"extract", "transcribe", "diarize", "translate:es",
                                   "synthesize:es", "mux:es"}  # fmt: skip
    assert project.stages["synthesize:es"].info.voices  # kept, the retired key gone
    assert project.require_transcript().segments[0].clips["es"].engine == "espeak-ng"
    assert project.speakers[0].label == "S1"


def test_a_result_is_placed_by_its_language() -> None:
    from octavia_cli.remote.protocol import language_of

    assert language_of({"name": "talk.es.mp4", "language": "es"}, ["es", "fr"]) == "es"
    # A server from before results carried their language: its name says it.
    assert language_of({"name": "talk.fr.mp4"}, ["es", "fr"]) == "fr"
    assert language_of({"name": "talk.mp4"}, ["es"]) == "es"
    assert language_of({"name": "talk.mp4"}, ["es", "fr"]) is None


def test_a_v2_project_reads_as_v3(v1_project: tuple[Path, Path]) -> None:
    """Version 3 only added optional keys (checks, takes): a version 2 file is taken as it
    is, and its lines get their checks when the dub next runs."""
    source, folder = v1_project
    project = Project.open(folder, source)
    project.save()
    manifest = folder / "project.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 2
    manifest.write_text(json.dumps(data))
    again = Project.open(folder, source)
    assert again.require_transcript().segments[0].checks == {}
    assert migrate(data) == data | {"schema_version": 3}
