"""The picture a frame at a time (``media/video.py``), as lip-sync edits it: what is not
edited comes back with the very values it was decoded with, in the stream's own pixel
format, colour range and rotation; what is edited goes through RGB with the stream's matrix
and range and back within a code value."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from octavia_cli.media.ffmpeg import mux_video
from octavia_cli.media.video import (
    Frame,
    FrameReader,
    FrameWriter,
    VideoInfo,
    blend_rgb,
    marks_rotation,
    probe_video,
    region_to_rgb,
    split_planes,
)

# The track header's display matrix (ISO 14496-12 tkhd: a, b, u, c, d, v, x, y, w in 16.16
# and 2.30 fixed point) that shows a picture turned by each rotation, counter-clockwise.
MATRICES = {90: (0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30),
            270: (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)}  # fmt: skip


def make_video(path: Path, pix_fmt: str, color_range: str, rotation: int, fps: str) -> Path:
    """Two seconds of ffmpeg's test pattern with a tone, in ``pix_fmt`` and ``color_range``,
    shown turned ``rotation`` degrees counter-clockwise, as a phone marks a portrait video
    (written into the MP4's track header: the ffmpeg here cannot mark a rotation)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=192x108:rate={fps}",
         "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "2",
         "-c:v", "libx264", "-qp", "0", "-pix_fmt", pix_fmt, "-color_range", color_range,
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    if rotation:
        import struct

        data = bytearray(path.read_bytes())
        at = data.find(b"tkhd")  # the first track: the video's
        assert data[at + 4] == 0  # version 0: 32-bit times
        matrix = at + 4 + 4 + 4 * 5 + 8 + 8
        data[matrix : matrix + 36] = struct.pack(">9i", *MATRICES[rotation])
        path.write_bytes(bytes(data))
    return path


def frames_of(path: Path, *options: str) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", *options, "-i", str(path), "-map", "0:v:0",
                           "-fps_mode", "passthrough", "-f", "rawvideo", "-"],
                          capture_output=True, check=True).stdout  # fmt: skip


def video_stream(path: Path) -> dict:
    shown = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=pix_fmt,color_range,r_frame_rate:stream_side_data=rotation", "-of", "json",
         str(path)], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(shown)["streams"][0]


@pytest.mark.parametrize(
    ("pix_fmt", "color_range", "rotation", "fps"),
    [("yuv420p", "tv", 0, "30000/1001"), ("yuv420p10le", "pc", 90, "24"),
     ("yuv422p", "tv", 0, "25"), ("yuv444p", "tv", 270, "50"), ("yuv420p10le", "pc", 0, "24"),
     ("yuv420p10le", "tv", 90, "24"), ("yuv420p", "pc", 90, "24")],
)  # fmt: skip
def test_a_picture_written_again_keeps_its_frames_format_range_and_rotation(
    tmp_path: Path, pix_fmt: str, color_range: str, rotation: int, fps: str
) -> None:
    source = make_video(tmp_path / "in.mp4", pix_fmt, color_range, rotation, fps)
    info = probe_video(source)
    assert (info.pix_fmt.replace("yuvj", "yuv"), info.color_range, info.rotation) == (
        pix_fmt, color_range, rotation)  # fmt: skip
    picture = tmp_path / "picture.mkv"
    marked = marks_rotation()
    with (
        FrameReader(source, info) as reader,
        FrameWriter(picture, info, crf=0, upright=not marked) as writer,
    ):
        for frame in reader:
            writer.write(frame)
    assert writer.frames == info.frames == 2 * round(Fraction(fps))
    output = tmp_path / "out.mp4"
    mux_video(source, source, output, language_iso639_2="spa", title="t",
              picture=(picture, info.rotation if marked else 0))  # fmt: skip
    before, after = video_stream(source), video_stream(output)
    # (x264 calls full-range 8-bit yuvj: the same layout)
    assert after["pix_fmt"].replace("yuvj", "yuv") == pix_fmt
    assert after.get("color_range") == before.get("color_range")
    assert after["r_frame_rate"] == before["r_frame_rate"]
    if marked or not rotation:  # as coded and as shown, the rotation marked as it was
        assert after.get("side_data_list") == before.get("side_data_list")
        assert frames_of(output, "-noautorotate") == frames_of(source, "-noautorotate")
        assert frames_of(output) == frames_of(source)
    else:  # an ffmpeg before 6.1: written upright, with no rotation to apply; it shows the
        # source's coded frames, each plane turned as the source's rotation says
        assert "side_data_list" not in after
        coded = frames_of(source, "-noautorotate")
        info_out = probe_video(output)
        assert (info_out.width, info_out.height) == (info.height, info.width)
        size = info.frame_bytes
        for index in range(info.frames):
            planes = split_planes(coded[index * size : (index + 1) * size], info)
            turned = b"".join(np.ascontiguousarray(np.rot90(p, k=rotation // 90)).tobytes()
                              for p in planes)  # fmt: skip
            assert frames_of(output)[index * size : (index + 1) * size] == turned, index


@pytest.mark.parametrize(
    ("color_range", "space", "height"),
    [("tv", "", 480), ("pc", "bt709", 1080), ("tv", "bt2020nc", 720)],
)
def test_the_edited_region_goes_through_rgb_and_back_exactly_enough(
    color_range: str, space: str, height: int
) -> None:
    info = VideoInfo(width=64, height=height, pix_fmt="yuv420p", source_pix_fmt="yuv420p",
                     frame_rate=Fraction(25), frames=1, rotation=0,
                     color_range=color_range, color_space=space)  # fmt: skip
    rng = np.random.default_rng(1)
    low, high = (16, 235) if color_range == "tv" else (0, 255)
    planes = [rng.integers(low, high, (height, 64), dtype=np.uint8),
              rng.integers(low + 40, high - 40, (height // 2, 32), dtype=np.uint8),
              rng.integers(low + 40, high - 40, (height // 2, 32), dtype=np.uint8)]  # fmt: skip
    frame = Frame(0, [p.copy() for p in planes])
    box = (8, 10, 40, 42)
    rgb = region_to_rgb(frame, info, box)
    # Nothing blended in (alpha 0): not one value moves.
    blend_rgb(frame, info, box, rgb, np.zeros((32, 32), dtype=np.float32))
    assert all(np.array_equal(a, b) for a, b in zip(frame.planes, planes, strict=True))
    # A flat colour blended in fully reads back as that colour; outside the box, nothing moved.
    colour = np.array([0.8, 0.3, 0.1], dtype=np.float32)
    blend_rgb(frame, info, box, np.broadcast_to(colour, (32, 32, 3)).copy(),
              np.ones((32, 32), dtype=np.float32))  # fmt: skip
    assert np.abs(region_to_rgb(frame, info, box) - colour).max() < 2.5 / 219
    outside = np.ones((height, 64), dtype=bool)
    outside[10:42, 8:40] = False
    assert np.array_equal(frame.planes[0][outside], planes[0][outside])
