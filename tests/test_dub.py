"""`octavia dub` end to end: on the offline preset with the real engines (the shared
``dubbed`` fixture and a few more), and with the cheap engines of ``fakes.py`` where a test
checks what the dub does with files, options and projects rather than what the engines
hear and say."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import decode, decode_16k, speech_onsets, stream_md5, streams


@dataclass(frozen=True)
class Dubbed:
    talk: Path
    input_sha256: str  # before the dub
    out: str
    err: str


@pytest.fixture(scope="module")
def dubbed(isolated_module, sample_video: Path, tmp_path_factory) -> Dubbed:
    """``talk.mp4`` dubbed into Spanish once, for the tests that only read what the dub
    made (the real console program, with a plain progress line per stage)."""
    import hashlib
    import sys

    talk = tmp_path_factory.mktemp("dubbed") / "talk.mp4"
    shutil.copy(sample_video, talk)
    digest = hashlib.sha256(talk.read_bytes()).hexdigest()
    result = subprocess.run(
        [sys.executable, "-m", "octavia_cli", "--progress", "plain", "dub", str(talk), "--to",
         "es", "--preset", "offline"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Dubbed(talk, digest, result.stdout, result.stderr)


@pytest.mark.slow
def test_dub_video_end_to_end(dubbed: Dubbed) -> None:
    talk, out, err = dubbed.talk, dubbed.out, dubbed.err
    output = talk.with_name("talk.es.mp4")
    assert out.strip() == str(output)

    # The picture is the input's, bit for bit.
    assert stream_md5(output, "0:v") == stream_md5(talk, "0:v")
    info = streams(output)
    video = next(s for s in info if s["codec_type"] == "video")
    audio = [s for s in info if s["codec_type"] == "audio"]
    assert len(audio) == 2 and audio[0]["tags"]["language"] == "spa"
    assert audio[0]["disposition"]["default"] == 1 and audio[1]["disposition"]["default"] == 0
    assert stream_md5(output, "0:a:1") == stream_md5(talk, "0:a")  # the original, kept
    assert audio[0]["sample_rate"] == "48000" and audio[0]["channels"] == 2
    # The dubbed audio lasts as long as the video.
    assert abs(float(audio[0]["duration"]) - float(video["duration"])) <= 0.05

    # Each dubbed line starts within 100 ms of where its source line starts.
    source_onsets = speech_onsets(talk)
    dubbed_onsets = speech_onsets(output)
    assert len(source_onsets) == 4
    for onset in source_onsets:
        assert min(abs(onset - d) for d in dubbed_onsets) <= 0.1, (onset, dubbed_onsets)

    # As loud as the source, and no sample over -1 dBFS.
    from octavia_cli.media.audio import peak_dbfs
    from octavia_cli.media.ffmpeg import measure_loudness

    dubbed, original = decode(output, 48_000, 2), decode(talk, 48_000, 2)
    assert abs(measure_loudness(dubbed, 48_000) - measure_loudness(original, 48_000)) < 1.0
    assert peak_dbfs(dubbed) <= -0.9

    project = json.loads((talk.parent / "talk.octavia" / "project.json").read_text())
    lines = project["transcript"]["segments"]
    assert next(s["translations"]["es"]["text"] for s in lines).startswith("Bienvenido")
    assert all(s["fits"]["es"]["status"] not in ("overflow", "pushed") for s in lines)
    assert all(s["fits"]["es"]["speed"] >= 0.9 for s in lines)
    assert all(s["fits"]["es"]["speed"] <= 1.3 for s in lines)

    # The timing report lists every line, and its summary ends the run.
    report = json.loads((talk.parent / "talk.octavia" / "report" / "timing.es.json").read_text())
    assert [line["id"] for line in report["lines"]] == [s["id"] for s in lines]
    assert report["totals"]["lines"] == 4 and report["totals"]["max_speed"] <= 1.3
    assert all(line["dub_s"] > 0 and line["violations"] == [] for line in report["lines"])
    assert "es: 4 lines" in err and "within ±10% of their slot" in err

    # report.html: one self-contained page with every line on the timeline and in the table.
    page = (talk.parent / "talk.octavia" / "report.html").read_text()
    assert f"report: {talk.parent / 'talk.octavia' / 'report.html'}" in err
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    for segment in lines:
        assert f'data-line="{segment["id"]}"' in page
        assert segment["translations"]["es"]["text"].split()[0] in page
    assert "true peak" in page


@pytest.mark.slow
def test_dubbed_speech_is_recognised_as_spanish(cli, dubbed: Dubbed, tmp_path: Path) -> None:
    code, out, _ = cli(
        "transcribe",
        str(dubbed.talk.with_name("talk.es.mp4")),
        "--json",
        "--workdir",
        str(tmp_path / "check"),
    )
    assert code == 0
    data = json.loads(out)
    assert data["language"] == "es"
    text = " ".join(s["text"] for s in data["segments"]).lower()
    expected = ("bienvenido", "biblioteca", "hoy", "libros", "semana", "viene", "gracias")
    assert sum(word in text for word in expected) >= 3, text


def test_audio_only_input_gives_same_format(cli, media_factory, fake_engines) -> None:
    episode = media_factory(
        "episode.mp3", video=False, audio_codec=["-c:a", "libmp3lame", "-q:a", "4"]
    )
    code, out, err = cli("dub", str(episode), "--to", "es", "--from", "en")
    assert code == 0, err
    output = Path(out.strip())
    assert output.name == "episode.es.mp3"
    (audio,) = streams(output)
    assert audio["codec_name"] == "mp3" and audio["sample_rate"] == "48000"
    assert abs(len(decode_16k(output)) / 16000 - 10.0) < 0.1


def test_a_dub_reads_the_input_once(cli, talk: Path, fake_engines, monkeypatch) -> None:
    """Each ffmpeg run costs a program start (about 0.15 s on a small CPU): a dub of a video
    probes it once, decodes it once (both tracks and the source's loudness), mixes in two
    runs and muxes in one. The loudness the decoding measured is the source's."""
    import subprocess

    from octavia_cli.media.ffmpeg import measure_file

    programs: list[str] = []
    run = subprocess.run

    def counted(args, *rest, **options):
        programs.append(Path(args[0]).name)
        return run(args, *rest, **options)

    monkeypatch.setattr(subprocess, "run", counted)
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en")
    assert code == 0, err
    assert programs.count("ffprobe") == 1, programs
    assert programs.count("ffmpeg") == 4, programs
    monkeypatch.setattr(subprocess, "run", run)

    folder = talk.with_name("talk.octavia")
    info = json.loads((folder / "project.json").read_text())["stages"]["extract"]["info"]
    expected, _ = measure_file(folder / "audio" / "source.wav", seconds=10.0)
    assert info["source_lufs"] == pytest.approx(expected, abs=0.1)


def test_rerun_skips_every_stage(cli, talk: Path, fake_engines) -> None:
    assert cli("dub", str(talk), "--to", "es")[0] == 0
    output = talk.with_name("talk.es.mp4")
    before = output.stat().st_mtime_ns
    manifest = talk.parent / "talk.octavia" / "project.json"
    stages_before = json.loads(manifest.read_text())["stages"]
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert code == 0
    assert err.count("skipped") == 9, err  # separate (off) and diarize included
    assert output.stat().st_mtime_ns == before
    stages_after = json.loads(manifest.read_text())["stages"]
    assert {k: v["finished_at"] for k, v in stages_after.items()} == {
        k: v["finished_at"] for k, v in stages_before.items()
    }


def test_edited_translation_resynthesizes_only_that_line(cli, talk: Path, fake_engines) -> None:
    assert cli("dub", str(talk), "--to", "es")[0] == 0
    folder = talk.parent / "talk.octavia"
    output = talk.with_name("talk.es.mp4")
    first_output = output.read_bytes()
    manifest = folder / "project.json"
    data = json.loads(manifest.read_text())
    clips = {s["id"]: folder / s["clips"]["es"]["path"] for s in data["transcript"]["segments"]}
    mtimes = {sid: path.stat().st_mtime_ns for sid, path in clips.items()}
    # An edit of the same length: the speaker's pace (from all their lines) stays the same.
    line = data["transcript"]["segments"][1]["translations"]["es"]
    assert " old " in line["text"]
    edited = line["text"] = line["text"].replace(" old ", " new ")
    manifest.write_text(json.dumps(data, indent=2, ensure_ascii=False))

    code, _, err = cli("dub", str(talk), "--to", "es")  # no --force: the output is ours
    assert code == 0, err
    assert "synthesize:es: done (1 clips)" in err
    after = {sid: path.stat().st_mtime_ns for sid, path in clips.items()}
    assert [sid for sid in clips if after[sid] != mtimes[sid]] == ["s0002"]
    data = json.loads(manifest.read_text())
    # The edit survives the re-run.
    assert data["transcript"]["segments"][1]["translations"]["es"]["text"] == edited
    assert output.read_bytes() != first_output
    assert stream_md5(output, "0:v") == stream_md5(talk, "0:v")


def test_existing_output_needs_force(cli, talk: Path, fake_engines) -> None:
    output = talk.with_name("talk.es.mp4")
    output.write_bytes(b"my own file")
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert code == 1
    assert "talk.es.mp4 already exists" in err and "--force" in err
    assert output.read_bytes() == b"my own file"
    assert not (talk.parent / "talk.octavia").exists()  # refused before any work
    code, _, err = cli("dub", str(talk), "--to", "es", "--force")
    assert code == 0, err
    assert output.read_bytes() != b"my own file"


def test_output_changed_by_user_after_dub_needs_force(cli, talk: Path, fake_engines) -> None:
    assert cli("dub", str(talk), "--to", "es")[0] == 0
    output = talk.with_name("talk.es.mp4")
    shutil.copy(talk, output)  # the user put another file there
    code, _, err = cli("dub", str(talk), "--to", "es", "--max-speed", "1.2")
    assert code == 1 and "already exists" in err
    assert stream_md5(output, "0:a") == stream_md5(talk, "0:a")


def test_workdir_and_output_options(cli, talk: Path, tmp_path: Path, fake_engines) -> None:
    out = tmp_path / "out" / "dubbed.mp4"
    out.parent.mkdir()
    code, _, err = cli(
        "dub", str(talk), "--to", "es", "-o", str(out), "--workdir", str(tmp_path / "projects")
    )
    assert code == 0, err
    assert out.exists() and (tmp_path / "projects" / "talk.octavia" / "project.json").exists()
    assert not (talk.parent / "talk.octavia").exists()


def test_output_format_follows_the_output_name(
    cli, talk: Path, tmp_path: Path, fake_engines
) -> None:
    """-o talk.es.mp3 for a video: the dub alone, as MP3; a name Octavia cannot write (or an
    audio input into a video container) is refused before any work."""
    code, _, err = cli("dub", str(talk), "--to", "es", "-o", str(tmp_path / "talk.es.mp3"))
    assert code == 0, err
    (audio,) = streams(tmp_path / "talk.es.mp3")
    assert audio["codec_type"] == "audio" and audio["codec_name"] == "mp3"
    assert abs(len(decode_16k(tmp_path / "talk.es.mp3")) / 16000 - 10.0) < 0.1
    code, _, err = cli("dub", str(talk), "--to", "es", "-o", str(tmp_path / "talk.es.txt"))
    assert code == 1 and "cannot write a dub as talk.es.txt" in err and ".mkv" in err
    wav = tmp_path / "talk.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(talk), "-vn", str(wav)], check=True)
    code, _, err = cli("dub", str(wav), "--to", "es", "-o", str(tmp_path / "talk.es.mp4"))
    assert code == 1 and "Name the output with an audio format" in err
    assert not (tmp_path / "talk.octavia").exists()


def test_several_languages_need_lang_in_output(
    cli, talk: Path, tmp_path: Path, fake_engines
) -> None:
    code, _, err = cli("dub", str(talk), "--to", "es", "--to", "fr", "-o", str(tmp_path / "x.mp4"))
    assert code == 1 and "{lang}" in err


@pytest.mark.slow
def test_input_is_never_modified(dubbed: Dubbed) -> None:
    import hashlib

    talk = dubbed.talk
    assert hashlib.sha256(talk.read_bytes()).hexdigest() == dubbed.input_sha256
    assert sorted(p.name for p in talk.parent.iterdir()) == [
        "talk.es.mp4",
        "talk.mp4",
        "talk.octavia",
    ]


def test_every_original_stream_is_kept(cli, talk: Path, tmp_path: Path, fake_engines) -> None:
    """A Matroska with two audio tracks and a subtitle track keeps all of them, after the
    dubbed track."""
    import subprocess

    subtitle = tmp_path / "talk.srt"
    subtitle.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    source = tmp_path / "work" / "multi.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(talk), "-i", str(subtitle),
         "-map", "0:v", "-map", "0:a", "-map", "0:a", "-map", "1:0", "-c", "copy",
         "-metadata:s:a:1", "language=fra", str(source)],
        check=True,
    )  # fmt: skip
    code, _, err = cli("dub", str(source), "--to", "es", "--from", "en")
    assert code == 0, err
    info = streams(tmp_path / "work" / "multi.es.mkv")
    audio = [s.get("tags", {}).get("language", "").lower() for s in info
             if s["codec_type"] == "audio"]  # fmt: skip
    assert audio[0] == "spa" and "fra" in audio[1:] and len(audio) == 3
    assert [s["codec_type"] for s in info].count("subtitle") == 1
    assert [s["codec_type"] for s in info].count("video") == 1

    # --replace-audio: the dub is the only audio track; everything else is still there.
    code, _, err = cli("dub", str(source), "--to", "es", "--from", "en", "--replace-audio")
    assert code == 0, err
    info = streams(tmp_path / "work" / "multi.es.mkv")
    kinds = [s["codec_type"] for s in info]
    assert kinds.count("audio") == 1 and kinds.count("video") == 1 and "subtitle" in kinds
    assert info[0]["codec_type"] == "audio" and info[0]["tags"]["language"] == "spa"


def test_loudness_target_true_peak_and_ducking(cli, media_factory, fake_engines) -> None:
    """Measured on the files the dub wrote: the output at -16 LUFS (within 1 LU) with a true
    peak at most -1 dBTP, and the background at least 10 dB lower under the dub than in
    its pauses."""
    import numpy as np

    from octavia_cli.media.audio import read_audio
    from octavia_cli.media.ffmpeg import measure_loudness, measure_true_peak

    lines = ((0.5, "Welcome to the city library."), (5.0, "Thank you for watching."))
    talk = media_factory("talk.mp4", lines=lines, duration_s=9.0)
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--loudness", "-16",
                       "--ducking", "standard")  # fmt: skip
    assert code == 0, err
    dubbed = decode(talk.with_name("talk.es.mp4"), 48_000, 2)
    assert abs(measure_loudness(dubbed, 48_000) - -16.0) <= 1.0
    assert measure_true_peak(dubbed, 48_000) <= -1.0

    folder = talk.with_name("talk.octavia")
    background, rate = read_audio(folder / "mix" / "background.es.wav")
    original, _ = read_audio(folder / "audio" / "source.wav")
    project = json.loads((folder / "project.json").read_text())
    fits = [s["fits"]["es"] for s in project["transcript"]["segments"]]

    def reduction_db(spans: list[tuple[float, float]]) -> float:
        """How much quieter the ducked background is than the original over ``spans``
        (without separation the original speech is part of the background, so the depth of
        ducking is measured against the original, not as an absolute level)."""
        mask = np.zeros(background.shape[1], bool)
        for start, end in spans:
            mask[int(start * rate) : int(end * rate)] = True
        before = (original[:, : background.shape[1]] ** 2).mean(axis=0)[mask].mean()
        return 10 * np.log10(before / (background**2).mean(axis=0)[mask].mean())

    # Under speech: the middle of each dubbed line; in gaps: well after a line's end (the
    # background comes back over the release) and before the next one starts.
    under = [(f["start_s"] + 0.2, f["end_s"] - 0.1) for f in fits]
    ends = [f["end_s"] for f in fits]
    starts = [f["start_s"] for f in fits[1:]] + [background.shape[1] / rate]
    gaps = [(end + 1.0, start - 0.05) for end, start in zip(ends, starts, strict=True)
            if start - end > 1.2]  # fmt: skip
    assert gaps, "the clip needs a pause of more than 1.2 s after a line"
    assert reduction_db(under) - reduction_db(gaps) >= 10.0, (
        reduction_db(under),
        reduction_db(gaps),
    )

    code, _, err = cli("dub", str(talk), "--to", "es", "--loudness", "loud", "--force")
    assert code == 1 and "mix.loudness" in err


@pytest.mark.slow
def test_allow_video_stretch_slows_the_picture_and_keeps_sync(cli, media_factory) -> None:
    lines = (
        (0.5, "Welcome to the city library."),
        (3.0, "The reading room on the second floor opens again next week.", "en-us", 50, 300),
        (7.5, "Thank you for watching."),
    )  # the middle line is spoken very fast: its Spanish cannot fit at 1.3x
    talk = media_factory("talk.mp4", lines=lines, duration_s=10.0)
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en")
    assert code == 0, err
    report_path = talk.parent / "talk.octavia" / "report" / "timing.es.json"
    assert json.loads(report_path.read_text())["totals"]["overflowing"] >= 1  # without it

    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--allow-video-stretch",
                       "--force")  # fmt: skip
    assert code == 0, err
    report = json.loads(report_path.read_text())
    added = report["totals"]["video_added_s"]
    assert report["totals"]["video_stretched"] >= 1 and 0 < added <= 0.25 * 10
    stretched = [line for line in report["lines"] if line["video_stretch"] > 1]
    assert all(1 < line["video_stretch"] <= 1.25 for line in stretched)
    assert all(line["speed"] <= 1.3 for line in report["lines"])  # the band still holds
    # Picture, dub and original track all last the source's length plus the time added.
    durations = [float(s["duration"]) for s in streams(talk.with_name("talk.es.mp4"))]
    assert all(abs(d - (10.0 + added)) <= 0.08 for d in durations), durations
    assert "picture slowed under" in err


@pytest.mark.slow
def test_voice_per_speaker_on_the_command_line(cli, talk: Path, fake_engines) -> None:
    # A voice for another speaker than the one speaking leaves the speaker's own voice.
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--voice", "S2=es-3")
    assert code == 0, err
    manifest = talk.parent / "talk.octavia" / "project.json"
    assert json.loads(manifest.read_text())["stages"]["synthesize:es"]["info"]["voices"] == {
        "S1": "es-1"
    }
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--voice", "S1=es-3",
                       "--force")  # fmt: skip
    assert code == 0, err
    project = json.loads(manifest.read_text())
    assert {s["clips"]["es"]["voice"] for s in project["transcript"]["segments"]} == {"es-3"}


@pytest.mark.slow
def test_surround_keeps_its_layout_with_the_dub_in_the_centre(
    cli, talk: Path, fake_engines
) -> None:
    import subprocess

    import numpy as np

    source = talk.with_name("surround.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(talk), "-f", "lavfi", "-i", "sine=f=330:d=10",
         "-filter_complex",
         "[0:a]pan=mono|c0=0.5*c0+0.5*c1[sp];[1:a]volume=0.05,asplit=5[l][r][lfe][bl][br];"
         "[l][r][sp][lfe][bl][br]join=inputs=6:channel_layout=5.1:"
         "map=0.0-FL|1.0-FR|2.0-FC|3.0-LFE|4.0-BL|5.0-BR[a]",
         "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac", "-ar", "48000",
         str(source)],
        check=True,
    )  # fmt: skip
    code, _, err = cli("dub", str(source), "--to", "es", "--from", "en")
    assert code == 0, err
    output = source.with_name("surround.es.mp4")
    dub = next(s for s in streams(output) if s["codec_type"] == "audio")
    assert (dub["channels"], dub["channel_layout"]) == (6, "5.1")
    audio = decode(output, 48_000, 6)
    rms = np.sqrt(np.mean(audio**2, axis=1))
    centre, fronts = rms[2], rms[[0, 1]]
    assert (centre > 10 * fronts).all()  # the dubbed voice is in the centre channel
