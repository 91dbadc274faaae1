"""Demucs (Hybrid Transformer Demucs, ``htdemucs`` by default) through its Python API.

The source is read in blocks (``separation.block_s``, 60 s by default) with a few seconds
of context on each side; neighbouring blocks are cross-faded over that context, so a
two-hour file needs no more memory than a minute of it and the joins have no clicks.
Inside a block, demucs's own ``apply_model`` splits the audio into the model's training
segment with its overlap-add. The mixture is normalised with statistics of the whole file
(as ``demucs.separate`` does), measured in a first streaming pass, so blocks do not change
level. The model runs at 44.1 kHz stereo; the results are resampled back to the source's
rate and, for a mono source, averaged back to mono. ``vocals`` is the model's vocals stem;
``background`` is the sum of the others (drums, bass, other). A surround source has only its
centre channel separated (where film mixes carry dialogue); the other channels are
background as they are.

Weights come from the Hugging Face hub (``adefossez/HTDemucs``), cached like every other
hub model; ``octavia models pull htdemucs`` fetches them. A repository holds, as demucs 4.1
exports it, the bag's ``{name}.yaml`` (its models' signatures, weights and segment) and a
``{signature}.safetensors`` per model (the class and its arguments in the metadata); the
engine reads them from the hub cache the catalog names, with downloads off when offline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.config import Settings
from octavia_cli.devices import release_memory, resolve_device
from octavia_cli.engines.residency import TorchParking
from octavia_cli.errors import MissingDependencyError, MissingModelError, StageError
from octavia_cli.media.audio import dialogue_channels
from octavia_cli.models.catalog import DEMUCS_MODELS

logger = logging.getLogger(__name__)

CONTEXT_S = 4.0  # audio added on each side of a block, and the length of the cross-fade
HUB_REPOS = {"htdemucs": "adefossez/HTDemucs", "htdemucs_ft": "adefossez/HTDemucs-ft"}


def _import_demucs() -> tuple[Any, Any]:
    try:
        import torch
        from demucs.apply import apply_model
    except ImportError:
        raise MissingDependencyError(
            "Source separation needs demucs, which is not installed.",
            "Install it with: pip install 'octavia-cli[quality]' (or use --no-separate).",
        ) from None
    return torch, apply_model


class DemucsSeparator(TorchParking):
    name = "demucs"

    def __init__(
        self,
        model_name: str = "htdemucs",
        device: str = "cpu",
        *,
        block_s: float = 60.0,
        shifts: int = 0,
        overlap: float = 0.25,
        model: Any = None,
        offline: bool = False,
    ) -> None:
        self.model_name = model_name
        self.device = device
        self.block_s = block_s
        self.shifts = shifts
        self.overlap = overlap
        self.offline = offline
        self._model = model  # given: a model built in memory (tests, or a caller's own)

    @classmethod
    def from_settings(cls, settings: Settings) -> DemucsSeparator:

        device = resolve_device(settings.general.device)
        return cls(
            settings.separation.model,
            device,
            block_s=settings.separation.block_s,
            shifts=settings.separation.shifts,
            offline=settings.offline,
        )

    def describe(self) -> str:
        return f"demucs:{self.model_name}:shifts={self.shifts}"

    # -- the model ---------------------------------------------------------------------

    def model(self) -> Any:
        self.to_device()  # back from CPU memory, if it was parked there
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> Any:
        torch, _ = _import_demucs()
        from demucs.pretrained import get_model

        path = Path(self.model_name)
        try:
            if path.suffix == ".th" and path.exists():
                from demucs.states import load_model

                model = load_model(path)
            elif self.model_name in DEMUCS_MODELS:
                # From the hub only: demucs falls back to its legacy download site when
                # the hub fails, which without a network hangs for a connection timeout
                # before failing (and bypasses --offline).
                model = hub_bag(self.model_name, self.offline)
            else:
                model = get_model(self.model_name)
        except Exception as exc:  # demucs raises bare exceptions for a missing download
            raise MissingModelError(
                f"The demucs model '{self.model_name}' is not on this machine and could not "
                f"be fetched ({type(exc).__name__}).",
                f"Fetch it where there is network: octavia models pull {self.model_name}",
            ) from None
        model.eval()
        if self.device.startswith("cuda"):
            model.to(torch.device(self.device))
        return model

    def _resident(self) -> tuple[Any, str]:
        return self._model, self.device

    def close(self) -> None:
        if self._model is not None:
            self._model = None
            release_memory()

    # -- separation --------------------------------------------------------------------

    def separate(
        self,
        source: Path,
        vocals: Path,
        background: Path,
        on_progress: Callable[[float, float], None],
    ) -> None:
        import soundfile

        torch, apply_model = _import_demucs()
        model = self.model()
        sources = list(model.sources)
        if "vocals" not in sources:
            raise StageError(f"The demucs model '{self.model_name}' has no vocals stem.")
        vocals_index = sources.index("vocals")
        info = soundfile.info(str(source))
        rate, channels, frames = info.samplerate, info.channels, info.frames
        mean, std = _statistics(source)
        block = max(1, round(self.block_s * rate))
        half = round(CONTEXT_S * rate / 2)  # cross-fade half-width: [join - half, join + half)
        context = 2 * half  # each block is separated with this much audio either side
        total_s = frames / rate
        pending: tuple[np.ndarray, np.ndarray] | None = None  # the last block's fade-out
        with (
            soundfile.SoundFile(str(source)) as reader,
            soundfile.SoundFile(str(vocals), "w", rate, channels, subtype="FLOAT") as voice_out,
            soundfile.SoundFile(str(background), "w", rate, channels, subtype="FLOAT") as rest_out,
        ):
            for start in range(0, frames, block):
                end = min(start + block, frames)
                first, last = start == 0, end == frames
                span_start, span_end = max(0, start - context), min(frames, end + context)
                reader.seek(span_start)
                mix = reader.read(span_end - span_start, dtype="float32", always_2d=True).T
                if mix.shape[0] > 2:
                    # Surround: dialogue lives in the centre channel; separate that one and
                    # keep the others, whole, as background.

                    centre = dialogue_channels(mix.shape[0])
                    speech, under = self._separate_span(
                        torch, apply_model, model, mix[centre].mean(axis=0, keepdims=True),
                        rate, mean, std, vocals_index,
                    )  # fmt: skip
                    voice = np.zeros_like(mix)
                    rest = mix.copy()
                    voice[centre], rest[centre] = speech, under
                else:
                    voice, rest = self._separate_span(
                        torch, apply_model, model, mix, rate, mean, std, vocals_index
                    )

                def part(a: int, b: int, v=voice, r=rest, o=span_start) -> tuple:
                    return v[:, a - o : b - o], r[:, a - o : b - o]

                body_start = start if first else min(start + half, end)
                if pending is not None:  # the join with the previous block, cross-faded
                    zone = pending[0].shape[1]
                    fade = np.linspace(0.0, 1.0, zone, dtype=np.float32)[None, :]
                    new_voice, new_rest = part(start - half, start - half + zone)
                    voice_out.write((pending[0] * (1 - fade) + new_voice * fade).T)
                    rest_out.write((pending[1] * (1 - fade) + new_rest * fade).T)
                    body_start = start - half + zone
                body_end = end if last else max(end - half, body_start)
                body_voice, body_rest = part(body_start, body_end)
                voice_out.write(body_voice.T)
                rest_out.write(body_rest.T)
                pending = None if last else part(body_end, min(end + half, frames))
                on_progress(end / rate, total_s)

    def _separate_span(
        self, torch: Any, apply_model: Any, model: Any, mix: np.ndarray, rate: int,
        mean: float, std: float, vocals_index: int,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Vocals and background of ``mix`` (channels x samples at ``rate``), same shape."""
        import julius

        length = mix.shape[1]
        wav = torch.from_numpy(np.ascontiguousarray(mix))
        if wav.shape[0] == 1:
            wav = wav.expand(model.audio_channels, -1)
        elif wav.shape[0] > model.audio_channels:
            wav = wav[: model.audio_channels]
        if rate != model.samplerate:
            wav = julius.resample_frac(wav, rate, model.samplerate)
        wav = (wav - mean) / std
        with torch.inference_mode():
            out = apply_model(
                model,
                wav[None],
                shifts=self.shifts,
                split=True,
                overlap=self.overlap,
                device=self.device,
                progress=False,
            )[0]
        out = out * std + mean
        voice = out[vocals_index]
        rest = out.sum(dim=0) - voice
        stacked = torch.stack([voice, rest])
        if rate != model.samplerate:
            stacked = julius.resample_frac(stacked, model.samplerate, rate)
        stacked = stacked.cpu().numpy().astype(np.float32)
        stacked = _fix_length(stacked, length)
        if mix.shape[0] == 1:
            stacked = stacked.mean(axis=1, keepdims=True)
        return stacked[0], stacked[1]


def hub_bag(name: str, offline: bool) -> Any:
    """The bag of models ``name`` (``htdemucs``) from its hub repository, as
    ``demucs.pretrained.get_model("hf://NAME")`` loads it, but from the hub cache the catalog
    and ``octavia models pull`` use (demucs asks huggingface_hub for its default cache,
    fixed when that library was first imported) and without a download when ``offline``."""
    import yaml
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model
    from huggingface_hub import hf_hub_download

    from octavia_cli.models.bundled import hub_cache_dir

    repo_id, _ = DEMUCS_MODELS[name]

    def fetch(filename: str) -> str:
        return hf_hub_download(repo_id, filename, cache_dir=str(hub_cache_dir()),
                               local_files_only=offline)  # fmt: skip

    with open(fetch(f"{name}.yaml"), encoding="utf-8") as handle:
        bag = yaml.safe_load(handle)
    models = [load_safetensors_model(fetch(f"{sig}.safetensors")) for sig in bag["models"]]
    return BagOfModels(models, bag.get("weights"), bag.get("segment"))


def _fix_length(audio: np.ndarray, length: int) -> np.ndarray:
    if audio.shape[-1] >= length:
        return audio[..., :length]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, length - audio.shape[-1])]
    return np.pad(audio, pad)


def _statistics(source: Path, block_frames: int = 1 << 20) -> tuple[float, float]:
    """Mean and standard deviation of the mono mix of ``source``, streamed."""
    import soundfile

    count, total, squares = 0, 0.0, 0.0
    with soundfile.SoundFile(str(source)) as reader:
        for block in reader.blocks(blocksize=block_frames, dtype="float64", always_2d=True):
            mono = block.mean(axis=1)
            count += mono.size
            total += float(mono.sum())
            squares += float(np.square(mono).sum())
    if count == 0:
        return 0.0, 1.0
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    return mean, std if std > 1e-8 else 1.0
