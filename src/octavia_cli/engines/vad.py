"""Voice activity detection with the Silero VAD model that faster-whisper ships (ONNX, no
download), used to put each line's start and end on the real speech onset.

Whisper's word timestamps come from cross-attention and are often a few hundred
milliseconds off at the edges of a phrase (the first word of a line tends to start early,
at the previous pause). A dubbed line must start when the speaker starts, so after
recognition we snap each line's edges to the nearest VAD speech boundary nearby.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from dataclasses import dataclass
from typing import Any

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
# log-odds) was 0.06 on the call (10% missed, 4% false alarm) and 0.36-0.64 on every clean,
# noisy or reverberant dialogue. A recording whose split is below FAINT is heard faintly:
# its threshold comes down to the split (never below LOWEST), when the upper class sounds
# like speech at all (its median probability at least SPEECH_LIKE: 0.32 on the call; at
# most 0.06 for noise, tones, melody or silence). Other recordings keep the thresholds above.
# A long recording can change (a phone-in guest on a podcast, a concatenation): this is
# decided per block of about BLOCK_S, cut where the speech probability is lowest, so no
# stretch of speech is cut in two.
FAINT = 0.25
LOWEST = 0.05
SPEECH_LIKE = 0.2
WINDOW = 512  # samples per Silero probability
CONTEXT = 64  # samples of the window before that Silero hears with each window
VAD_BATCH = 1000  # windows per model call (32 s)
BLOCK_S = 30.0


def detect_speech(
    audio_16k: np.ndarray,
    pad_s: float = SnapOptions.pad_s,
    threshold: float = EDGES,
    min_silence_s: float = 0.15,
) -> list[tuple[float, float]]:
    """Speech regions ``(start_s, end_s)`` in 16 kHz mono float audio: ``threshold`` is
    Silero's speech probability (:data:`EDGES` for line edges, :data:`RECALL` to miss less
    speech), lowered where a recording's speech is heard faintly (:func:`faint_threshold`);
    a silence shorter than ``min_silence_s`` does not end a region."""
    from faster_whisper.vad import VadOptions

    audio, probabilities = heard(audio_16k)
    blocks = [(first, last, faint_threshold(probabilities[first:last]))
              for first, last in _blocks(probabilities)]  # fmt: skip
    if all(faint >= threshold for *_, faint in blocks):  # nothing heard faintly: one pass
        blocks = [(0, len(probabilities), 1.0)]
    regions: list[tuple[float, float]] = []
    for first, last, faint in blocks:
        options = VadOptions(
            threshold=min(threshold, faint),
            # Speech ends below half a faint threshold (the library's own is 0.15 lower,
            # nearly 0 there: a call's pauses were heard as speech).
            neg_threshold=faint / 2 if faint < threshold else None,
            min_speech_duration_ms=100,
            min_silence_duration_ms=round(min_silence_s * 1000),
            speech_pad_ms=round(pad_s * 1000),
        )
        offset = first * WINDOW
        length = min(last * WINDOW, len(audio)) - offset
        stamps = speech_timestamps(probabilities[first:last], length, options)
        regions += [
            ((offset + s["start"]) / SAMPLE_RATE_HZ, (offset + s["end"]) / SAMPLE_RATE_HZ)
            for s in stamps
        ]
    return regions


def pause_point(audio_16k: np.ndarray, rate: int = SAMPLE_RATE_HZ) -> int:
    """Where to cut ``audio_16k`` between two windows: the middle of its longest pause as
    Silero hears it (the quietest moment of a noisy recording can be inside a word); its
    quietest moment if it has no pause."""
    from octavia_cli.media.audio import quietest_point

    assert rate == SAMPLE_RATE_HZ
    quiet = speech_probabilities(_levelled(audio_16k)) < RECALL
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    if not len(edges):
        return quietest_point(audio_16k, rate)
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    middle = (starts[longest] + ends[longest]) // 2 * WINDOW
    return int(min(middle, len(audio_16k)))


def recognition_chunks(audio_16k: np.ndarray) -> list[dict[str, int]]:
    """The speech to give Whisper, as faster-whisper's own VAD filter cuts it (silences of
    2 s or more left out, 0.4 s of padding, in samples), but heard by this module: levelled,
    and with faint speech found (faster-whisper's filter, at 0.5 on the raw audio, dropped
    84% of a phone call's speech before Whisper heard it)."""
    return [
        {"start": round(a * SAMPLE_RATE_HZ), "end": round(b * SAMPLE_RATE_HZ)}
        for a, b in detect_speech(audio_16k, pad_s=0.4, min_silence_s=2.0)
    ]


_HEARD = threading.local()  # per thread, the last audio heard: (its weak reference, levelled,
# probabilities); windows recognised in parallel each have their own


def heard(audio_16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``audio_16k`` levelled (:func:`_levelled`) and Silero's probabilities for it. The
    model runs once for an array however many times it is asked about (the recognition
    window, the line edges and the language detection all ask about the same window)."""
    last = getattr(_HEARD, "last", None)
    if last is not None:
        reference, levelled, probabilities = last
        if reference() is audio_16k and len(levelled) == len(audio_16k):
            return levelled, probabilities
    levelled = _levelled(audio_16k)
    probabilities = speech_probabilities(levelled)
    _HEARD.last = (weakref.ref(audio_16k), levelled, probabilities)
    return levelled, probabilities


def speech_timestamps(probabilities: np.ndarray, length: int, options: Any) -> list[dict]:
    """Speech regions (in samples) of audio of ``length`` samples from its Silero
    ``probabilities``: faster-whisper's ``get_speech_timestamps`` (MIT, from Silero's
    reference code) after its model call, so the model need not run again."""
    rate = SAMPLE_RATE_HZ
    min_speech = rate * options.min_speech_duration_ms / 1000
    pad = rate * options.speech_pad_ms / 1000
    max_speech = rate * options.max_speech_duration_s - WINDOW - 2 * pad
    min_silence = rate * options.min_silence_duration_ms / 1000
    min_silence_at_max_speech = rate * 98 / 1000
    threshold = options.threshold
    neg_threshold = options.neg_threshold
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    triggered = False
    speeches: list[dict] = []
    current: dict = {}
    temp_end = prev_end = next_start = 0
    for i, probability in enumerate(probabilities):
        here = WINDOW * i
        if probability >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = here
        if probability >= threshold and not triggered:
            triggered = True
            current["start"] = here
            continue
        if triggered and here - current["start"] > max_speech:
            if prev_end:
                current["end"] = prev_end
                speeches.append(current)
                current = {}
                if next_start < prev_end:  # silence reached and still no speech
                    triggered = False
                else:
                    current["start"] = next_start
                prev_end = next_start = temp_end = 0
            else:
                current["end"] = here
                speeches.append(current)
                current = {}
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if probability < neg_threshold and triggered:
            if not temp_end:
                temp_end = here
            if here - temp_end > min_silence_at_max_speech:  # do not cut a short silence
                prev_end = temp_end
            if here - temp_end < min_silence:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > min_speech:
                speeches.append(current)
            current = {}
            prev_end = next_start = temp_end = 0
            triggered = False
            continue
    if current and length - current["start"] > min_speech:
        current["end"] = length
        speeches.append(current)
    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - pad))
        if i != len(speeches) - 1:
            silence = speeches[i + 1]["start"] - speech["end"]
            if silence < 2 * pad:
                speech["end"] += int(silence // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - silence // 2))
            else:
                speech["end"] = int(min(length, speech["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            speech["end"] = int(min(length, speech["end"] + pad))
    return speeches


def speech_probabilities(audio_16k: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each :data:`WINDOW` samples of ``audio_16k``: the
    library's model call (each window with the 64 samples before it, the recurrent state
    carried from window to window), in batches of :data:`VAD_BATCH` windows rather than
    its 10 000, whose activations took 100 MB for two and a half minutes of audio."""
    from faster_whisper.vad import get_vad_model

    padded = np.pad(audio_16k, (0, WINDOW - len(audio_16k) % WINDOW)).astype(np.float32)
    model = get_vad_model()
    session = getattr(model, "session", None)
    if session is None:  # another version of the library: its own call
        return np.asarray(model(padded), dtype=np.float64).reshape(-1)
    windows = padded.reshape(-1, WINDOW)
    context = np.roll(windows[:, -CONTEXT:], 1, axis=0)
    context[0] = 0.0
    framed = np.concatenate([context, windows], axis=1)
    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    outputs = []
    for first in range(0, len(framed), VAD_BATCH):
        output, h, c = session.run(
            None, {"input": framed[first : first + VAD_BATCH], "h": h, "c": c}
        )
        outputs.append(output)
    return np.concatenate(outputs, axis=0).astype(np.float64).reshape(-1)


def faint_threshold(probabilities: np.ndarray) -> float:
    """For speech heard faintly, the probability that splits ``probabilities`` best into two
    classes (the upper one speech); 1.0 (no limit) for any other recording."""
    if len(probabilities) < 2 * SAMPLE_RATE_HZ / WINDOW:  # too few to tell two classes
        return 1.0
    clipped = np.clip(probabilities, 1e-4, 1 - 1e-4)
    log_odds = np.log(clipped / (1 - clipped))
    split = _otsu(log_odds)
    upper = clipped[log_odds >= split]
    threshold = float(1 / (1 + np.exp(-split)))
    if threshold >= FAINT or not len(upper) or float(np.median(upper)) < SPEECH_LIKE:
        return 1.0
    return max(LOWEST, threshold)


def _blocks(probabilities: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` window indices of blocks of about :data:`BLOCK_S`, each cut at the
    quietest half second between two thirds and four thirds of a block from its start."""
    size = round(BLOCK_S * SAMPLE_RATE_HZ / WINDOW)
    count = len(probabilities)
    smooth = np.convolve(probabilities, np.ones(16) / 16, mode="same")
    blocks, first = [], 0
    while count - first > size * 4 // 3:
        low, high = first + size * 2 // 3, first + size * 4 // 3
        cut = low + int(np.argmin(smooth[low:high]))
        blocks.append((first, cut))
        first = cut
    blocks.append((first, count))
    return blocks


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
    when one lies within ``max_shift_s``; lines never overlap or get shorter than 0.1 s.

    A line that starts in a pause (Whisper put its first word there, up to a second before
    the speaker speaks) starts at the first onset after it, however far, before its second
    word ends (or its end): Whisper can put a whole first word in the pause, and the second
    word's start with it (a phone call's "They" 30.83-31.41 s and "swarmed" from 31.41 s,
    where the speech starts at 31.46 s)."""
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
        if not _in_speech(onsets, offsets, segment.start_s):
            horizon = segment.words[1].end_s if len(segment.words) > 1 else segment.end_s
            later = onsets[(onsets > segment.start_s) & (onsets < horizon)]
            if len(later):
                start = float(later[0])
        end = _nearest(offsets, segment.end_s, options.max_shift_s)
        new_start = segment.start_s if start is None else max(start, floor)
        new_end = segment.end_s if end is None else min(end, ceiling)
        if new_end - new_start >= 0.1:
            segment.start_s, segment.end_s = round(new_start, 3), round(new_end, 3)


def _in_speech(onsets: np.ndarray, offsets: np.ndarray, time_s: float) -> bool:
    index = int(np.searchsorted(onsets, time_s, side="right")) - 1
    return index >= 0 and time_s < offsets[index]


def _nearest(values: np.ndarray, target: float, limit: float) -> float | None:
    index = int(np.abs(values - target).argmin())
    return float(values[index]) if abs(values[index] - target) <= limit else None
