"""The voice track's loudness meter against ffmpeg's ``ebur128`` (the meter of every other
measurement), on real speech where ``../shared`` has it and on gated bursts of noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from octavia_cli.media.ffmpeg import measure_loudness
from octavia_cli.media.loudness import LoudnessMeter, k_weighting

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dialogues"


def metered(mono: np.ndarray, rate: int, block: int, channels: int = 1) -> float:
    meter = LoudnessMeter(rate)
    for start in range(0, len(mono), block):
        meter.add(mono[start : start + block])
    return meter.integrated(channels)


def bursts(rate: int, seconds: float = 12.0) -> np.ndarray:
    """Noise in bursts of different levels with silences between: both gates matter."""
    generator = np.random.default_rng(7)
    signal = generator.standard_normal(round(seconds * rate)).astype(np.float32) * 0.1
    envelope = np.repeat(generator.choice([0.0, 0.05, 0.3, 1.0], size=int(seconds * 2)), rate // 2)
    return signal * np.resize(envelope, signal.shape).astype(np.float32)


def test_the_standard_filter_at_48_khz() -> None:
    """BS.1770-4's table of the K filter's coefficients at 48 kHz."""
    (shelf_b, shelf_a), (high_b, high_a) = k_weighting(48_000)
    assert np.allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285])
    assert np.allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585])
    assert np.allclose(high_b, [1.0, -2.0, 1.0])
    assert np.allclose(high_a, [1.0, -1.99004745483398, 0.99007225036621])


@pytest.mark.parametrize("rate", [48_000, 44_100, 16_000])
def test_agrees_with_ffmpeg(rate: int) -> None:
    signals = [bursts(rate)]
    if SHARED.is_dir():
        from octavia_cli.media.audio import read_audio

        for name in ("four-panel", "three-in-a-room"):
            audio, _ = read_audio(SHARED / f"{name}.flac", rate)
            signals.append(audio[0, : 60 * rate])
    for mono in signals:
        # Blocks that are not a whole number of 100 ms hops, and one block for it all.
        for block in (7 * rate + 123, len(mono)):
            ours = metered(mono, rate, block)
            assert ours == pytest.approx(measure_loudness(mono[None], rate), abs=0.1)
        stereo = metered(mono, rate, 3 * rate, channels=2)
        assert stereo == pytest.approx(measure_loudness(np.stack([mono, mono]), rate), abs=0.1)


def test_a_tone_silence_and_too_short() -> None:
    rate = 48_000
    t = np.arange(5 * rate) / rate
    tone = (10 ** (-23 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert metered(tone, rate, rate) == pytest.approx(-23.0, abs=0.05)
    assert metered(np.zeros(5 * rate, np.float32), rate, rate) == float("-inf")
    assert metered(tone[: int(0.35 * rate)], rate, rate) == float("-inf")  # under one block
    assert LoudnessMeter(rate).integrated() == float("-inf")
