"""MuseTalk 1.5 (TMElyralab, code and weights MIT): the lower half of a face re-drawn in
one step of a latent inpainting UNet, conditioned on Whisper-tiny's audio features.

Built as MuseTalk's own inference builds it (``scripts/inference.py``, ``musetalk/models``,
``musetalk/utils/audio_processor.py`` at their v1.5 release), from diffusers and
transformers classes, the weights from the hub through the model catalog:

- ``UNet2DConditionModel`` from ``musetalkV15/musetalk.json`` (8 input channels: the
  masked crop's latents and the reference crop's; cross-attention on 384-wide audio
  features) with ``musetalkV15/unet.pth``, run at timestep 0;
- ``AutoencoderKL`` ``stabilityai/sd-vae-ft-mse``: a 256x256 crop is 32x32x4 latents;
- ``WhisperModel`` ``openai/whisper-tiny``'s encoder: every layer's output (the embedding
  and four blocks) at 50 frames a second, read in windows of two 25 fps frames before and
  after each frame (10 audio frames x 5 layers), plus MuseTalk's sinusoidal positions.

One difference: MuseTalk draws a sample of each crop's latent distribution; here its mean
is taken (the sample's expectation), so a render is reproducible and a resumed run draws
the same mouths.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.config import Settings
from octavia_cli.devices import resolve_device
from octavia_cli.errors import MissingDependencyError, MissingModelError
from octavia_cli.models.catalog import LIPSYNC_MODELS, HubFiles, hub_snapshot

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000
AUDIO_FPS = 50  # Whisper's encoder frames a second
VIDEO_FPS = 25  # MuseTalk's frame rate
CONTEXT = 2  # 25 fps frames of audio each side of a frame (audio_padding_length_left/right)
SEGMENT_S = 30  # Whisper's window
UNET_CONFIG = "musetalkV15/musetalk.json"
UNET_WEIGHTS = "musetalkV15/unet.pth"
# What lip-sync imports, and the package that installs it (OpenCV finds the faces).
PACKAGES = {"torch": "torch", "diffusers": "diffusers", "transformers": "transformers",
            "cv2": "opencv-python-headless"}  # fmt: skip


class MuseTalk:
    name = "musetalk"
    crop_size = 256
    fps = float(VIDEO_FPS)

    def __init__(
        self, *, unet: str = "", vae: str = "", whisper: str = "", device: str = "auto",
        batch_size: int = 8, offline: bool = False,
    ) -> None:  # fmt: skip
        """``unet``, ``vae``, ``whisper``: local folders in each hub repository's layout;
        empty for the catalog's models (from the hub cache, fetched if allowed)."""
        self.locations = {"musetalk": unet, "sd-vae-ft-mse": vae, "whisper-tiny": whisper}
        self.device_setting = device
        self.batch_size = batch_size
        self.offline = offline
        self._models: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MuseTalk:
        lipsync = settings.lipsync
        return cls(unet=lipsync.unet, vae=lipsync.vae, whisper=lipsync.whisper,
                   device=settings.general.device, batch_size=lipsync.batch_size,
                   offline=settings.offline)  # fmt: skip

    @property
    def device(self) -> str:
        return str(resolve_device(self.device_setting))

    @property
    def half(self) -> bool:
        return self.device.startswith("cuda")

    def describe(self) -> str:
        where = ",".join(
            self.locations[name] or f"{m.repo}@{m.revision[:8]}"
            for name, m in LIPSYNC_MODELS.items()
        )
        return f"musetalk-1.5[{where}]:{'fp16' if self.half else 'fp32'}"

    def check(self) -> None:
        from importlib.util import find_spec

        missing = [package for module, package in PACKAGES.items() if find_spec(module) is None]
        if missing:
            raise MissingDependencyError(
                f"Lip-sync needs {', '.join(missing)}, not installed here.",
                "pip install 'octavia-cli[quality]'",
            )

    # -- models --------------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        given = self.locations[name]
        if given:
            local = Path(given).expanduser()
            if not local.is_dir():
                raise MissingModelError(f"The {name} folder {local} does not exist.",
                                        f"Fix the setting lipsync.{_SETTING[name]}.")  # fmt: skip
            return local
        model: HubFiles = LIPSYNC_MODELS[name]
        return hub_snapshot(
            model.repo,
            model.revision,
            list(model.files),
            offline=self.offline,
            what=f"The lip-sync model {name} ({model.repo})",
            hint="Fetch it once with network access: octavia models pull musetalk",
        )

    def _load(self) -> dict[str, Any]:
        if self._models is not None:
            return self._models
        self.check()
        import torch
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import WhisperFeatureExtractor, WhisperModel

        unet_folder = self._folder("musetalk")
        config = json.loads((unet_folder / UNET_CONFIG).read_text(encoding="utf-8"))
        unet = UNet2DConditionModel.from_config(config)
        state = torch.load(unet_folder / UNET_WEIGHTS, map_location="cpu", weights_only=True)
        unet.load_state_dict(state)
        vae = AutoencoderKL.from_pretrained(self._folder("sd-vae-ft-mse"))
        whisper_folder = self._folder("whisper-tiny")
        encoder = WhisperModel.from_pretrained(whisper_folder).get_encoder()
        features = WhisperFeatureExtractor.from_pretrained(whisper_folder)
        self.use(unet, vae, encoder, features)
        logger.info("loaded MuseTalk 1.5 on %s (%s)", self.device, "fp16" if self.half else "fp32")
        assert self._models is not None
        return self._models

    def use(self, unet: Any, vae: Any, encoder: Any, features: Any) -> None:
        """Run these networks (built elsewhere: ``bench/lipsync_bench.py`` times the
        full-size ones with random weights) on the engine's device."""
        import torch

        device, dtype = self.device, torch.float16 if self.half else torch.float32
        self._models = {
            "unet": unet.to(device, dtype).eval(),
            "vae": vae.to(device, dtype).eval(),
            "encoder": encoder.to(device, dtype).eval(),
            "features": features,
            "positions": _positions(int(encoder.config.d_model), 5000).to(device, dtype),
            "dtype": dtype,
        }

    def close(self) -> None:
        self._models = None

    # -- audio ---------------------------------------------------------------------------

    def audio_features(self, audio_16k: np.ndarray) -> np.ndarray:
        """Every encoder layer's output at 50 frames a second: ``T x layers x width``."""
        import torch

        models = self._load()
        audio = np.asarray(audio_16k, dtype=np.float32)
        length = math.floor(len(audio) / SAMPLE_RATE_HZ * AUDIO_FPS)
        step = SEGMENT_S * SAMPLE_RATE_HZ
        pieces = []
        with torch.inference_mode():
            for begin in range(0, max(len(audio), 1), step):
                mel = models["features"](audio[begin : begin + step],
                                         sampling_rate=SAMPLE_RATE_HZ,
                                         return_tensors="pt").input_features  # fmt: skip
                mel = mel.to(self.device, models["dtype"])
                hidden = models["encoder"](mel, output_hidden_states=True).hidden_states
                pieces.append(torch.stack(hidden, dim=2)[0].float().cpu().numpy())
        return np.concatenate(pieces, axis=0)[:length]

    @staticmethod
    def windows(features: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        """Each frame's audio: the 25 fps frame nearest its time, and MuseTalk's window
        around it (two frames before, two after: 10 audio frames), zeros past either end;
        ``N x (10 * layers) x width``."""
        span = 2 * (2 * CONTEXT + 1)
        ratio = AUDIO_FPS // VIDEO_FPS
        layers, width = features.shape[1:]
        out = np.zeros((len(times_s), span, layers, width), dtype=np.float32)
        for row, time in enumerate(times_s):
            first = round(float(time) * VIDEO_FPS) * ratio - ratio * CONTEXT
            a, b = max(first, 0), min(first + span, len(features))
            if b > a:
                out[row, a - first : b - first] = features[a:b]
        return out.reshape(len(times_s), span * layers, width)

    # -- pictures ------------------------------------------------------------------------

    def render(self, crops: np.ndarray, features: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        import torch

        models = self._load()
        unet, vae, dtype = models["unet"], models["vae"], models["dtype"]
        scale = float(vae.config.scaling_factor)
        audio = self.windows(features, times_s)
        size = self.crop_size
        out = np.empty_like(crops)
        with torch.inference_mode():
            for begin in range(0, len(crops), self.batch_size):
                batch = torch.from_numpy(crops[begin : begin + self.batch_size]).to(self.device)
                pixels = batch.permute(0, 3, 1, 2).to(dtype) / 255.0
                masked = pixels.clone()
                masked[:, :, size // 2 :, :] = 0  # the lower half hidden (MuseTalk's mask)
                latents = torch.cat(
                    [vae.encode(x * 2 - 1).latent_dist.mode() * scale for x in (masked, pixels)],
                    dim=1,
                )
                sound = torch.from_numpy(audio[begin : begin + self.batch_size])
                sound = sound.to(self.device, dtype)
                sound = sound + models["positions"][: sound.shape[1]]
                timestep = torch.zeros(1, device=self.device, dtype=torch.long)
                predicted = unet(latents, timestep, encoder_hidden_states=sound).sample
                image = vae.decode(predicted / scale).sample
                image = (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
                out[begin : begin + len(image)] = np.rint(image * 255).astype(np.uint8)
        return out


_SETTING = {"musetalk": "unet", "sd-vae-ft-mse": "vae", "whisper-tiny": "whisper"}


def _positions(width: int, length: int) -> Any:
    """MuseTalk's ``PositionalEncoding`` (``musetalk/models/unet.py``): sines and cosines
    added to the audio windows."""
    import torch

    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, width, 2).float() * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table
