"""resemblyzer's GE2E speaker encoder (its pretrained weights, read from the installed
package) with the mel spectrogram computed in numpy.

Importing ``resemblyzer`` imports librosa (for one mel spectrogram: about 3 s of a 10 s
dub's diarization on 2 cores) and webrtcvad (for a silence trimmer the diarizer does not
use). Here the network is the same three-layer LSTM with its ``pretrained.pt``, and the
spectrogram is librosa's ``melspectrogram`` with resemblyzer's settings (16 kHz, 25 ms Hann
windows every 10 ms, centred with zero padding, 40 Slaney mel bands, power 2), written out:
the tests hold both equal to resemblyzer's own to float32 precision.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.errors import MissingDependencyError

SAMPLE_RATE_HZ = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s a partial utterance
HIDDEN = 256
LAYERS = 3


def weights_path() -> Path:
    """resemblyzer's ``pretrained.pt`` (found, not imported)."""
    from importlib.util import find_spec

    spec = find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "The speaker encoder's weights come with resemblyzer, which is not installed.",
            "Install it with: pip install 'octavia-cli[offline]'",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise MissingDependencyError(
            f"resemblyzer is installed without its weights ({path} is missing).",
            "Reinstall it with: pip install --force-reinstall resemblyzer",
        )
    return path


@functools.lru_cache(maxsize=1)
def speaker_encoder() -> SpeakerEncoder:
    """The encoder on the CPU, loaded once per process."""
    return SpeakerEncoder()


class SpeakerEncoder:
    def __init__(self) -> None:
        import torch
        from torch import nn

        self._torch = torch
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
        self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self.lstm.eval()
        self.linear.eval()

    def embed_partials(
        self, wav: np.ndarray, rate: float, min_coverage: float
    ) -> tuple[np.ndarray, list[slice]]:
        """Unit embeddings of the 1.6 s partial utterances of ``wav`` (16 kHz mono), ``rate``
        a second, and their sample slices: resemblyzer's ``embed_utterance(...,
        return_partials=True)``."""
        wav_slices, mel_slices = partial_slices(len(wav), rate, min_coverage)
        needed = wav_slices[-1].stop
        if needed >= len(wav):
            wav = np.pad(wav, (0, needed - len(wav)))
        mel = mel_spectrogram(wav)
        batch = np.stack([mel[s] for s in mel_slices])
        torch = self._torch
        with torch.inference_mode():
            _, (hidden, _) = self.lstm(torch.from_numpy(batch))
            raw = torch.relu(self.linear(hidden[-1]))
            embeddings = raw / torch.norm(raw, dim=1, keepdim=True)
        return embeddings.numpy(), wav_slices


def partial_slices(n_samples: int, rate: float, min_coverage: float) -> tuple[list, list]:
    """Where the partial utterances lie, in samples and in spectrogram frames
    (resemblyzer's ``VoiceEncoder.compute_partial_slices``)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE_HZ / rate) / HOP))
    assert 0 < step <= PARTIAL_FRAMES, rate
    wav_slices, mel_slices = [], []
    for i in range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step):
        mel_slices.append(slice(i, i + PARTIAL_FRAMES))
        wav_slices.append(slice(i * HOP, (i + PARTIAL_FRAMES) * HOP))
    last = wav_slices[-1]
    coverage = (n_samples - last.start) / (last.stop - last.start)
    if coverage < min_coverage and len(mel_slices) > 1:
        mel_slices, wav_slices = mel_slices[:-1], wav_slices[:-1]
    return wav_slices, mel_slices


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """``(frames, 40)`` mel power spectrogram, float32, as resemblyzer computes it."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(np.asarray(wav, dtype=np.float32), N_FFT // 2)
    frames = sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * _hann(), axis=1).astype(np.complex64)
    power = spectrum.real**2 + spectrum.imag**2
    return (power @ _mel_filters().T).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    """The periodic Hann window (scipy's ``get_window("hann", N_FFT)``)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """librosa's ``filters.mel(sr=16000, n_fft=400, n_mels=40)``: Slaney's mel scale,
    triangles normalised to equal area, float32."""
    fft_hz = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE_HZ)
    mel_hz = _mel_to_hz(np.linspace(0.0, _hz_to_mel(SAMPLE_RATE_HZ / 2), N_MELS + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.astype(np.float32)


_LINEAR_HZ_PER_MEL = 200.0 / 3
_LOG_FROM_HZ = 1000.0
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: Any) -> Any:
    hz = np.asanyarray(hz, dtype=np.float64)
    mel = hz / _LINEAR_HZ_PER_MEL
    log_from = _LOG_FROM_HZ / _LINEAR_HZ_PER_MEL
    return np.where(
        hz >= _LOG_FROM_HZ,
        log_from + np.log(np.maximum(hz, 1e-10) / _LOG_FROM_HZ) / _LOG_STEP,
        mel,
    )


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_from = _LOG_FROM_HZ / _LINEAR_HZ_PER_MEL
    return np.where(
        mel >= log_from,
        _LOG_FROM_HZ * np.exp(_LOG_STEP * (mel - log_from)),
        _LINEAR_HZ_PER_MEL * mel,
    )
