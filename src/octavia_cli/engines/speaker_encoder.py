"""resemblyzer's GE2E speaker encoder (its pretrained weights, read from the installed
package), run in numpy.

Importing ``resemblyzer`` imports librosa (for one mel spectrogram: about 3 s of a 10 s
dub's diarization on 2 cores) and webrtcvad (for a silence trimmer the diarizer does not
use), and the encoder is a torch module (2.4 s to import torch, and 250 MB, for a
three-layer LSTM of 1.4M weights). Here the same LSTM runs in numpy on the weights of its
``pretrained.pt`` (read by :func:`read_checkpoint`, torch's legacy format, without torch),
and the spectrogram is librosa's ``melspectrogram`` with resemblyzer's settings (16 kHz,
25 ms Hann windows every 10 ms, centred with zero padding, 40 Slaney mel bands, power 2),
written out: the tests hold both equal to resemblyzer's own to float32 precision.
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
STEPS_AT_ONCE = 20  # LSTM steps whose input projection is computed together
HIDDEN = 256
LAYERS = 3


def weights_path() -> Path:
    """resemblyzer's ``pretrained.pt`` (found, not imported)."""
    from octavia_cli.models.bundled import package_dir

    folder = package_dir("resemblyzer")
    if folder is None:
        raise MissingDependencyError(
            "The speaker encoder's weights come with resemblyzer, which is not installed.",
            "Install it with: pip install 'octavia-cli[offline]'",
        )
    path = folder / "pretrained.pt"
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
        state = read_checkpoint(weights_path())["model_state"]
        self.layers = [
            (
                state[f"lstm.weight_ih_l{n}"].T.copy(),
                state[f"lstm.weight_hh_l{n}"].T.copy(),
                state[f"lstm.bias_ih_l{n}"] + state[f"lstm.bias_hh_l{n}"],
            )
            for n in range(LAYERS)
        ]
        self.linear = (state["linear.weight"].T.copy(), state["linear.bias"])

    def embed_partials(
        self, wav: np.ndarray, rate: float, min_coverage: float
    ) -> tuple[np.ndarray, list[slice]]:
        """Unit embeddings of the 1.6 s partial utterances of ``wav`` (16 kHz mono), ``rate``
        a second, and their sample slices: resemblyzer's ``embed_utterance(...,
        return_partials=True)``."""
        mels, wav_slices = partial_mels(wav, rate, min_coverage)
        return self.embed(mels), wav_slices

    def embed(self, mels: np.ndarray, batch: int = 256) -> np.ndarray:
        """Unit embeddings of ``(count, frames, 40)`` spectrograms: the last hidden state of
        the LSTM's top layer through the linear layer and a ReLU."""
        if len(mels) > batch:
            pieces = [self.embed(mels[i : i + batch]) for i in range(0, len(mels), batch)]
            return np.concatenate(pieces)
        # One tanh for all four gates: sigmoid(x) = (1 + tanh(x / 2)) / 2 for the input,
        # forget and output gates, tanh itself for the cell's candidate.
        scale = np.full(4 * HIDDEN, 0.5, np.float32)
        scale[2 * HIDDEN : 3 * HIDDEN] = 1.0
        sequence = mels.astype(np.float32)
        for w_input, w_hidden, bias in self.layers:
            batch, steps = sequence.shape[:2]
            hidden = np.zeros((batch, HIDDEN), np.float32)
            cell = np.zeros((batch, HIDDEN), np.float32)
            outputs = np.empty((batch, steps, HIDDEN), np.float32)
            for first in range(0, steps, STEPS_AT_ONCE):
                # The input projection of a few steps at once: all 160 of a batch took
                # 168 MB, the diarizer's peak on a long file.
                inputs = sequence[:, first : first + STEPS_AT_ONCE] @ w_input + bias
                for t in range(inputs.shape[1]):
                    squashed = np.tanh((inputs[:, t] + hidden @ w_hidden) * scale)
                    i, f, g, o = np.split(squashed, 4, axis=1)  # torch's order
                    cell = (0.5 + 0.5 * f) * cell + (0.5 + 0.5 * i) * g
                    hidden = (0.5 + 0.5 * o) * np.tanh(cell)
                    outputs[:, first + t] = hidden
            sequence = outputs
        weight, bias = self.linear
        raw = np.maximum(hidden @ weight + bias, 0.0)
        return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def read_checkpoint(path: Path) -> Any:
    """A checkpoint in torch's legacy (pre-1.6, not zip) format, its tensors as numpy
    arrays, read without torch (``torch.serialization._legacy_load``): a pickle whose
    tensors refer to storages by key, then the storages' keys, then each storage's bytes
    (an int64 count of elements, then the elements). Only the classes such a file needs
    are loaded; anything else in it is refused."""
    import pickle

    dtypes = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
              "LongStorage": np.int64, "IntStorage": np.int32}  # fmt: skip
    kinds: dict[str, Any] = {}  # storage key -> dtype
    tensors: list[tuple[np.ndarray, str, int, tuple, tuple]] = []

    def rebuild(storage: str, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
        tensor = np.empty(size, dtype=kinds[storage])
        tensors.append((tensor, storage, offset, tuple(size), tuple(stride)))
        return tensor

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if (module, name) == ("collections", "OrderedDict"):
                import collections

                return collections.OrderedDict
            if module == "torch" and name in dtypes:
                return name
            raise pickle.UnpicklingError(f"{path}: unexpected {module}.{name}")

        def persistent_load(self, saved_id: Any) -> Any:
            _, kind, key, *_ = saved_id
            kinds[key] = dtypes[kind]
            return key

    storages: dict[str, np.ndarray] = {}
    with open(path, "rb") as file:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(file)  # plain values, before any object
        result = Unpickler(file).load()
        for key in pickle.load(file):  # the storages' keys, in the order of their bytes
            count = int(np.frombuffer(file.read(8), "<i8")[0])
            dtype = np.dtype(kinds[key])
            storages[key] = np.frombuffer(file.read(count * dtype.itemsize), dtype=dtype)
    for tensor, key, offset, size, stride in tensors:
        source = storages[key]
        strides = tuple(step * source.itemsize for step in stride)
        tensor[...] = np.lib.stride_tricks.as_strided(source[offset:], size, strides)
    return result


def partial_mels(wav: np.ndarray, rate: float, min_coverage: float) -> tuple[np.ndarray, list]:
    """The spectrograms of the partial utterances of ``wav`` and their sample slices."""
    wav_slices, mel_slices = partial_slices(len(wav), rate, min_coverage)
    needed = wav_slices[-1].stop
    if needed >= len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    mel = mel_spectrogram(wav)
    return np.stack([mel[s] for s in mel_slices]), wav_slices


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
