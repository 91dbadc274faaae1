"""Pick the device a model runs on, without importing torch.

CTranslate2 (faster-whisper) reports CUDA devices itself; engines built on torch will ask
torch, inside their own loaders.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Any

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
    asked if something already imported it), and the freed heap back to the system: glibc
    keeps what a stage's threads freed (a window of audio each) until ``malloc_trim``, so a
    long dub's later stages grew on top of the transcription's peak."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    _trim_heap()


MMAP_THRESHOLD = 1 << 22  # bytes: a block this large is its own mapping


def map_large_blocks() -> None:
    """Ask glibc to give every allocation of 4 MiB or more (audio windows, spectrograms,
    the recogniser's buffers) a mapping of its own, returned to the system when freed.
    By default glibc raises that threshold as large blocks are freed, and then keeps them
    in the heap of the thread that freed them: the 8-minute dub peaked at 840 MiB, 644
    with this. At 1 MiB it peaked at 534 but took 30% more CPU (a fresh mapping for each
    block: page faults); at 16 MiB, 691."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _trim_heap() -> None:
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname (ctypes.util would run ldconfig)
    except OSError:
        return None
    # musl and other C libraries have neither call
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
