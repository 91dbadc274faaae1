"""`octavia subtitles` end to end on generated speech: the rules are checked on the files it
writes, read back with pysubs2, and the videos it makes with ffprobe."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pysubs2
import pytest

from helpers import stream_md5, streams

LONG_SPEECH = (
    (
        0.5,
        "This is a rather long sentence that we speak here, so that the subtitle has to be "
        "split across more than one cue, as the rules of the trade demand.",
    ),
    (14.0, "And after a long pause, a short one."),
)
PAUSE = (11.5, 13.9)  # no speech here: no cue may span it


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import make_media

    return make_media(tmp_path_factory.mktemp("long") / "lecture.mp4", LONG_SPEECH, duration_s=18.0)


def _copy(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, folder / source.name))


def _assert_rules(subs: pysubs2.SSAFile, *, max_chars: int = 42, max_lines: int = 2) -> None:
    assert len(subs) > 0
    for event in subs:
        lines = event.plaintext.split("\n")
        duration = (event.end - event.start) / 1000
        assert 1 <= len(lines) <= max_lines, lines
        assert all(len(line) <= max_chars for line in lines), lines
        assert sum(len(line) for line in lines) / duration <= 17.0 + 1e-3, event.plaintext
        assert 0.83 - 1e-3 <= duration <= 7.0 + 1e-3
        assert not (event.start / 1000 < PAUSE[0] and event.end / 1000 > PAUSE[1])
    for before, after in itertools.pairwise(subs):
        assert after.start - before.end >= 83


@pytest.mark.slow
def test_source_subtitles_keep_every_rule(cli, long_talk: Path, tmp_path: Path) -> None:
    video = _copy(long_talk, tmp_path / "a")
    code, out, err = cli("subtitles", str(video), "--from", "en")
    assert code == 0, err
    srt = video.with_suffix(".srt")
    assert out.strip() == str(srt)
    subs = pysubs2.load(str(srt))
    _assert_rules(subs)
    assert len(subs) >= 3  # the long sentence needed more than one cue
    text = " ".join(e.plaintext.replace("\n", " ") for e in subs).lower()
    assert "long sentence" in text and "short one" in text
    # Stricter rules from the command line are met too.
    narrow = tmp_path / "narrow.vtt"
    code, _, err = cli(
        "subtitles", str(video), "--from", "en", "-o", str(narrow), "--max-line-chars", "30",
        "--max-lines", "1",
    )  # fmt: skip
    assert code == 0, err
    assert narrow.read_text().startswith("WEBVTT")
    _assert_rules(pysubs2.load(str(narrow)), max_chars=30, max_lines=1)


def test_translated_subtitles_every_format_and_byte_identical(
    cli, talk: Path, tmp_path: Path, fake_engines
) -> None:
    outputs = {}
    for fmt in ("srt", "vtt", "ass", "json", "txt"):
        target = tmp_path / f"out.{fmt}"
        code, _, err = cli("subtitles", str(talk), "--to", "es", "-o", str(target))
        assert code == 0, err
        outputs[fmt] = target
    assert "[es] Welcome" in outputs["srt"].read_text()
    reference = pysubs2.load(str(outputs["srt"]))
    _assert_rules(reference)
    for fmt in ("vtt", "ass", "json"):
        parsed = pysubs2.load(str(outputs[fmt]))
        assert [e.plaintext for e in parsed] == [e.plaintext for e in reference]
        assert [e.start for e in parsed] == pytest.approx([e.start for e in reference], abs=10)
    assert outputs["txt"].read_text().split("\n\n")[0] == reference[0].plaintext
    # A fresh project (transcribed and translated again) writes the same bytes.
    again = _copy(talk, tmp_path / "again")
    code, _, err = cli("subtitles", str(again), "--to", "es", "--format", "srt", "-o", "-")
    assert code == 0, err
    assert err.count("transcribe: done") == 1
    assert outputs["srt"].read_bytes() == _stdout_bytes(cli, again)


def _stdout_bytes(cli, video: Path) -> bytes:
    code, out, err = cli("subtitles", str(video), "--to", "es", "-o", "-")
    assert code == 0, err
    return out.encode("utf-8")


@pytest.mark.slow
def test_subtitles_then_dub_transcribes_once(cli, talk: Path, fake_engines) -> None:
    code, _, err = cli("subtitles", str(talk), "--to", "es")
    assert code == 0, err
    assert talk.with_name("talk.es.srt").exists()
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert code == 0, err
    assert "transcribe: skipped" in err and "translate:es: skipped" in err


def test_project_folder_as_input_and_json_on_stdout(cli, talk: Path, fake_engines) -> None:
    assert cli("transcribe", str(talk))[0] == 0
    project = talk.with_name("talk.octavia")
    talk.unlink()  # the transcript is enough for a subtitle file
    code, out, err = cli("--quiet", "subtitles", str(project), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["language"] == "en" and data["tracks"][0]["translated"] is False
    assert len(data["tracks"][0]["cues"]) == 4
    assert Path(data["outputs"][0]).name == "talk.srt"
    code, _, err = cli("subtitles", str(project), "--embed")
    assert code == 1 and "is gone" in err


def test_embed_adds_tagged_tracks_and_copies_the_rest(
    cli, talk: Path, tmp_path: Path, fake_engines
) -> None:
    code, out, err = cli("subtitles", str(talk), "--to", "es", "--to", "en", "--embed")
    assert code == 0, err
    output = talk.with_name("talk.subtitled.mp4")
    assert out.strip() == str(output)
    subtitle_streams = [s for s in streams(output) if s["codec_type"] == "subtitle"]
    assert [(s["codec_name"], s["tags"]["language"]) for s in subtitle_streams] == [
        ("mov_text", "spa"),
        ("mov_text", "eng"),
    ]
    assert stream_md5(output, "0:v") == stream_md5(talk, "0:v")
    assert stream_md5(output, "0:a") == stream_md5(talk, "0:a")
    # Matroska keeps ASS when asked for it; a re-run may replace its own output.
    mkv = tmp_path / "talk.mkv"
    for _ in range(2):
        code, _, err = cli(
            "subtitles", str(talk), "--to", "es", "--embed", "--format", "ass", "-o", str(mkv)
        )
        assert code == 0, err
    (track,) = [s for s in streams(mkv) if s["codec_type"] == "subtitle"]
    assert track["codec_name"] == "ass" and track["tags"]["language"] == "spa"


def test_burn_in_draws_the_text_and_copies_the_audio(cli, talk: Path, fake_engines) -> None:
    code, _out, err = cli("subtitles", str(talk), "--to", "es", "--burn-in")
    assert code == 0, err
    output = talk.with_name("talk.es.subtitled.mp4")
    assert stream_md5(output, "0:a") == stream_md5(talk, "0:a")
    assert not [s for s in streams(output) if s["codec_type"] == "subtitle"]
    # Where a cue is shown the picture differs from the source; where none is, it does not.
    cues = pysubs2.load(str(talk.with_name("talk.octavia") / "subtitles" / "es.burn-in.ass"))
    longest = max(cues, key=lambda cue: len(cue.plaintext))
    shown = (longest.start + longest.end) / 2000
    assert _frame_difference(talk, output, shown) > 3 * _frame_difference(talk, output, 9.9)


def _frame_difference(a: Path, b: Path, at_s: float) -> float:
    import numpy as np

    from helpers import frame

    return float(np.abs(frame(a, at_s).astype(float) - frame(b, at_s).astype(float)).mean())


def test_errors_are_one_sentence(cli, talk: Path, media_factory) -> None:
    song = media_factory("song.wav", video=False)
    code, _, err = cli("subtitles", str(song), "--burn-in")
    assert code == 1 and "needs a video" in err
    code, _, err = cli("subtitles", str(talk), "--to", "es", "--to", "fr", "-o", "x.srt")
    assert code == 1 and "{lang}" in err
    code, _, err = cli("subtitles", str(talk), "--to", "xx")
    assert code == 1 and "not a known" in err
    talk.with_name("talk.srt").write_text("mine")
    code, _, err = cli("subtitles", str(talk))
    assert code == 1 and "already exists" in err
    assert talk.with_name("talk.srt").read_text() == "mine"
    assert "Traceback" not in err


def test_conflicting_output_options(cli, talk: Path) -> None:
    code, _, err = cli("subtitles", str(talk), "--embed", "--burn-in")
    assert code == 1 and "cannot be combined" in err
    code, _, err = cli("subtitles", str(talk), "-o", "-", "--json")
    assert code == 1 and "both write to stdout" in err
    code, _, err = cli("subtitles", str(talk), "-o", "-", "--embed")
    assert code == 1 and "not a video" in err
    code, _, err = cli("subtitles", str(talk), "-o", "-", "--to", "es", "--to", "fr")
    assert code == 1 and "takes one language" in err
    code, _, err = cli("subtitles", str(talk), "--remote", "--json")
    assert code == 1 and "locally only" in err
