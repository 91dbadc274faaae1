"""Measurements the tests make on media with ffmpeg and the VAD."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np


def stream_md5(path: Path, selector: str) -> str:
    """MD5 of the packets of the streams ``selector`` (e.g. ``0:v``), copied, not decoded."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            selector,
            "-c",
            "copy",
            "-f",
            "md5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def streams(path: Path) -> list[dict]:
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["streams"]


def decode_16k(path: Path) -> np.ndarray:
    result = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-ar",
            "16000",
            "-f",
            "f32le",
            "-",
        ],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(result.stdout, dtype="<f4")


def speech_onsets(path: Path) -> list[float]:
    from octavia_cli.vad import detect_speech

    return [start for start, _ in detect_speech(decode_16k(path))]
