from __future__ import annotations

import itertools

import numpy as np
import pytest

from octavia_cli.media.audio import (
    iter_chunks,
    limit_peaks,
    peak_dbfs,
    place_clips,
    read_audio,
    to_channels,
    trim_silence,
    write_wav,
)
from octavia_cli.media.ffmpeg import measure_loudness


def test_limiter_keeps_peaks_under_ceiling() -> None:
    rate = 48_000
    loud = (1.8 * np.sin(np.linspace(0, 2000, rate))).astype(np.float32)[None, :]
    assert peak_dbfs(limit_peaks(loud, rate)) <= -1.0 + 1e-3
    quiet = loud * 0.1
    assert limit_peaks(quiet, rate) is quiet


def test_trim_silence_and_channels() -> None:
    audio = np.zeros((2, 1000), np.float32)
    audio[:, 300:600] = 0.5
    trimmed = trim_silence(audio, 1000, keep_s=0.01)
    assert trimmed.shape == (2, 320)
    assert to_channels(trimmed, 1).shape == (1, 320)
    assert to_channels(to_channels(trimmed, 1), 2).shape == (2, 320)
    assert trim_silence(np.zeros((1, 50), np.float32), 1000).shape == (1, 0)


def test_place_clips_sums_and_clips_to_length() -> None:
    one = np.full((1, 10), 0.1, np.float32)
    track, spans = place_clips(25, [(0, one), (5, one), (20, one), (30, one)])
    assert spans == [(0, 10), (5, 15), (20, 25)]
    assert track[0, 7] == pytest.approx(0.2) and track[0, 24] == pytest.approx(0.1)


def test_wav_round_trip_and_resample(tmp_path) -> None:
    audio = (0.25 * np.sin(np.linspace(0, 300, 44100))).astype(np.float32)[None, :]
    write_wav(tmp_path / "a.wav", audio, 44100)
    back, rate = read_audio(tmp_path / "a.wav")
    assert rate == 44100 and np.allclose(back, audio, atol=1e-4)
    resampled, rate = read_audio(tmp_path / "a.wav", 16000)
    assert rate == 16000 and abs(resampled.shape[1] - 16000) <= 2


def test_loudness_matches_a_known_tone() -> None:
    rate = 48_000
    t = np.arange(rate * 3) / rate
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None, :]
    # A 1 kHz sine at -20 dBFS peak in one channel reads about -23 LUFS (BS.1770).
    assert measure_loudness(tone, rate) == pytest.approx(-23.0, abs=0.3)
    assert measure_loudness(np.zeros((1, rate), np.float32), rate) == float("-inf")


def test_iter_chunks_cuts_at_quiet_moments_and_covers_everything(tmp_path) -> None:
    rate = 16_000
    rng = np.random.default_rng(0)
    # 25 s of "speech" (noise bursts) with short pauses at 4.5 s, 9.2 s, 13.9 s, 18.6 s...
    audio = (0.3 * rng.standard_normal(25 * rate)).astype(np.float32)
    pauses = [4.5, 9.2, 13.9, 18.6, 23.3]
    for pause in pauses:
        audio[int(pause * rate) : int((pause + 0.3) * rate)] = 0.0
    write_wav(tmp_path / "long.wav", audio[None, :], rate)
    chunks = list(iter_chunks(tmp_path / "long.wav", window_s=6.0, search_s=2.0))
    assert sum(len(c) for _, c in chunks) == len(audio)
    for (offset, chunk), (next_offset, _) in itertools.pairwise(chunks):
        assert offset + len(chunk) / rate == pytest.approx(next_offset)
        assert min(abs(next_offset - (p + 0.15)) for p in pauses) < 0.2  # cut in a pause
        assert len(chunk) <= 6 * rate
