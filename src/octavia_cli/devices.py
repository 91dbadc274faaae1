"""Pick the device a model runs on, without importing torch.

CTranslate2 (faster-whisper) reports CUDA devices itself; engines built on torch will ask
torch, inside their own loaders.
"""

from __future__ import annotations

from octavia_cli.config import Device
from octavia_cli.errors import InputError


def cuda_available() -> bool:
    try:
        import ctranslate2
    except ImportError:
        return False
    return ctranslate2.get_cuda_device_count() > 0


def resolve_device(setting: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``."""
    if setting == Device.AUTO:
        return Device.CUDA.value if cuda_available() else Device.CPU.value
    if setting == Device.CUDA and not cuda_available():
        raise InputError(
            "--device cuda was asked for, but no CUDA GPU is usable here.",
            "Use --device cpu, or check the driver with nvidia-smi.",
        )
    return setting
