"""Audio as numpy arrays: read, write, resample, trim, time-stretch, duck, measure.

Arrays are float32 shaped ``(channels, samples)``, the layout pedalboard uses. Time-stretch
is Rubber Band through pedalboard (formant-preserving, the standard of the field); file I/O
and resampling go through pedalboard's ``AudioFile`` too, so one well-kept library does the
signal work. Loudness is measured by ffmpeg (``media.measure_loudness``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from octavia_cli.files import atomic_path
from octavia_cli.media.ffmpeg import filter_audio


def read_audio(path: Path, sample_rate_hz: int | None = None) -> tuple[np.ndarray, int]:
    """Read ``path`` as ``(channels, samples)`` float32, resampled if a rate is given."""
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as handle:
        if sample_rate_hz is not None and handle.samplerate != sample_rate_hz:
            with handle.resampled_to(sample_rate_hz) as resampled:
                if resampled.frames == 0:  # (pedalboard refuses to read 0 frames)
                    return np.zeros((handle.num_channels, 0), np.float32), sample_rate_hz
                return resampled.read(resampled.frames).astype(np.float32), sample_rate_hz
        if handle.frames == 0:
            return np.zeros((handle.num_channels, 0), np.float32), int(handle.samplerate)
        return handle.read(handle.frames).astype(np.float32), int(handle.samplerate)


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """``(channels, samples)`` audio at another rate: pedalboard's resampler, the one
    :func:`read_audio` reads through (windowed sinc)."""
    if from_hz == to_hz:
        return audio
    from pedalboard.io import StreamResampler

    resampler = StreamResampler(from_hz, to_hz, audio.shape[0])
    out = np.concatenate(
        [resampler.process(np.ascontiguousarray(audio, dtype=np.float32)), resampler.process()],
        axis=1,
    )
    return out[:, : round(audio.shape[1] * to_hz / from_hz)].astype(np.float32)


def iter_chunks(
    path: Path,
    window_s: float,
    search_s: float,
    cut_at: Callable[[np.ndarray, int], int] | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Read a mono file in windows of about ``window_s`` seconds, each ending at the
    quietest moment of its last ``search_s`` seconds (or where ``cut_at(samples, rate)``
    says, in them), so a long file is processed in bounded memory without cutting through
    a word. Yields ``(offset_s, samples)``."""
    import soundfile

    with soundfile.SoundFile(str(path)) as handle:
        rate = handle.samplerate
        window, search = int(window_s * rate), int(search_s * rate)
        carry = np.zeros(0, dtype=np.float32)
        offset = 0
        while True:
            block = handle.read(max(window - len(carry), 0), dtype="float32", always_2d=True)
            data = np.concatenate([carry, block.mean(axis=1)])
            if len(data) == 0:
                return
            if len(data) < window or handle.tell() >= handle.frames:
                yield offset / rate, data
                return
            tail = len(data) - min(search, len(data) // 2)
            cut = tail + (cut_at or quietest_point)(data[tail:], rate)
            yield offset / rate, data[:cut]
            carry, offset = data[cut:], offset + cut


def quietest_point(audio: np.ndarray, sample_rate_hz: int, span_s: float = 0.3) -> int:
    hop = max(1, int(0.025 * sample_rate_hz))
    frames = len(audio) // hop
    if frames < 2:
        return len(audio) // 2
    energy = (audio[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
    width = max(1, int(span_s * sample_rate_hz / hop))
    smoothed = np.convolve(energy, np.ones(width) / width, mode="same")
    return int(smoothed.argmin()) * hop + hop // 2


def write_wav(path: Path, audio: np.ndarray, sample_rate_hz: int) -> None:
    """Write 16-bit PCM WAV atomically."""
    import soundfile

    with atomic_path(path) as tmp:
        soundfile.write(
            str(tmp), np.clip(audio, -1.0, 1.0).T, sample_rate_hz, subtype="PCM_16", format="WAV"
        )


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mix down or copy up to ``channels`` channels."""
    if audio.shape[0] == channels:
        return audio
    mono = audio.mean(axis=0, keepdims=True)
    return np.repeat(mono, channels, axis=0)


def trim_silence(
    audio: np.ndarray, sample_rate_hz: int, threshold_db: float = -45.0, keep_s: float = 0.02
) -> np.ndarray:
    """Cut leading and trailing silence (below ``threshold_db`` dBFS), keeping ``keep_s``."""
    level = np.abs(audio).max(axis=0) if audio.size else np.zeros(0)
    loud = np.flatnonzero(level > 10 ** (threshold_db / 20))
    if loud.size == 0:
        return audio[:, :0]
    keep = int(keep_s * sample_rate_hz)
    start = max(0, loud[0] - keep)
    end = min(audio.shape[1], loud[-1] + 1 + keep)
    return audio[:, start:end]


def time_stretch(audio: np.ndarray, sample_rate_hz: int, speed: float) -> np.ndarray:
    """Play ``audio`` ``speed`` times faster without changing pitch (Rubber Band)."""
    if abs(speed - 1.0) < 1e-3:
        return audio
    import pedalboard

    return pedalboard.time_stretch(
        np.ascontiguousarray(audio, dtype=np.float32),
        float(sample_rate_hz),
        stretch_factor=float(speed),
        high_quality=True,
    ).astype(np.float32)


def place_clips(
    length: int, clips: list[tuple[int, np.ndarray]]
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Sum mono clips into one ``(1, length)`` track at their start samples; return the track
    and the ``(start, end)`` sample span of each clip that landed on it."""
    track = np.zeros((1, length), dtype=np.float32)
    spans = []
    for start, clip in clips:
        start = max(0, start)
        end = min(length, start + clip.shape[1])
        if end <= start:
            continue
        track[:, start:end] += clip[:1, : end - start]
        spans.append((start, end))
    return track, spans


def peak_dbfs(audio: np.ndarray) -> float:
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def limit_peaks(audio: np.ndarray, sample_rate_hz: int, ceiling_db: float = -1.0) -> np.ndarray:
    """Keep peaks at or below ``ceiling_db`` dBFS with ffmpeg's look-ahead ``alimiter``
    (latency compensated, no auto-level), then a hard clip at the ceiling for safety.

    pedalboard's ``Limiter`` (JUCE's) was tried first: it compresses below its threshold and
    adds make-up gain, which raised our dub track by 4 LU instead of only catching peaks.
    """
    if peak_dbfs(audio) <= ceiling_db:
        return audio

    ceiling = 10 ** (ceiling_db / 20)
    limited = filter_audio(
        audio,
        sample_rate_hz,
        f"alimiter=limit={ceiling:.4f}:attack=5:release=80:level=false:latency=true",
    )
    limited = fit_length(limited, audio.shape[1])
    return np.clip(limited, -ceiling, ceiling).astype(np.float32)


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad ``audio`` to ``length`` samples."""
    if audio.shape[1] >= length:
        return audio[:, :length]
    return np.pad(audio, ((0, 0), (0, length - audio.shape[1])))


def dialogue_channels(channels: int) -> list[int]:
    """Where dialogue sits in a layout of ``channels``: mono and stereo as they are; quad
    (no centre) the front pair; every other surround layout (3.0, 5.0, 5.1, 6.1, 7.1: FL FR
    FC ...) the centre channel, as film mixes carry it."""
    if channels <= 2:
        return list(range(channels))
    if channels == 4:
        return [0, 1]
    return [2]
