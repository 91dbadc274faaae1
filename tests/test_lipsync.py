"""Lip-sync (``--lip-sync``): MuseTalk 1.5's networks, tiny and randomly initialised (the same
diffusers and transformers classes, from each hub repository's own file layout at the
catalog's pinned commits, downloads off), on a real face that speaks real speech
(``lipsync_media.py``): the face is found and tracked through the camera's pan and zoom,
only its mouth changes, only while it speaks, the test pattern's shot is left exactly as it
was, the audio is the same as without lip-sync, and the output is as long as the input at
its own frame rate (30 fps, not MuseTalk's 25)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="lip-sync needs octavia-cli[quality]")
pytest.importorskip("cv2", reason="lip-sync needs octavia-cli[quality]")
torch = pytest.importorskip("torch")

from helpers import stream_md5, streams  # noqa: E402
from hub_layout import no_network, write_hub_repo  # noqa: E402, F401 (a fixture)
from lipsync_media import SIZE, TalkingFace, build_musetalk_folders, make_talking_face  # noqa: E402
from octavia_cli.models.bundled import hub_cache_dir  # noqa: E402
from octavia_cli.models.catalog import LIPSYNC_MODELS  # noqa: E402

pytestmark = pytest.mark.skipif(
    not Path(__file__).resolve().parents[2].joinpath("shared/data/librispeech").is_dir(),
    reason="needs ../shared/data",
)
DUB = ["dub", "--to", "es", "--from", "en", "--lip-sync", "--lip-sync-crf", "0"]


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_musetalk_folders(tmp_path_factory.mktemp("musetalk"))


def install_models(folders: dict[str, Path]) -> None:
    """The three repositories in the hub cache, each at its pinned commit, holding only the
    files the catalog fetches (as ``octavia models pull musetalk`` leaves them)."""
    for name, model in LIPSYNC_MODELS.items():
        files = {path: folders[name] / path for path in model.files}
        write_hub_repo(hub_cache_dir(), model.repo, files, commit=model.revision)


def decode_frames(path: Path) -> np.ndarray:
    """Every frame's luma plane and chroma planes, as coded (frames x bytes)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
         "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], capture_output=True, check=True,
    ).stdout  # fmt: skip
    size = SIZE[0] * SIZE[1] * 3 // 2
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size)


def luma(frames: np.ndarray) -> np.ndarray:
    return frames[:, : SIZE[0] * SIZE[1]].reshape(-1, SIZE[1], SIZE[0])


@pytest.fixture(scope="module")
def dubbed(
    tmp_path_factory: pytest.TempPathFactory, isolated_module: None, model_folders: dict
) -> dict:
    """The speaking face dubbed with lip-sync, and again without (into another file). The
    audio is heard 2 s at a time (not 25), so a shot is drawn in several pieces."""
    from octavia_cli.cli import run
    from octavia_cli.stages import lipsync

    install_models(model_folders)
    face = make_talking_face(tmp_path_factory.mktemp("face"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lipsync, "CHUNK_S", 2.0)
        assert run(["--quiet", *DUB[:1], str(face.path), *DUB[1:]]) == 0
    lipsynced = face.path.with_name("talk.es.mkv")
    plain = face.path.with_name("plain.mkv")
    assert run(["--quiet", "dub", str(face.path), "--to", "es", "--from", "en",
                "--no-lip-sync", "-o", str(plain)]) == 0  # fmt: skip
    project = json.loads((face.path.with_name("talk.octavia") / "project.json").read_text())
    return {"face": face, "output": lipsynced, "plain": plain, "project": project,
            "folder": face.path.with_name("talk.octavia")}  # fmt: skip


def test_the_speaking_face_is_found_and_its_shot_lip_synced(dubbed: dict) -> None:
    info = dubbed["project"]["stages"]["lipsync:es"]["info"]
    face: TalkingFace = dubbed["face"]
    assert [s["frames"] for s in info["shots"]] == [face.face_frames, face.pattern_frames]
    first, pattern = info["shots"]
    assert first["status"] == "lip-synced" and first["speaker"] == "S1"
    # About the utterance's 4.3 s, at 30 fps, were re-drawn (not the shot's silent start).
    assert 90 <= first["frames_synced"] <= 140
    assert pattern["status"] == "no face"


def test_the_face_is_tracked_through_the_pan_and_zoom(dubbed: dict) -> None:
    face: TalkingFace = dubbed["face"]
    with np.load(dubbed["folder"] / "lipsync/faces.npz") as data:
        boxes = data["box_0_0"]
        assert "box_1_0" not in data  # no face in the test pattern
    seen = ~np.isnan(boxes[:, 0])
    assert seen.mean() >= 0.95
    for index in np.flatnonzero(seen):
        x, y, height = face.mouth_at(index)
        bx, by, bw, bh = boxes[index]
        # The mouth lies under the middle of the box, in its lower part, and the box
        # grows with the zoom (the face's height, as the photograph's box is).
        assert abs(bx + bw / 2 - x) < 0.15 * height, index
        assert by + 0.55 * bh < y < by + 1.1 * bh, index
        assert 0.8 * height < bh < 1.25 * height, index
    centres = boxes[seen][:, :2] + boxes[seen][:, 2:] / 2
    steps = np.abs(np.diff(centres, axis=0)).max()
    assert steps < 0.05 * np.nanmedian(boxes[:, 3])  # smoothed: no jitter


def test_only_the_mouth_changes_and_only_while_it_speaks(dubbed: dict) -> None:
    face: TalkingFace = dubbed["face"]
    before, after = decode_frames(face.path), decode_frames(dubbed["output"])
    assert before.shape == after.shape  # as many frames
    # The test pattern's shot: every byte of every plane as it was.
    assert np.array_equal(before[face.face_frames :], after[face.face_frames :])
    changed = luma(before[: face.face_frames]).astype(int) != luma(after[: face.face_frames])
    rows, columns = np.mgrid[0 : SIZE[1], 0 : SIZE[0]]
    redrawn = 0
    for index in range(face.face_frames):
        if not changed[index].any():
            continue
        redrawn += 1
        x, y, height = face.mouth_at(index)
        near_mouth = (
            (np.abs(columns - x) < 0.6 * height)
            & (rows > y - 0.35 * height)
            & (rows < y + 0.5 * height)
        )
        outside = changed[index] & ~near_mouth
        assert not outside.any(), f"frame {index}: {outside.sum()} pixels changed off the mouth"
    info = dubbed["project"]["stages"]["lipsync:es"]["info"]["shots"][0]
    assert redrawn == info["frames_synced"]
    # Nothing before the speech (less the 0.1 s lead and the fade in).
    first = int(np.flatnonzero(changed.any(axis=(1, 2)))[0])
    assert first / face.fps > 0.4


def test_the_audio_and_the_length_are_those_of_the_dub_without_lip_sync(dubbed: dict) -> None:
    output, plain, face = dubbed["output"], dubbed["plain"], dubbed["face"]
    assert stream_md5(output, "0:a") == stream_md5(plain, "0:a")
    picture = next(s for s in streams(output) if s["codec_type"] == "video")
    source = next(s for s in streams(face.path) if s["codec_type"] == "video")
    assert picture["r_frame_rate"] == source["r_frame_rate"] == "30/1"
    assert picture["pix_fmt"] == source["pix_fmt"] == "yuv420p"
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "csv=p=0", str(output)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert int(frames) == face.face_frames + face.pattern_frames

    def duration(path: Path) -> float:
        shown = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                               check=True).stdout  # fmt: skip
        return float(shown)

    assert duration(output) == pytest.approx(duration(plain), abs=0.002)


def test_a_finished_shot_is_not_rendered_again(
    dubbed: dict, model_folders: dict, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """The stage resumes per shot: with the joined picture gone (a run killed before the
    join), the shots already encoded are joined again and nothing is re-drawn."""
    from octavia_cli.engines.lipsync.musetalk import MuseTalk

    install_models(model_folders)
    folder, face = dubbed["folder"], dubbed["face"]
    assert json.loads((folder / "lipsync/es/shots/done.json").read_text())["shots"] == [0, 1]

    def refuse(*args: object) -> None:
        raise AssertionError("a finished shot was drawn again")

    monkeypatch.setattr(MuseTalk, "render", refuse)
    (folder / "lipsync/es/picture.mkv").unlink()
    code, _, err = cli(*DUB[:1], str(face.path), *DUB[1:], "-o", str(folder.parent / "again.mkv"))
    assert code == 0, err
    assert "lip-sync on the CPU is slow: up to" in err  # allowed, with the estimate
    assert (folder / "lipsync/es/picture.mkv").exists()
    assert stream_md5(folder.parent / "again.mkv", "0:v") == stream_md5(dubbed["output"], "0:v")


def test_lip_sync_and_a_slowed_picture_are_refused_together(
    dubbed: dict, model_folders: dict, cli
) -> None:
    install_models(model_folders)
    code, _, err = cli(*DUB[:1], str(dubbed["face"].path), *DUB[1:], "--allow-video-stretch",
                       "-o", str(dubbed["folder"].parent / "x.mkv"))  # fmt: skip
    assert code == 1
    assert "Lip-sync cannot be combined with --allow-video-stretch" in err
    assert "Traceback" not in err


def test_missing_lip_sync_models_are_named_with_the_command_that_fetches_them(
    dubbed: dict,
    cli,
    no_network: list,  # noqa: F811 (the fixture)
) -> None:
    code, _, err = cli(*DUB[:1], str(dubbed["face"].path), *DUB[1:],
                       "-o", str(dubbed["folder"].parent / "y.mkv"))  # fmt: skip
    assert code == 3
    assert "musetalk" in err and "octavia models pull" in err
    assert "Traceback" not in err


def test_the_plan_lists_the_stage_and_its_models(dubbed: dict, cli) -> None:
    code, out, _ = cli(*DUB[:1], str(dubbed["face"].path), *DUB[1:], "--dry-run",
                       "-o", str(dubbed["folder"].parent / "z.mkv"))  # fmt: skip
    assert code == 0
    plan = json.loads(out)[0]
    assert plan["stages"][-2:] == ["lipsync:es", "mux:es"]
    assert {m["name"] for m in plan["models"]} >= {"musetalk", "musetalk-vae",
                                                   "musetalk-whisper"}  # fmt: skip
    assert plan["engines"]["lipsync"].startswith("musetalk")


def test_a_face_that_does_not_speak_is_left_alone(
    dubbed: dict, model_folders: dict, tmp_path: Path, cli
) -> None:
    """The same face, its mouth still, while the speech is heard: the speaker is off
    screen, so the picture is the source's, copied bit for bit (not re-encoded)."""
    install_models(model_folders)
    face = make_talking_face(tmp_path, speaking=False)
    code, _, err = cli(*DUB[:1], str(face.path), *DUB[1:])
    assert code == 0, err
    assert "lip-sync (es): 2 shot(s): 1 off-screen speaker, 1 no face" in err
    project = json.loads((tmp_path / "talk.octavia/project.json").read_text())
    info = project["stages"]["lipsync:es"]["info"]
    assert info["picture"] == "" and info["shots"][0]["speaker"] == "S1"
    moving = dubbed["project"]["stages"]["lipsync:es"]["info"]["shots"][0]["score"]
    assert info["shots"][0]["score"] < 0.25 * moving
    assert stream_md5(tmp_path / "talk.es.mkv", "0:v") == stream_md5(face.path, "0:v")


def test_the_windows_of_audio_are_musetalks(model_folders: dict) -> None:
    """Each frame's audio: MuseTalk's ``get_whisper_chunk`` at 25 fps takes, after padding
    the features with 4 zero frames in front, frames ``2f`` to ``2f + 10``; at another
    frame rate the 25 fps frame nearest the time is taken."""
    from octavia_cli.engines.lipsync.musetalk import MuseTalk

    features = np.arange(40 * 5 * 3, dtype=np.float32).reshape(40, 5, 3) + 1
    padded = np.concatenate([np.zeros((4, 5, 3)), features, np.zeros((12, 5, 3))])
    windows = MuseTalk.windows(features, np.arange(18) / 25)
    for frame in range(18):
        assert np.array_equal(windows[frame], padded[2 * frame : 2 * frame + 10].reshape(50, 3))
    at_30 = MuseTalk.windows(features, np.array([7 / 30]))  # 0.233 s: 25 fps frame 6
    assert np.array_equal(at_30[0], windows[6])


def test_the_engine_draws_the_same_mouth_twice(model_folders: dict) -> None:
    from octavia_cli.engines.lipsync.musetalk import MuseTalk

    engine = MuseTalk(
        unet=str(model_folders["musetalk"]), vae=str(model_folders["sd-vae-ft-mse"]),
        whisper=str(model_folders["whisper-tiny"]), device="cpu", batch_size=2,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 256, 256, 3), dtype=np.uint8)
    audio = rng.standard_normal(16_000 * 2).astype(np.float32) * 0.1
    features = engine.audio_features(audio)
    assert features.shape == (100, 5, 64)  # 50 a second, the embedding and 4 layers
    first = engine.render(crops, features, np.array([0.2, 0.6, 1.0]))
    second = engine.render(crops, features, np.array([0.2, 0.6, 1.0]))
    assert first.shape == crops.shape and first.dtype == np.uint8
    assert np.array_equal(first, second)
    engine.close()


def test_a_shot_whose_rendering_fails_keeps_its_frames(
    dubbed: dict, model_folders: dict, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """(Last: it re-runs the module's lip-sync stage, with another quality.)"""
    from octavia_cli.engines.lipsync.musetalk import MuseTalk

    install_models(model_folders)

    def fail(*args: object) -> None:
        raise RuntimeError("CUDA out of memory (a test's)")

    monkeypatch.setattr(MuseTalk, "render", fail)
    face = dubbed["face"]
    output = dubbed["folder"].parent / "failed.mkv"
    code, _, err = cli(*DUB[:1], str(face.path), "--to", "es", "--from", "en", "--lip-sync",
                       "--lip-sync-crf", "1", "-o", str(output))  # fmt: skip
    assert code == 0, err
    assert "lip-sync failed on the shot at 0.0-5.0 s" in err
    project = json.loads((dubbed["folder"] / "project.json").read_text())
    shots = project["stages"]["lipsync:es"]["info"]["shots"]
    assert [s["status"] for s in shots] == ["failed", "no face"]
    # crf 1 is not lossless: the frames are the source's, re-encoded, not re-drawn.
    before, after = luma(decode_frames(face.path)), luma(decode_frames(output))
    assert np.abs(before.astype(int) - after).mean() < 1.0


def test_a_server_job_takes_lip_sync_as_an_option() -> None:
    pytest.importorskip("fastapi")
    from pydantic import ValidationError

    from octavia_cli.server.jobs import DubOptions, setting_flags

    options = DubOptions(to=["es"], lip_sync=True, lip_sync_crf=20)
    assert setting_flags(options) == {"lipsync.enabled": True, "lipsync.crf": 20}
    with pytest.raises(ValidationError, match="lip_sync_crf"):
        DubOptions(to=["es"], lip_sync_crf=99)


def test_the_report_and_doctor_tell_of_lip_sync(dubbed: dict, cli) -> None:
    report = (dubbed["folder"] / "report.html").read_text()
    assert "<h3>Lip-sync</h3>" in report and "re-drawn by musetalk-1.5" in report
    assert "<td>no face</td>" in report  # (the last run's: its first shot failed, on purpose)
    _, out, _ = cli("doctor", "--json", "--preset", "ultra")  # (ultra lip-syncs)
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["lip-sync"]["status"] == "ok" and checks["lip-sync"]["detail"].endswith(", on")
    assert {"model musetalk", "model musetalk-vae", "model musetalk-whisper"} <= set(checks)


@pytest.mark.gpu
def test_the_engine_draws_in_half_precision_on_a_gpu(model_folders: dict) -> None:
    from octavia_cli.engines.lipsync.musetalk import MuseTalk

    engine = MuseTalk(
        unet=str(model_folders["musetalk"]), vae=str(model_folders["sd-vae-ft-mse"]),
        whisper=str(model_folders["whisper-tiny"]), device="cuda", batch_size=4,
    )  # fmt: skip
    assert engine.half and engine.describe().endswith(":fp16")
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (6, 256, 256, 3), dtype=np.uint8)
    features = engine.audio_features(rng.standard_normal(16_000).astype(np.float32) * 0.1)
    drawn = engine.render(crops, features, np.linspace(0.1, 0.9, 6))
    assert drawn.shape == crops.shape and drawn.dtype == np.uint8
    assert engine._load()["unet"].dtype == torch.float16
    engine.close()


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_turned_picture_is_cropped_and_re_drawn_upright(rotation: int) -> None:
    """A phone's portrait video is coded turned: the face is cropped as it is shown, at
    the place it is shown, and drawn back into the lower half of its box as shown."""
    from fractions import Fraction

    from octavia_cli.media.video import Frame, VideoInfo, blend_rgb, region_to_rgb
    from octavia_cli.stages.lipsync import crop_face, crop_region, paste_face

    height, width = 96, 160  # as shown
    rows, columns = np.mgrid[0:height, 0:width]
    shown = np.stack([columns / width, rows / height, np.full((height, width), 0.5)], axis=-1)
    coded = np.ascontiguousarray(np.rot90(shown, k=-(rotation // 90))).astype(np.float32)
    info = VideoInfo(width=coded.shape[1], height=coded.shape[0], pix_fmt="yuv444p",
                     source_pix_fmt="yuv444p", frame_rate=Fraction(25), frames=1,
                     rotation=rotation, color_range="pc")  # fmt: skip
    frame = Frame(0, [np.zeros(coded.shape[:2], dtype=np.uint8) for _ in range(3)])
    whole = (0, 0, info.width, info.height)
    blend_rgb(frame, info, whole, coded, np.ones(coded.shape[:2], dtype=np.float32))
    box = np.array([40.0, 20.0, 50.0, 50.0])  # x, y, w, h as shown
    region = crop_region(box, info)
    crop = crop_face(frame, info, region, 64)
    # The crop's centre is the box's centre, 0.625 of its height down (chin included).
    centre = crop[32, 32] / 255
    assert centre[0] == pytest.approx(65 / width, abs=0.03)
    assert centre[1] == pytest.approx((20 + 0.625 * 50) / height, abs=0.03)
    paste_face(frame, info, region, np.zeros_like(crop), 1.0)  # a black mouth
    now = np.rot90(region_to_rgb(frame, info, whole), k=rotation // 90)
    changed = np.abs(now - shown).max(axis=-1) > 0.05
    assert changed.any()
    ys, xs = np.nonzero(changed)
    assert ys.min() >= 20 + 0.625 * 50 - 2  # below the crop's middle, as shown
    assert xs.min() >= 65 - 0.4 * 57.5 and xs.max() <= 65 + 0.4 * 57.5


def test_lip_sync_without_its_packages_names_them(
    dubbed: dict, model_folders: dict, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    import importlib.util

    install_models(model_folders)
    real = importlib.util.find_spec

    def without_diffusers(name: str, *args: object) -> object:
        return None if name == "diffusers" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_diffusers)
    code, _, err = cli(*DUB[:1], str(dubbed["face"].path), *DUB[1:],
                       "-o", str(dubbed["folder"].parent / "w.mkv"))  # fmt: skip
    assert code == 3
    assert "Lip-sync needs diffusers, not installed here." in err
    assert "pip install 'octavia-cli[quality]'" in err and "Traceback" not in err
