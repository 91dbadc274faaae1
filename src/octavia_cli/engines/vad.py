"""Voice activity detection with the Silero VAD model that faster-whisper ships (ONNX, no
download), used to put each line's start and end on the real speech onset.

Whisper's word timestamps come from cross-attention and are often a few hundred
milliseconds off at the edges of a phrase (the first word of a line tends to start early,
at the previous pause). A dubbed line must start when the speaker starts, so after
recognition we snap each line's edges to the nearest VAD speech boundary nearby.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from octavia_cli.project.records import Segment

SAMPLE_RATE_HZ = 16_000


@dataclass(frozen=True)
class SnapOptions:
    max_shift_s: float = 0.6  # never move a line edge further than this
    pad_s: float = 0.03  # speech padding the VAD adds on each side


def detect_speech(
    audio_16k: np.ndarray, pad_s: float = SnapOptions.pad_s
) -> list[tuple[float, float]]:
    """Speech regions ``(start_s, end_s)`` in 16 kHz mono float audio."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=0.5,
        min_speech_duration_ms=100,
        min_silence_duration_ms=150,
        speech_pad_ms=int(pad_s * 1000),
    )
    stamps = get_speech_timestamps(np.ascontiguousarray(audio_16k, dtype=np.float32), options)
    return [(s["start"] / SAMPLE_RATE_HZ, s["end"] / SAMPLE_RATE_HZ) for s in stamps]


def snap_to_speech(
    segments: list[Segment], regions: list[tuple[float, float]], options: SnapOptions | None = None
) -> None:
    """Move each line's start to a speech onset and its end to a speech offset, in place,
    when one lies within ``max_shift_s``; lines never overlap or get shorter than 0.1 s."""
    options = options or SnapOptions()
    if not regions:
        return
    onsets = np.array([r[0] for r in regions])
    offsets = np.array([r[1] for r in regions])
    ordered = sorted(segments, key=lambda s: s.start_s)
    for index, segment in enumerate(ordered):
        floor = ordered[index - 1].end_s if index else 0.0
        ceiling = ordered[index + 1].start_s if index + 1 < len(ordered) else float("inf")
        start = _nearest(onsets, segment.start_s, options.max_shift_s)
        end = _nearest(offsets, segment.end_s, options.max_shift_s)
        new_start = segment.start_s if start is None else max(start, floor)
        new_end = segment.end_s if end is None else min(end, ceiling)
        if new_end - new_start >= 0.1:
            segment.start_s, segment.end_s = round(new_start, 3), round(new_end, 3)


def _nearest(values: np.ndarray, target: float, limit: float) -> float | None:
    index = int(np.abs(values - target).argmin())
    return float(values[index]) if abs(values[index] - target) <= limit else None
