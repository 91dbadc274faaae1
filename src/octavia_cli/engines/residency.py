"""Moving a loaded model between the GPU and CPU memory.

A ``serve`` worker or a batch keeps its engines between stages and jobs; on a GPU, the
runner parks an engine whose stage is over (``to_cpu()``) so that the card holds one
stage's models at a time, and brings it back (``to_device()``) when its stage next runs:
a copy in host memory instead of a load from disk. torch modules move with ``.to()``;
CTranslate2 models (faster-whisper, whisperx) with ``unload_model(to_cpu=True)`` and
``load_model()``.
"""

from __future__ import annotations

from typing import Any

from octavia_cli.devices import release_memory


def torch_to(module: Any, device: str) -> None:
    """Move a torch module (or a pyannote pipeline) to ``device``; nothing if it is None."""
    if module is None:
        return
    import torch

    module.to(torch.device(device))
    if device == "cpu":
        release_memory()


class TorchParking:
    """``to_cpu`` and ``to_device`` for an engine whose loaded model is one torch module
    (or a pyannote pipeline): parked in CPU memory, it goes back to its device when the
    engine next works (its loader calls ``to_device``)."""

    _parked = False

    def _resident(self) -> tuple[Any, str]:
        """The loaded model (None before it loads) and the device it runs on."""
        raise NotImplementedError

    def to_cpu(self) -> None:
        model, _ = self._resident()
        if model is not None:
            torch_to(model, "cpu")
            self._parked = True

    def to_device(self) -> None:
        if self._parked:
            model, device = self._resident()
            torch_to(model, device)
            self._parked = False


def ctranslate2_to_cpu(model: Any) -> None:
    """Unload a CTranslate2 model's weights to host memory (nothing if it is None)."""
    if model is not None and model.model_is_loaded:
        model.unload_model(to_cpu=True)
        release_memory()


def ctranslate2_back(model: Any) -> None:
    """Load a CTranslate2 model's weights back where it was built to run."""
    if model is not None and not model.model_is_loaded:
        model.load_model()
