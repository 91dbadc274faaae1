"""Measurements the tests make on media with ffmpeg and the VAD."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np


def _ffmpeg(*args: str) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", *args], capture_output=True, check=True).stdout


def stream_md5(path: Path, selector: str) -> str:
    """MD5 of the packets of the streams ``selector`` (e.g. ``0:v``), copied, not decoded."""
    return _ffmpeg("-i", str(path), "-map", selector, "-c", "copy", "-f", "md5", "-").decode()


def streams(path: Path) -> list[dict]:
    command = ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format"]
    result = subprocess.run([*command, str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["streams"]


def decode(path: Path, sample_rate_hz: int, channels: int) -> np.ndarray:
    """The first audio stream as ``(channels, samples)`` float32."""
    raw = _ffmpeg("-i", str(path), "-map", "0:a:0", "-ac", str(channels),
                  "-ar", str(sample_rate_hz), "-f", "f32le", "-")  # fmt: skip
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels).T


def decode_16k(path: Path) -> np.ndarray:
    return decode(path, 16_000, 1)[0]


def speech_onsets(path: Path) -> list[float]:
    from octavia_cli.engines.vad import detect_speech

    return [start for start, _ in detect_speech(decode_16k(path))]


def frame(path: Path, at_s: float) -> np.ndarray:
    """The picture at ``at_s`` as a grey ``(height, width)`` array."""
    video = next(s for s in streams(path) if s["codec_type"] == "video")
    raw = _ffmpeg("-ss", str(at_s), "-i", str(path), "-frames:v", "1",
                  "-f", "rawvideo", "-pix_fmt", "gray", "-")  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(video["height"], video["width"])


# The console program with the cheap engines of fakes.py (see fake_octavia.py).
FAKE_OCTAVIA = [__import__("sys").executable, str(Path(__file__).with_name("fake_octavia.py"))]
