"""Pick the device a model runs on, without importing torch.

CTranslate2 (faster-whisper) reports CUDA devices itself; engines built on torch will ask
torch, inside their own loaders.
"""

from __future__ import annotations

from enum import StrEnum

from octavia_cli.errors import InputError


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


def cuda_device_count() -> int:
    try:
        import ctranslate2
    except ImportError:
        return 0
    return ctranslate2.get_cuda_device_count()


def cuda_available() -> bool:
    return cuda_device_count() > 0


def split_device(device: str) -> tuple[str, int]:
    """``cuda:1`` -> ``("cuda", 1)``; ``cpu`` -> ``("cpu", 0)`` (CTranslate2 wants both)."""
    kind, _, index = device.partition(":")
    return kind, int(index or 0)


def resolve_device(setting: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``; ``cuda:N`` names one
    GPU (``octavia serve`` gives each worker its own)."""
    if setting == Device.AUTO:
        return Device.CUDA.value if cuda_available() else Device.CPU.value
    if setting.startswith("cuda:"):
        count = cuda_device_count()
        if split_device(setting)[1] >= count:
            raise InputError(
                f"--device {setting} was asked for, but this machine has {count} CUDA GPU(s).",
                "Use --device cuda (the first GPU), or check nvidia-smi.",
            )
        return setting
    if setting == Device.CUDA and not cuda_available():
        raise InputError(
            "--device cuda was asked for, but no CUDA GPU is usable here.",
            "Use --device cpu, or check the driver with nvidia-smi.",
        )
    return setting


def release_memory() -> None:
    """Collect dropped models and hand their CUDA memory back to the driver (torch is only
    asked if something already imported it)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
