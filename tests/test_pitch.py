"""YIN in numpy: the right pitch, and librosa's own answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from octavia_cli.media.pitch import yin

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech"


@pytest.mark.parametrize("f0", [85.0, 140.0, 230.0, 380.0])
def test_the_pitch_of_a_harmonic_tone(f0: float) -> None:
    t = np.arange(32_000) / 16_000
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)).astype(np.float32)
    found = yin(tone, fmin=60, fmax=400, sample_rate=16_000)
    assert np.median(found) == pytest.approx(f0, rel=0.005)


def test_every_frame_as_librosa_finds_it() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    signals = [rng.normal(size=20_000).astype(np.float32)]  # no pitch: the global minima
    if SHARED.is_dir():
        import soundfile

        for name in ("1688-142285-0000", "1998-15444-0000", "3005-163389-0000"):
            audio, _ = soundfile.read(str(SHARED / f"{name}.flac"), dtype="float32")
            signals.append(audio)
    for audio in signals:
        ours = yin(audio, fmin=60, fmax=400, sample_rate=16_000)
        theirs = librosa.yin(audio, fmin=60, fmax=400, sr=16_000)
        assert ours.shape == theirs.shape
        assert np.allclose(ours, theirs, rtol=1e-4), np.max(np.abs(ours - theirs))
