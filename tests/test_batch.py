"""Batches: `octavia dub` on several files or a folder, one after another, going on past a
file that fails and listing the failures at the end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from octavia_cli.pipeline import expand_inputs

LINES = ((0.3, "Hello and welcome."), (2.5, "This is the show."))


def test_a_folder_with_a_corrupt_file_in_the_middle(
    cli, media_factory, tmp_path: Path, fake_engines
) -> None:
    folder = tmp_path / "episodes"
    folder.mkdir()
    first = media_factory("ep1.mp3", lines=LINES, duration_s=5.0, video=False)
    third = media_factory("ep3.mp3", lines=LINES, duration_s=5.0, video=False)
    shutil.move(first, folder / "ep1.mp3")
    shutil.move(third, folder / "ep3.mp3")
    (folder / "ep2.mp3").write_bytes(b"ID3 this is not an mp3 at all" * 100)
    code, out, err = cli("dub", str(folder), "--to", "es", "--from", "en")
    assert code == 1, err
    assert out.split() == [str(folder / "ep1.es.mp3"), str(folder / "ep3.es.mp3")]
    assert "(2/3)" in err and "1 of 3 files failed" in err and "ep2.mp3" in err
    assert (folder / "ep1.es.mp3").exists() and (folder / "ep3.es.mp3").exists()
    # Again: the dubs are skipped (and not taken as inputs), the broken file still fails.
    # With --json, for scripts: one document on stdout.
    code, out, err = cli("dub", str(folder), "--to", "es", "--from", "en", "--json")
    assert code == 1 and err.count("mux:es: skipped") == 2 and "(3/3)" in err
    assert "(4/" not in err
    report = json.loads(out)
    assert [entry["outputs"] for entry in report["dubbed"]] == [
        {"es": str(folder / "ep1.es.mp3")},
        {"es": str(folder / "ep3.es.mp3")},
    ]
    for entry in report["dubbed"]:
        assert entry["source_language"] == "en" and entry["speakers"] == 1
        assert entry["timing"]["es"]["lines"] == 2 and Path(entry["project"]).is_dir()
    [failure] = report["failed"]
    assert failure["source"] == str(folder / "ep2.mp3") and failure["exit_code"] == 1


def test_several_files_and_output_patterns(
    cli, media_factory, tmp_path: Path, fake_engines
) -> None:
    a = media_factory("a.wav", lines=LINES, duration_s=5.0, video=False)
    b = media_factory("b.wav", lines=LINES, duration_s=5.0, video=False)
    code, _, err = cli("dub", str(a), str(b), "--to", "es", "-o", str(tmp_path / "x.wav"))
    assert code == 1 and "{stem}" in err
    pattern = str(tmp_path / "out" / "{stem}-{lang}.wav")
    code, out, err = cli("dub", str(a), str(b), "--to", "es", "--from", "en", "-o", pattern)
    assert code == 0, err
    assert out.split() == [str(tmp_path / "out" / "a-es.wav"), str(tmp_path / "out" / "b-es.wav")]


def test_expand_inputs_skips_dubs_and_projects(tmp_path: Path) -> None:
    for name in ("talk.mp4", "talk.es.mp4", "talk.subtitled.mp4", "notes.txt", "b.flac",
                 "intro.v2.mp3"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "talk.octavia").mkdir()
    assert expand_inputs([tmp_path]) == [
        tmp_path / "b.flac",
        tmp_path / "intro.v2.mp3",
        tmp_path / "talk.mp4",
    ]
    # What a shell makes of episodes/*.mp4 after a first run, and the same glob quoted.
    given = sorted(tmp_path.glob("*.mp4"))
    assert tmp_path / "talk.es.mp4" in given
    assert expand_inputs(given) == [tmp_path / "talk.mp4"]
    assert expand_inputs([tmp_path / "*.mp4"]) == [tmp_path / "talk.mp4"]
    assert expand_inputs([tmp_path / "talk.es.mp4"]) == [tmp_path / "talk.es.mp4"]  # as asked


def test_dry_run_plans_without_running(cli, talk: Path) -> None:
    import json

    code, out, err = cli("dub", str(talk), "--to", "es", "--to", "fr", "--from", "en",
                         "--dry-run")  # fmt: skip
    assert code == 0, err
    (plan,) = json.loads(out)
    assert plan["targets"] == ["es", "fr"] and plan["duration_s"] == 10.0
    assert plan["stages"][:4] == ["extract", "transcribe", "diarize", "translate:es"]
    assert plan["engines"]["separation"] == "none" and plan["engines"]["diarization"] == "offline"
    assert plan["models"] == [
        {
            "name": "bundled:whisper-base",
            "kind": "asr",
            "size_mb": 145,
            "license": "MIT (OpenAI Whisper)",
            "cached": True,
        }
    ]
    assert plan["estimated_s"] > 0 and plan["work_disk_mb"] > 1
    assert len(plan["problems"]) == 1 and "no English→French" in plan["problems"][0]
    assert not talk.with_name("talk.octavia").exists()  # nothing ran
