"""Integrated loudness (ITU-R BS.1770-4, EBU R128) of a signal fed a block at a time.

ffmpeg's ``ebur128`` meters every file Octavia reads or writes; this meter is for the one
signal that exists only as numpy blocks while it is made, the dub's voice track, so that
measuring it costs neither an ffmpeg run over the written file nor holding the track in
memory. pyloudnorm is the Python library of the field, but it wants the whole signal as one
array and imports ``scipy.signal`` (0.6 s here, more than a 10 s dub spends mixing).

The K-weighting filter (the standard's two biquads, with libebur128's coefficients for any
sample rate) is applied as its impulse response by FFT convolution: the response decays
below float precision within 0.1 s, so half a second of it is the filter, exactly. The
tests hold it to ffmpeg's meter.
"""

from __future__ import annotations

import math

import numpy as np

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_S, HOP_S = 0.4, 0.1  # gating blocks of 400 ms, overlapping by 75 %
RESPONSE_S = 0.5


def k_weighting(rate: int) -> list[tuple[list[float], list[float]]]:
    """The K filter at ``rate`` as two biquads ``(b, a)``: the head's high shelf, then the
    RLB high-pass (libebur128's formulas; at 48 kHz they are the standard's table)."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (
        [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0],
        [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0],
    )
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    highpass = ([1.0, -2.0, 1.0], [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return [shelf, highpass]


def impulse_response(rate: int, seconds: float = RESPONSE_S) -> np.ndarray:
    """The K filter's first ``seconds`` of impulse response, from its frequency response
    sampled finely enough (four times the length kept) that time aliasing is nil."""
    length = round(seconds * rate)
    size = 1 << (4 * length - 1).bit_length()
    z = np.exp(-2j * np.pi * np.arange(size // 2 + 1) / size)  # z^-1 on the FFT grid
    response = np.ones_like(z)
    for b, a in k_weighting(rate):
        response *= np.polyval(b[::-1], z) / np.polyval(a[::-1], z)
    return np.fft.irfft(response, size)[:length]


class LoudnessMeter:
    """Feed mono blocks with :meth:`add`; :meth:`integrated` gives the loudness of the
    signal with that mono content on ``channels`` channels of weight 1 (front or centre:
    where the dub's voice goes)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.hop = round(HOP_S * rate)
        self._response = impulse_response(rate)
        self._tail = np.zeros(len(self._response) - 1)
        self._pending = np.zeros(0)
        self._energies: list[np.ndarray] = []  # mean square of each 100 ms hop

    def add(self, block: np.ndarray) -> None:
        if not len(block):
            return
        size = 1 << (len(block) + len(self._response) - 2).bit_length()
        spectrum = np.fft.rfft(block.astype(np.float64), size)
        spectrum *= np.fft.rfft(self._response, size)
        filtered = np.fft.irfft(spectrum, size)[: len(block) + len(self._response) - 1]
        filtered[: len(self._tail)] += self._tail
        self._tail = filtered[len(block) :].copy()
        pending = np.concatenate([self._pending, filtered[: len(block)]])
        whole = len(pending) // self.hop * self.hop
        self._energies.append((pending[:whole].reshape(-1, self.hop) ** 2).mean(axis=1))
        self._pending = pending[whole:]

    def integrated(self, channels: int = 1) -> float:
        """The integrated loudness in LUFS; -inf when no block passes the -70 LUFS gate
        (silence, or less than 400 ms)."""
        hops = np.concatenate(self._energies) if self._energies else np.zeros(0)
        per_block = round(BLOCK_S / HOP_S)
        if len(hops) < per_block:
            return float("-inf")
        window = np.lib.stride_tricks.sliding_window_view(hops, per_block)
        blocks = window.mean(axis=1) * channels
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10 * np.log10(blocks)
        heard = blocks[levels > ABSOLUTE_GATE_LUFS]
        if not len(heard):
            return float("-inf")
        relative = -0.691 + 10 * math.log10(heard.mean()) + RELATIVE_GATE_LU
        kept = blocks[(levels > ABSOLUTE_GATE_LUFS) & (levels > relative)]
        return -0.691 + 10 * math.log10(kept.mean())
