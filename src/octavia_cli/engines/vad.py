"""Voice activity detection with the Silero VAD model that faster-whisper ships (ONNX, no
download), used to put each line's start and end on the real speech onset.

Whisper's word timestamps come from cross-attention and are often a few hundred
milliseconds off at the edges of a phrase (the first word of a line tends to start early,
at the previous pause). A dubbed line must start when the speaker starts, so after
recognition we snap each line's edges to the nearest VAD speech boundary nearby.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from octavia_cli.project.records import Segment, Word

SAMPLE_RATE_HZ = 16_000


@dataclass(frozen=True)
class SnapOptions:
    max_shift_s: float = 0.6  # never move a line edge further than this
    pad_s: float = 0.03  # speech padding the VAD adds on each side


# Silero's speech probability falls with the level and the bandwidth of the recording: at
# its default threshold (0.5) it missed 23% of the speech of a dialogue in noise and 75% of
# a phone call (../shared/data/dialogues), against 3-6% of clean speech. The audio is first
# brought to one level (its loud frames at LEVEL_DBFS), which alone brings noise to 4%.
# Who speaks needs every stretch of speech (RECALL: 2% missed in noise, for 1-3% more false
# alarm on clean speech); a line's edges need where speech clearly is (EDGES: the default,
# whose regions end where the voice does).
EDGES = 0.5
RECALL = 0.35
LEVEL_DBFS = -12.0
# A narrow-band recording (a phone line: 300-3400 Hz) is speech to Silero at a third of the
# probability (a median of 0.31 over a call's speech, where clean speech has 0.98), so no
# fixed threshold serves both: 0.35 missed 61% of the call. Each recording's probabilities
# fall in two classes, speech and the rest; where they split best (Otsu's criterion on the
# log-odds) was 0.07 on the call (10% missed, 4% false alarm) and 0.36-0.64 on every clean,
# noisy or reverberant dialogue. The threshold comes down to that split, never below
# LOWEST, and only when the upper class sounds like speech at all (its median probability at
# least SPEECH_LIKE: 0.32 on the call; at most 0.06 for noise, tones, melody or silence).
LOWEST = 0.05
SPEECH_LIKE = 0.2
WINDOW = 512  # samples per Silero probability


def detect_speech(
    audio_16k: np.ndarray, pad_s: float = SnapOptions.pad_s, threshold: float = EDGES
) -> list[tuple[float, float]]:
    """Speech regions ``(start_s, end_s)`` in 16 kHz mono float audio: ``threshold`` is
    Silero's speech probability (:data:`EDGES` for line edges, :data:`RECALL` to miss less
    speech), lowered for a recording whose speech Silero hears faintly
    (:func:`faint_speech_threshold`)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio = _levelled(audio_16k)
    threshold = min(threshold, faint_speech_threshold(audio))
    options = VadOptions(
        threshold=threshold,
        min_speech_duration_ms=100,
        min_silence_duration_ms=150,
        speech_pad_ms=int(pad_s * 1000),
    )
    stamps = get_speech_timestamps(audio, options)
    return [(s["start"] / SAMPLE_RATE_HZ, s["end"] / SAMPLE_RATE_HZ) for s in stamps]


def faint_speech_threshold(audio_16k: np.ndarray) -> float:
    """The speech probability that splits this recording's Silero probabilities best into
    two classes, when the upper one sounds like speech; 1.0 (no limit) otherwise."""
    from faster_whisper.vad import get_vad_model

    if len(audio_16k) < 2 * SAMPLE_RATE_HZ:  # too few frames to tell two classes apart
        return 1.0
    padded = np.pad(audio_16k, (0, WINDOW - len(audio_16k) % WINDOW))
    probabilities = np.clip(np.asarray(get_vad_model()(padded)).reshape(-1), 1e-4, 1 - 1e-4)
    log_odds = np.log(probabilities / (1 - probabilities))
    split = _otsu(log_odds)
    upper = probabilities[log_odds >= split]
    if not len(upper) or float(np.median(upper)) < SPEECH_LIKE:
        return 1.0
    return max(LOWEST, float(1 / (1 + np.exp(-split))))


def _otsu(values: np.ndarray, bins: int = 100) -> float:
    """The value that splits ``values`` into two classes of the largest between-class
    variance (Otsu's method on their histogram)."""
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)[:-1].astype(float)
    total = float(counts.sum())
    mass = np.cumsum(counts * centres)[:-1]
    lower_mean = mass / np.maximum(weight, 1)
    upper_mean = (mass[-1] + counts[-1] * centres[-1] - mass) / np.maximum(total - weight, 1)
    between = weight * (total - weight) * (lower_mean - upper_mean) ** 2
    return float(edges[1 + int(np.argmax(between))])


def _levelled(audio_16k: np.ndarray) -> np.ndarray:
    """``audio_16k`` with its loud frames (the 95th percentile of 30 ms RMS) at
    ``LEVEL_DBFS``, clipped to full scale; silence stays silence."""
    audio = np.ascontiguousarray(audio_16k, dtype=np.float32)
    frame = 480
    usable = len(audio) // frame * frame
    if usable == 0:
        return audio
    rms = np.sqrt(np.mean(audio[:usable].reshape(-1, frame) ** 2, axis=1))
    level = float(np.percentile(rms, 95))
    if level < 1e-5:  # digital silence, or next to it: nothing to bring up
        return audio
    gain = 10 ** (LEVEL_DBFS / 20) / level
    return np.clip(audio * gain, -1.0, 1.0).astype(np.float32)


def refine_words(
    words: list[Word], regions: list[tuple[float, float]], min_gap_s: float = 0.3
) -> list[Word]:
    """Words whose span holds a silence of ``min_gap_s`` or more (Whisper's word times
    swallow pauses: a line's first word starting at the pause before it, an "and" lasting
    across a second of silence) shrunk to the stretch of speech that holds most of them.
    Words the VAD heard no speech in are left as they are (it can miss speech)."""
    if not regions:
        return list(words)
    starts = np.array([r[0] for r in regions])
    result = []
    for word in words:
        first = max(int(np.searchsorted(starts, word.start_s, side="right")) - 1, 0)
        pieces = []
        for start, end in regions[first:]:
            if start >= word.end_s:
                break
            a, b = max(start, word.start_s), min(end, word.end_s)
            if b > a:
                pieces.append((a, b))
        if not pieces:
            result.append(word)
            continue
        edges = [word.start_s, *[x for piece in pieces for x in piece], word.end_s]
        silences = [edges[i + 1] - edges[i] for i in range(0, len(edges), 2)]
        if max(silences) < min_gap_s:
            result.append(word)
            continue
        a, b = max(pieces, key=lambda piece: piece[1] - piece[0])
        result.append(dataclasses.replace(word, start_s=round(a, 3), end_s=round(b, 3)))
    return result


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
