"""The picture, a frame at a time: decode a video stream to raw planes in its own pixel
format, change some pixels, encode it again.

Frames are read and written through ffmpeg pipes, one frame in memory at a time, so a
two-hour film costs what one frame costs. They stay in the stream's own planar YUV format
(8 or 10 bits, 4:2:0, 4:2:2 or 4:4:4), so a pixel nobody changes is written back with the
very value it was decoded with; only the region a caller edits goes through RGB and back
(with the stream's own matrix and range). The stream is decoded as coded (no autorotation)
and its rotation is written back as metadata, so a portrait phone video stays one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Self

import numpy as np

from octavia_cli.errors import InputError, StageError
from octavia_cli.media.ffmpeg import ff, require_program

# Planar YUV formats edited in place: name -> (chroma subsampling x, y; bits).
PLANAR_FORMATS: dict[str, tuple[int, int, int]] = {
    "yuv420p": (2, 2, 8), "yuvj420p": (2, 2, 8), "yuv422p": (2, 1, 8), "yuvj422p": (2, 1, 8),
    "yuv444p": (1, 1, 8), "yuvj444p": (1, 1, 8), "yuv420p10le": (2, 2, 10),
    "yuv422p10le": (2, 1, 10), "yuv444p10le": (1, 1, 10),
}  # fmt: skip
FALLBACK_FORMAT = "yuv420p"  # what any other pixel format is decoded to (and written as)
# Luma weights (Kr, Kb) of the YUV matrices, by ffprobe's colour space name.
MATRICES = {"bt709": (0.2126, 0.0722), "bt2020nc": (0.2627, 0.0593), "bt2020c": (0.2627, 0.0593),
            "smpte170m": (0.299, 0.114), "bt470bg": (0.299, 0.114), "fcc": (0.30, 0.11),
            "smpte240m": (0.212, 0.087)}  # fmt: skip


@dataclass(frozen=True)
class VideoInfo:
    """What the editing needs of a video stream, and what its re-encoding must keep."""

    width: int  # as coded (before rotation)
    height: int
    pix_fmt: str  # the format the frames are edited (and written) in
    source_pix_fmt: str
    frame_rate: Fraction  # frames a second (the stream's average)
    frames: int  # how many frames a decode gives
    rotation: int  # degrees counter-clockwise the picture is turned for display (0/90/180/270)
    color_range: str = "tv"  # tv (limited) or pc (full)
    color_space: str = ""  # ffprobe's names; "" when the stream does not say
    color_primaries: str = ""
    color_transfer: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.frame_rate)

    def time_s(self, index: int) -> float:
        return float(index / self.frame_rate)

    @property
    def layout(self) -> tuple[int, int, int]:
        return PLANAR_FORMATS[self.pix_fmt]

    @property
    def frame_bytes(self) -> int:
        sx, sy, bits = self.layout
        size = 2 if bits > 8 else 1
        chroma = (-(-self.width // sx)) * (-(-self.height // sy))
        return (self.width * self.height + 2 * chroma) * size


def probe_video(path: Path) -> VideoInfo:
    """The first video stream of ``path`` (counting its frames by decoding, so the count is
    what a decode gives: containers' frame counts are often missing or wrong).

    Raises:
        InputError: no video stream.
        StageError: ffprobe failed.
    """
    ffprobe = require_program("ffprobe")
    args = [ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets",
            "-show_entries", "stream=width,height,pix_fmt,avg_frame_rate,r_frame_rate,"
            "nb_read_packets,color_range,color_space,color_primaries,color_transfer:"
            "stream_side_data=rotation:stream_tags", "-of", "json", ff(path)]  # fmt: skip
    done = subprocess.run(args, capture_output=True, check=False)
    if done.returncode != 0:
        raise StageError(f"Could not read the picture of {path}.", done.stderr.decode()[-300:])
    streams = json.loads(done.stdout or b"{}").get("streams") or []
    if not streams:
        raise InputError(f"{path} has no picture.", "Lip-sync needs a video input.")
    stream = streams[0]
    rate = Fraction(stream.get("avg_frame_rate") or "0/1")
    if rate <= 0:
        rate = Fraction(stream.get("r_frame_rate") or "25/1")
    rotation = 0
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            rotation = int(side["rotation"]) % 360
    tags = stream.get("tags") or {}
    if not rotation and "rotate" in tags:
        rotation = (-int(tags["rotate"])) % 360
    source_format = stream.get("pix_fmt", "")
    full = source_format.startswith("yuvj") or stream.get("color_range") == "pc"
    return VideoInfo(
        width=int(stream["width"]),
        height=int(stream["height"]),
        pix_fmt=source_format if source_format in PLANAR_FORMATS else FALLBACK_FORMAT,
        source_pix_fmt=source_format,
        frame_rate=rate,
        frames=int(stream.get("nb_read_packets") or 0),
        rotation=rotation,
        color_range="pc" if full else "tv",
        color_space=_known(stream.get("color_space")),
        color_primaries=_known(stream.get("color_primaries")),
        color_transfer=_known(stream.get("color_transfer")),
    )


def _known(value: object) -> str:
    return "" if value in (None, "", "unknown", "reserved") else str(value)


@dataclass
class Frame:
    """One decoded frame: its index, and its planes (Y, then the two chroma planes)."""

    index: int
    planes: list[np.ndarray]


class _Decoder:
    """An ffmpeg process that decodes the first video stream of ``path`` to raw frames of
    one size on its standard output; use as a context manager and iterate."""

    frame_bytes = 0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._process: subprocess.Popen[bytes] | None = None

    def _output_args(self) -> list[str]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        args = [require_program("ffmpeg"), "-nostdin", "-v", "error", *self._input_args(),
                "-i", ff(self.path), "-map", "0:v:0", *self._output_args(),
                "-f", "rawvideo", "-fps_mode", "passthrough", "-"]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self

    def _input_args(self) -> list[str]:
        return []

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()

    def _chunks(self) -> Iterator[tuple[int, bytes]]:
        assert self._process is not None and self._process.stdout is not None
        index = 0
        while (data := _read_exactly(self._process.stdout, self.frame_bytes)) is not None:
            yield index, data
            index += 1


class FrameReader(_Decoder):
    """The frames of ``path``'s first video stream, in order, as coded (not turned), in
    ``info``'s pixel format: :class:`Frame` objects."""

    def __init__(self, path: Path, info: VideoInfo) -> None:
        super().__init__(path)
        self.info = info
        self.frame_bytes = info.frame_bytes

    def _input_args(self) -> list[str]:
        return ["-noautorotate"]

    def _output_args(self) -> list[str]:
        return ["-pix_fmt", self.info.pix_fmt]

    def __iter__(self) -> Iterator[Frame]:
        for index, data in self._chunks():
            yield Frame(index, split_planes(data, self.info))


class GrayReader(_Decoder):
    """The frames of ``path``'s first video stream as they are shown (rotated upright),
    grey and scaled to ``height`` pixels at most (ffmpeg's area scaler): for looking at the
    picture, not for editing it. ``scale`` is how much larger the upright picture is."""

    def __init__(self, path: Path, info: VideoInfo, height: int) -> None:
        super().__init__(path)
        upright_w, upright_h = (
            (info.height, info.width) if info.rotation in (90, 270) else (info.width, info.height)
        )
        self.height = min(height, upright_h)
        self.width = max(2, round(upright_w * self.height / upright_h / 2) * 2)
        self.scale = upright_h / self.height
        self.frame_bytes = self.width * self.height

    def _output_args(self) -> list[str]:
        return ["-vf", f"scale={self.width}:{self.height}:flags=area,format=gray"]

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for index, data in self._chunks():
            yield index, np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width)


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def split_planes(data: bytes, info: VideoInfo) -> list[np.ndarray]:
    sx, sy, bits = info.layout
    dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
    flat = np.frombuffer(data, dtype=dtype)
    w, h = info.width, info.height
    cw, ch = -(-w // sx), -(-h // sy)
    y = flat[: w * h].reshape(h, w)
    u = flat[w * h : w * h + cw * ch].reshape(ch, cw)
    v = flat[w * h + cw * ch : w * h + 2 * cw * ch].reshape(ch, cw)
    return [y.copy(), u.copy(), v.copy()]


@functools.cache
def marks_rotation() -> bool:
    """Whether this ffmpeg can mark a stream's rotation (``-display_rotation``, 6.1 and
    later). An older one cannot, and a turned picture is then written upright instead: it
    shows the same, though its frames are coded turned."""
    done = subprocess.run([require_program("ffmpeg"), "-hide_banner", "-h", "full"],
                          capture_output=True, check=False)  # fmt: skip
    return b"display_rotation" in done.stdout


# ffmpeg's transpose filter that turns a picture upright, by its rotation (counter-clockwise):
# for 4:2:2, whose chroma cannot be turned in place (the others are turned here, exactly).
UPRIGHT = {90: "transpose=cclock", 180: "hflip,vflip", 270: "transpose=clock"}


class FrameWriter:
    """Encodes frames (their planes, in ``info``'s format) with x264 at ``crf`` into
    ``path`` (a Matroska file holding the video stream alone), with the stream's colour
    tags. A rotation is marked when the picture is muxed (``mux_video``'s ``picture``);
    with ``upright``, the frames are turned upright instead (an ffmpeg that cannot mark
    one: :func:`marks_rotation`)."""

    def __init__(
        self, path: Path, info: VideoInfo, crf: int, preset: str = "medium", *,
        upright: bool = False,
    ) -> None:  # fmt: skip
        self.path, self.info, self.crf, self.preset = path, info, crf, preset
        sx, sy, _ = info.layout
        turn = (info.rotation // 90) % 4 if upright else 0
        self._turns = turn if sx == sy else 0  # planes turned here, exactly
        self._filter = UPRIGHT[info.rotation] if turn and sx != sy else ""
        self._process: subprocess.Popen[bytes] | None = None
        self.frames = 0

    def __enter__(self) -> FrameWriter:
        ffmpeg = require_program("ffmpeg")
        info = self.info
        rate = f"{info.frame_rate.numerator}/{info.frame_rate.denominator}"
        width, height = (info.height, info.width) if self._turns % 2 else (info.width, info.height)
        args = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "rawvideo",
                "-pix_fmt", info.pix_fmt, "-s", f"{width}x{height}", "-r", rate,
                # The frames' range said on the way in too, so that a filter (the upright
                # turn) does not convert them from the range a raw input is assumed to have.
                "-color_range", info.color_range,
                "-i", "-", "-c:v", "libx264", "-preset", self.preset,
                "-pix_fmt", info.pix_fmt, "-color_range", info.color_range]  # fmt: skip
        # 0 is lossless: x264's -qp 0 (its CRF 0 is not lossless at 10 bits, where the
        # scale starts below 0).
        args += ["-qp", "0"] if self.crf == 0 else ["-crf", str(self.crf)]
        if self._filter:
            args += ["-vf", self._filter]
        for option, value in (("-colorspace", info.color_space),
                              ("-color_primaries", info.color_primaries),
                              ("-color_trc", info.color_transfer)):  # fmt: skip
            if value:
                args += [option, value]
        args += ["-f", "matroska", ff(self.path)]
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        return self

    def write(self, frame: Frame) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            for plane in frame.planes:
                turned = np.rot90(plane, k=self._turns) if self._turns else plane
                self._process.stdin.write(np.ascontiguousarray(turned).tobytes())
        except BrokenPipeError:
            self._fail()
        self.frames += 1

    def __exit__(self, exc_type: object, *exc: object) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        if exc_type is not None:
            process.kill()
            process.wait()
            return
        process.wait()
        if process.returncode != 0:
            self._fail()

    def _fail(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        self._process.wait()
        error = self._process.stderr.read().decode(errors="replace").strip()
        raise StageError("Could not encode the lip-synced picture.", error[-400:] or None)


def concat_videos(parts: list[Path], destination: Path) -> None:
    """Join video files of one encoding, in order, without re-encoding (ffmpeg's concat
    demuxer)."""
    ffmpeg = require_program("ffmpeg")
    listing = destination.with_name(destination.name + ".txt")
    listing.write_text(
        "".join(f"file '{p.resolve().as_posix()}'\n" for p in parts), encoding="utf-8"
    )
    try:
        args = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0",
                "-i", ff(listing), "-map", "0:v:0", "-c", "copy", "-f", "matroska",
                ff(destination)]  # fmt: skip
        done = subprocess.run(args, capture_output=True, check=False)
        if done.returncode != 0:
            raise StageError("Could not join the lip-synced shots.", done.stderr.decode()[-300:])
    finally:
        listing.unlink(missing_ok=True)


# -- the edited region, in RGB ---------------------------------------------------------------


def _matrix(info: VideoInfo) -> tuple[float, float]:
    if info.color_space in MATRICES:
        return MATRICES[info.color_space]
    return MATRICES["bt709"] if info.height >= 720 else MATRICES["smpte170m"]


def _ranges(info: VideoInfo) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma centre, chroma scale) in the stream's code values."""
    bits = info.layout[2]
    unit = 1 << (bits - 8)
    if info.color_range == "pc":
        top = (1 << bits) - 1
        return 0.0, float(top), 128.0 * unit, float(top)
    return 16.0 * unit, 219.0 * unit, 128.0 * unit, 224.0 * unit


def region_to_rgb(frame: Frame, info: VideoInfo, box: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of ``box`` (x0, y0, x1, y1; chroma-aligned) as RGB floats in [0, 1]."""
    x0, y0, x1, y1 = box
    sx, sy, _ = info.layout
    luma = frame.planes[0][y0:y1, x0:x1].astype(np.float32)
    chroma = [
        np.repeat(np.repeat(p[y0 // sy : -(-y1 // sy), x0 // sx : -(-x1 // sx)], sy, 0), sx, 1)[
            : y1 - y0, : x1 - x0
        ].astype(np.float32)
        for p in frame.planes[1:]
    ]
    offset, scale, centre, cscale = _ranges(info)
    kr, kb = _matrix(info)
    kg = 1.0 - kr - kb
    y = (luma - offset) / scale
    u = (chroma[0] - centre) / cscale
    v = (chroma[1] - centre) / cscale
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = (y - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0)


def blend_rgb(
    frame: Frame, info: VideoInfo, box: tuple[int, int, int, int], rgb: np.ndarray,
    alpha: np.ndarray,
) -> None:  # fmt: skip
    """Blend ``rgb`` (floats in [0, 1], the size of ``box``) into ``frame`` with ``alpha``
    (0-1, the size of ``box``). Pixels where ``alpha`` is 0 keep their exact values."""
    x0, y0, x1, y1 = box
    sx, sy, _ = info.layout
    offset, scale, centre, cscale = _ranges(info)
    kr, kb = _matrix(info)
    kg = 1.0 - kr - kb
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + kg * g + kb * b
    u = (b - y) / (2 * (1 - kb))
    v = (r - y) / (2 * (1 - kr))
    top = (1 << info.layout[2]) - 1
    _blend_plane(frame.planes[0], (x0, y0, x1, y1), y * scale + offset, alpha, top)
    # Chroma: the box's chroma samples, each the mean of the pixels it covers.
    cx0, cy0, cx1, cy1 = x0 // sx, y0 // sy, -(-x1 // sx), -(-y1 // sy)
    h, w = (cy1 - cy0) * sy, (cx1 - cx0) * sx

    def pooled(values: np.ndarray) -> np.ndarray:
        padded = np.zeros((h, w), dtype=np.float32)
        padded[: y1 - y0, : x1 - x0] = values
        return padded.reshape(cy1 - cy0, sy, cx1 - cx0, sx).mean(axis=(1, 3))

    chroma_alpha = pooled(alpha)
    for plane, values in ((frame.planes[1], u), (frame.planes[2], v)):
        _blend_plane(
            plane, (cx0, cy0, cx1, cy1), pooled(values * cscale + centre), chroma_alpha, top
        )


def _blend_plane(
    plane: np.ndarray, box: tuple[int, int, int, int], values: np.ndarray, alpha: np.ndarray,
    top: int,
) -> None:  # fmt: skip
    x0, y0, x1, y1 = box
    region = plane[y0:y1, x0:x1]
    changed = alpha > 0
    mixed = region.astype(np.float32) * (1 - alpha) + values[: y1 - y0, : x1 - x0] * alpha
    region[changed] = np.clip(np.rint(mixed[changed]), 0, top).astype(plane.dtype)
