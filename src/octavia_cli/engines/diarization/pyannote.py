"""pyannote.audio 4 speaker diarization (``pyannote/speaker-diarization-community-1`` by
default): powerset segmentation, WeSpeaker embeddings and VBx clustering with a PLDA.

The pipeline is gated on the Hugging Face hub: a user accepts its conditions on the model
page once, and gives an access token (``diarization.hf_token``, or ``HF_TOKEN``) for the
first download; ``diarization.accept_terms`` records that the conditions were accepted and
is checked before any stage runs. Once cached, no token or network is needed.

The audio is handed to the pipeline as a waveform in memory (16 kHz mono), so no decoder
library is involved. The turns returned are the pipeline's full diarization, overlaps
included; the stage assigns words with them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from octavia_cli.config import ModelSettings, Settings, apply_library_environment
from octavia_cli.devices import release_memory, resolve_device
from octavia_cli.engines.diarization.base import SpeakerCount, Turn
from octavia_cli.engines.residency import TorchParking
from octavia_cli.errors import ConfigError, MissingDependencyError, MissingModelError

logger = logging.getLogger(__name__)

DEFAULT_PIPELINE = "pyannote/speaker-diarization-community-1"


def _import() -> Any:
    try:
        import torch
        from pyannote.audio import Pipeline  # noqa: F401
    except Exception as exc:
        raise MissingDependencyError(
            f"pyannote.audio is not installed or does not import ({type(exc).__name__}).",
            "Install it with: pip install 'octavia-cli[quality]', or use --diarization offline.",
        ) from None
    return torch


class PyannoteDiarizer(TorchParking):
    name = "pyannote"

    def __init__(
        self,
        model: str = DEFAULT_PIPELINE,
        device: str = "cpu",
        *,
        token: str = "",
        accept_terms: bool = False,
        cache_dir: str | None = None,
        pipeline: Any = None,
        models: ModelSettings | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.token = token or os.environ.get("HF_TOKEN", "")
        self.accept_terms = accept_terms
        self.cache_dir = cache_dir
        self._pipeline = pipeline  # given: a pipeline built in memory (tests, or a caller's own)
        self.models = models  # None: the config file's and environment's

    @classmethod
    def from_settings(cls, settings: Settings) -> PyannoteDiarizer:

        d = settings.diarization
        return cls(
            d.model,
            resolve_device(settings.general.device),
            token=d.hf_token,
            accept_terms=d.accept_terms,
            models=settings.models,
        )

    def describe(self) -> str:
        return f"pyannote:{self.model}"

    def check(self) -> None:
        if self._pipeline is not None:
            return
        _import()
        if not Path(self.model).is_dir() and not self.accept_terms:
            raise ConfigError(
                f"The pyannote pipeline {self.model} is gated: its conditions must be "
                "accepted on its hub page before use.",
                f"Accept them at https://hf.co/{self.model}, then run: octavia config set "
                "diarization.accept_terms true (or use --diarization offline).",
            )

    # -- the pipeline ------------------------------------------------------------------

    def pipeline(self) -> Any:
        apply_library_environment(self.models)  # pyannote asks at every run: metrics off
        self.to_device()  # back from CPU memory, if it was parked there
        if self._pipeline is None:
            self._pipeline = self._load()
        return self._pipeline

    def _load(self) -> Any:
        torch = _import()
        from pyannote.audio import Pipeline

        try:
            # pyannote prints its own advice on a failed download to stdout, which belongs
            # to the user's pipe (--json): the error below says it instead.
            with contextlib.redirect_stdout(io.StringIO()):
                pipeline = Pipeline.from_pretrained(
                    self.model, token=self.token or None, cache_dir=self._cache_dir()
                )
        except Exception as exc:
            raise MissingModelError(
                f"The pyannote pipeline {self.model} is not on this machine and could not be "
                f"fetched ({type(exc).__name__}).",
                "Accept its conditions on the hub, set diarization.hf_token, and fetch it "
                f"where there is network: octavia models pull {self.model}",
            ) from None
        if pipeline is None:  # pyannote returns None when the gated download is refused
            raise MissingModelError(
                f"The hub refused to give the gated pipeline {self.model}.",
                f"Accept its conditions at https://hf.co/{self.model} and check "
                "diarization.hf_token.",
            )
        if self.device.startswith("cuda"):
            pipeline.to(torch.device(self.device))
        return pipeline

    def _cache_dir(self) -> str:
        """Where the hub pipeline is read from: the hub cache the catalog and ``octavia
        models pull`` use (left to itself, pyannote takes huggingface_hub's default, fixed
        when that library was first imported)."""
        from octavia_cli.models.bundled import hub_cache_dir

        return self.cache_dir or str(hub_cache_dir())

    def _resident(self) -> tuple[Any, str]:
        return self._pipeline, self.device

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline = None
            release_memory()

    # -- diarization -------------------------------------------------------------------

    def diarize(
        self, audio_16k: Path, count: SpeakerCount, on_progress: Callable[[float, float], None]
    ) -> list[Turn]:
        import soundfile

        torch = _import()
        pipeline = self.pipeline()
        audio, rate = soundfile.read(str(audio_16k), dtype="float32", always_2d=True)
        total = len(audio) / rate
        waveform = torch.from_numpy(audio.mean(axis=1))[None, :]
        kwargs: dict[str, int] = {}
        if count.exactly:
            kwargs["num_speakers"] = count.exactly
        else:
            kwargs["min_speakers"] = count.minimum
            kwargs["max_speakers"] = count.maximum

        def hook(step: str, *args: Any, completed: int | None = None,
                 total: int | None = None, **_: Any) -> None:  # fmt: skip
            if completed is not None and total:
                on_progress(total_s * completed / total, total_s)

        total_s = total
        output = pipeline({"waveform": waveform, "sample_rate": rate}, hook=hook, **kwargs)
        annotation = getattr(output, "speaker_diarization", output)
        # Clipped to the audio: a file shorter than the segmentation window (10 s) is
        # padded to it, and pyannote reports turns over the whole window.
        turns = [
            Turn(round(max(segment.start, 0.0), 3), round(min(segment.end, total), 3), str(label))
            for segment, _, label in annotation.itertracks(yield_label=True)
            if min(segment.end, total) > max(segment.start, 0.0)
        ]
        on_progress(total, total)
        return sorted(turns, key=lambda t: (t.start_s, t.end_s))
