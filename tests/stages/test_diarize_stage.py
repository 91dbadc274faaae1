"""The diarize stage's parts on hand-built data, and the whole product on a generated
two-speaker dialogue: speakers found, lines split at speaker changes, one distinct voice
per speaker, renames and merges made by editing the project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from octavia_cli.engines.diarization.base import Turn
from octavia_cli.project.records import Segment, Word
from octavia_cli.stages.diarize import reference_spans, rename_by_appearance, split_by_speaker


def _line(id_: str, words: list[tuple[str, float, float]]) -> Segment:
    ws = [Word(t, a, b) for t, a, b in words]
    return Segment(id_, ws[0].start_s, ws[-1].end_s, "".join(t for t, _, _ in words), ws)


def test_a_line_is_split_where_the_speaker_changes() -> None:
    turns = [Turn(0.0, 2.1, "S1"), Turn(2.2, 4.0, "S2"), Turn(4.5, 6.0, "S1")]
    lines = [
        _line("s0001", [("Hello", 0.1, 0.5), (" there.", 0.6, 1.0), (" Hi", 2.3, 2.6),
                        (" back.", 2.7, 3.0)]),
        _line("s0002", [("Fine", 4.6, 5.0), (" thanks.", 5.1, 5.5)]),
        _line("s0003", [("Still", 6.05, 6.3)]),  # after the last turn: the nearest speaker
    ]  # fmt: skip
    result = split_by_speaker(lines, turns)
    assert [(s.id, s.speaker, s.text) for s in result] == [
        ("s0001", "S1", "Hello there."),
        ("s0001b", "S2", "Hi back."),
        ("s0002", "S1", "Fine thanks."),
        ("s0003", "S1", "Still"),
    ]
    assert result[0].start_s == 0.1 and result[0].end_s == 1.0
    assert result[1].start_s == 2.3 and result[1].end_s == 3.0


def test_speakers_are_named_in_order_of_appearance() -> None:
    turns = [Turn(3, 4, "SPEAKER_07"), Turn(0, 1, "SPEAKER_02"), Turn(5, 6, "SPEAKER_07")]
    assert [t.speaker for t in rename_by_appearance(turns)] == ["S1", "S2", "S2"]


def test_references_avoid_overlapping_speech_and_stay_within_twelve_seconds() -> None:
    own = [Turn(0, 5, "S1"), Turn(10, 20, "S1"), Turn(30, 31.5, "S1"), Turn(40, 40.8, "S1")]
    others = [Turn(12, 13, "S2")]  # talks over S1's second turn
    spans = reference_spans(own, others)
    total = sum(b - a for a, b in spans)
    assert total <= 12.0 + 1e-6
    assert all(b - a >= 1.0 for a, b in spans)
    assert not any(a < 13 and b > 12 for a, b in spans)  # never over S2's speech
    assert [40, 40.8] not in spans  # too short to be worth cloning from


@pytest.fixture(scope="module")
def dialogue_dub(tmp_path_factory: pytest.TempPathFactory, isolated_module: None):
    """A generated one-minute two-speaker dialogue (video), dubbed once with the offline
    preset: the whole product, real engines, on two voices."""
    from conftest import make_dialogue
    from octavia_cli.cli import run

    folder = tmp_path_factory.mktemp("dialogue")
    video, reference = make_dialogue(folder / "dialogue.mp4", 60.0)
    code = run(["--quiet", "dub", str(video), "--to", "es", "--from", "en"])
    assert code == 0
    return video, reference


def _project(video: Path) -> dict:
    return json.loads((video.parent / "dialogue.octavia" / "project.json").read_text())


@pytest.mark.slow
def test_two_speakers_get_two_voices_and_their_lines_land_where_they_spoke(
    dialogue_dub,
) -> None:
    video, reference = dialogue_dub
    project = _project(video)
    assert [s["id"] for s in project["speakers"]] == ["S1", "S2"]
    low, high = project["speakers"]
    assert low["pitch_hz"] < 165 < high["pitch_hz"]  # A is the low voice, B the high one
    voices = project["stages"]["synthesize:es"]["info"]["voices"]
    assert voices["S1"] != voices["S2"]
    assert voices == {"S1": "es+m3", "S2": "es+f4"}
    names = {"A": "S1", "B": "S2"}
    segments = project["transcript"]["segments"]
    placed = 0
    for segment in segments:
        fit = segment["fits"]["es"]
        clip = segment["clips"]["es"]
        assert clip["voice"] == voices[segment["speaker"]]
        middle = (fit["start_s"] + fit["end_s"]) / 2
        spoken_by = [s for a, b, s in reference if a - 0.3 <= middle <= b + 0.3]
        if spoken_by:
            placed += names[spoken_by[0]] == segment["speaker"]
    assert placed >= 0.9 * len(segments)
    # Each voice is cloned from its own speaker's speech: every reference span lies inside
    # a turn of that generated speaker.
    for speaker, who in (("S1", "A"), ("S2", "B")):
        spans = next(s for s in project["speakers"] if s["id"] == speaker)["reference"]
        assert 6.0 <= sum(b - a for a, b in spans) <= 12.0 + 1e-6
        for a, b in spans:
            assert any(
                s == who and start - 0.3 <= a and b <= end + 0.3 for start, end, s in reference
            ), (speaker, a, b)


@pytest.mark.slow
def test_the_dialogue_dub_keeps_timing_within_the_band(dialogue_dub) -> None:
    video, _ = dialogue_dub
    report = json.loads(
        (video.parent / "dialogue.octavia" / "report" / "timing.es.json").read_text()
    )
    totals = report["totals"]
    # Whisper base's transcript of this dialogue depends on the number of threads its
    # arithmetic runs on: 19 of 20 lines with one (OMP/OpenBLAS_NUM_THREADS=1), 17 of 20
    # with two, the suite's way on two cores ("All those three years", the 0.9 s pause
    # after "All" a line of its own). The "drift" of 12-05 was this, not a package.
    assert totals["within_10_percent_share"] >= 0.85, totals
    assert totals["max_speed"] <= 1.3 + 1e-6
    assert all(line["speed"] >= 0.9 - 1e-6 for line in report["lines"])
    assert totals["lines"] == len(_project(video)["transcript"]["segments"])  # none dropped
    assert all(line["dub_s"] > 0 for line in report["lines"])
    assert (video.parent / "dialogue.es.mp4").exists()


def _copy_of(dialogue_dub, folder: Path) -> tuple[Path, Path, dict]:
    """The dubbed dialogue and its project copied into ``folder``, ready to edit: the video,
    its manifest and the manifest's data."""
    source, _ = dialogue_dub
    video = folder / "dialogue.mp4"
    shutil.copy(source, video)
    shutil.copytree(source.parent / "dialogue.octavia", folder / "dialogue.octavia")
    manifest = folder / "dialogue.octavia" / "project.json"
    data = json.loads(manifest.read_text())
    data["source"]["path"] = str(video.resolve())
    return video, manifest, data


@pytest.mark.slow
def test_renaming_and_merging_speakers_by_editing_the_project(
    dialogue_dub, tmp_path: Path, cli
) -> None:
    video, manifest, data = _copy_of(dialogue_dub, tmp_path)
    before = {s["id"]: s["clips"]["es"]["key"] for s in data["transcript"]["segments"]}
    speaker_of = {s["id"]: s["speaker"] for s in data["transcript"]["segments"]}

    data["speakers"][1]["label"] = "Maria"  # a rename: nothing to redo
    manifest.write_text(json.dumps(data))
    code, _, err = cli("dub", str(video), "--to", "es", "--from", "en", "--force")
    assert code == 0, err
    assert "synthesize:es: skipped" in err and "diarize: skipped" in err

    data = json.loads(manifest.read_text())
    data["speakers"][1]["label"] = data["speakers"][0]["label"]  # a merge: S2 speaks as S1
    manifest.write_text(json.dumps(data))
    code, _, err = cli("dub", str(video), "--to", "es", "--from", "en", "--force")
    assert code == 0, err
    data = json.loads(manifest.read_text())
    assert data["stages"]["synthesize:es"]["info"]["synthesized"] == sum(
        1 for s in speaker_of.values() if s == "S2"
    )  # only S2's lines were redone
    after = {s["id"]: s["clips"]["es"] for s in data["transcript"]["segments"]}
    for line, speaker in speaker_of.items():
        assert (after[line]["key"] == before[line]) == (speaker == "S1")
        assert after[line]["voice"] == "es+m3"  # one voice for the merged speaker


@pytest.mark.slow
def test_overlapping_lines_of_two_speakers_are_both_kept(dialogue_dub, tmp_path: Path, cli) -> None:
    video, manifest, data = _copy_of(dialogue_dub, tmp_path)
    segments = data["transcript"]["segments"]
    # The first line of S2 that follows a line of S1: make it start 0.6 s before S1 ends,
    # as if they talked over each other.
    index = next(
        i for i in range(1, len(segments))
        if segments[i]["speaker"] == "S2" and segments[i - 1]["speaker"] == "S1"
    )  # fmt: skip
    first, second = segments[index - 1], segments[index]
    second["start_s"] = round(first["end_s"] - 0.6, 3)
    manifest.write_text(json.dumps(data))
    code, _, err = cli("dub", str(video), "--to", "es", "--from", "en", "--force")
    assert code == 0, err
    data = json.loads(manifest.read_text())
    by_id = {s["id"]: s for s in data["transcript"]["segments"]}
    a, b = by_id[first["id"]], by_id[second["id"]]
    assert a["clips"]["es"]["voice"] != b["clips"]["es"]["voice"]  # each in their own voice
    fa, fb = a["fits"]["es"], b["fits"]["es"]
    assert fa["end_s"] - fa["start_s"] > 0 and fb["end_s"] - fb["start_s"] > 0  # both kept
    assert fb["start_s"] < fa["end_s"]  # and they overlap, as the speech did
    assert abs(fb["shift_s"]) <= 0.3  # the second was not pushed behind the first


def test_a_boundary_inside_a_sentence_does_not_split_it() -> None:
    """A diarization boundary that falls inside a word or a short gap (the meeting's
    "Okay, well, I think we're ready" / "to begin") leaves the line whole; another speaker
    who really talks (a second or more, or set off by pauses) still gets a line."""
    turns = [Turn(0.0, 1.62, "S1"), Turn(1.62, 2.1, "S2"), Turn(2.1, 3.0, "S1"),
             Turn(4.0, 5.2, "S2")]  # fmt: skip
    lines = [
        _line("s0001", [("Okay,", 0.1, 0.4), (" well,", 0.45, 0.8), (" I", 0.85, 0.95),
                        (" think", 1.0, 1.3), (" we're", 1.35, 1.6), (" ready", 1.65, 2.0),
                        (" to", 2.05, 2.2), (" begin.", 2.25, 2.8)]),
        _line("s0002", [("Sure,", 2.9, 2.98), (" go", 4.1, 4.5), (" ahead.", 4.55, 5.1)]),
    ]  # fmt: skip
    result = split_by_speaker(lines, turns)
    assert [(s.id, s.speaker, s.text) for s in result] == [
        ("s0001", "S1", "Okay, well, I think we're ready to begin."),
        ("s0002", "S1", "Sure,"),
        ("s0002b", "S2", "go ahead."),  # over a second, after a pause: a real turn
    ]
