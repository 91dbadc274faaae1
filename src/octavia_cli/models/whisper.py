"""Finding a CTranslate2 Whisper model: shared by the faster-whisper and whisperx engines,
which both run Whisper through faster-whisper.

A model is a faster-whisper size name (``large-v3``, fetched from the hub into the standard
Hugging Face cache unless offline), a local CTranslate2 folder, or ``bundled:NAME``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from octavia_cli.errors import InputError, MissingDependencyError, MissingModelError
from octavia_cli.languages import language_name
from octavia_cli.models.bundled import BUNDLED_PREFIX, bundled_model_path, hub_cache_dir

AUTO = "auto"
DEFAULT_MODELS = {"cuda": "large-v3", "cpu": "small"}


# Pinned commits of the hub's Whisper models (the catalog lists them with these).
WHISPER_REVISIONS = {
    "large-v3": "edaa852ec7e145841d8ffdb056a99866b5f0a478",
    "small": "536b0662742c02347bc0e980a01041f333bce120",
}


def resolve_model_name(spec: str, device: str) -> str:
    """``auto`` is large-v3 on a GPU and small on the CPU (large-v3 runs about 10x slower
    than real time on a laptop CPU; small is the best that stays near real time)."""
    return DEFAULT_MODELS.get(device.partition(":")[0], "small") if spec == AUTO else spec


def locate_whisper_model(spec: str, cache_dir: str, offline: bool) -> str:
    """A local folder for the model, or its hub name when it may still be downloaded.

    Raises:
        MissingModelError: the folder is not a model, or the model is not cached and
            downloads are off.
    """
    if spec.startswith(BUNDLED_PREFIX):
        return str(bundled_model_path(spec[len(BUNDLED_PREFIX) :], cache_dir))
    local = Path(spec).expanduser()
    if local.is_dir():
        if not (local / "model.bin").exists():
            raise MissingModelError(
                f"{local} is not a CTranslate2 Whisper model (no model.bin).",
                "Point asr.model at a folder made by ct2-transformers-converter.",
            )
        return str(local)
    if "/" in spec and (spec.startswith((".", "~", "/")) or local.suffix):
        raise MissingModelError(
            f"The model folder {spec} does not exist.", "Check the path in asr.model."
        )
    try:
        from faster_whisper.utils import available_models, download_model
    except ImportError as exc:
        raise MissingDependencyError(
            "faster-whisper is not installed.", "pip install faster-whisper"
        ) from exc
    if "/" not in spec and spec not in available_models():
        raise MissingModelError(
            f"'{spec}' is not a Whisper model name.",
            f"Use one of {', '.join(available_models())}, a hub id or a local folder.",
        )
    revision = whisper_revision(spec)
    try:
        return download_model(
            spec, local_files_only=True, cache_dir=str(hub_cache_dir()), revision=revision
        )
    except Exception:
        if offline:
            raise MissingModelError(
                f"The Whisper model '{spec}' is not in the local cache and downloads are "
                "off (offline).",
                "Fetch it once on a machine with network access (it is cached in "
                f"{hub_cache_dir()}), or use --preset offline.",
            ) from None
        if revision is None:
            return spec  # WhisperModel downloads it into the cache
        return download_model(spec, cache_dir=str(hub_cache_dir()), revision=revision)


def whisper_revision(name: str) -> str | None:
    """The pinned commit of a Whisper model in the catalog, if it has one."""
    return WHISPER_REVISIONS.get(name)


def check_whisper_language(location: str, spec: str, language: str | None) -> None:
    """Raise if Whisper, or this (English-only) model, cannot transcribe ``language``."""
    if language is None:
        return
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    if language not in _LANGUAGE_CODES:
        raise InputError(f"Whisper cannot transcribe {language_name(language)} ('{language}').")
    if Path(location).is_dir() and english_only(Path(location)) and language != "en":
        raise InputError(
            f"The Whisper model {spec} is English-only and cannot transcribe "
            f"{language_name(language)}.",
            "Use a multilingual model (asr.model), e.g. bundled:whisper-base.",
        )


def english_only(folder: Path) -> bool:
    """English-only Whisper models (``*.en``) have a vocabulary of 51,864 tokens; the
    multilingual ones have 51,865 (51,866 for large-v3). Read it without loading weights:
    CTranslate2 writes ``vocabulary.json`` (a list; the Systran large-v3 and later
    conversions), older conversions ``vocabulary.txt`` (a token a line)."""
    import json

    try:
        with open(folder / "vocabulary.txt", "rb") as handle:
            return sum(1 for _ in handle) < 51865
    except OSError:
        pass
    try:
        tokens = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(tokens, list) and len(tokens) < 51865


def load_options(location: str, offline: bool) -> dict[str, object]:
    """Where a ``WhisperModel`` may download to, and whether it may."""
    local = Path(location).is_dir()
    return {
        "download_root": None if local else str(hub_cache_dir()),
        "local_files_only": offline,
    }


@contextlib.contextmanager
def download_errors(location: str, name: str) -> Iterator[None]:
    """Turn a failed download of Whisper ``name`` into one sentence (a local folder's own
    errors pass through: they are not about the network)."""
    try:
        yield
    except Exception as exc:
        if Path(location).is_dir():
            raise
        raise MissingModelError(
            f"The Whisper model '{name}' could not be downloaded: {exc}.",
            "Check the network, or use --preset offline.",
        ) from None


# ``auto`` on a GPU: the first of these the GPU runs (CTranslate2 refuses float16 on cards
# without fast half precision, compute capability below 7.0: a GTX 10x0 gets int8_float32,
# older cards float32).
CUDA_COMPUTE_TYPES = ("float16", "int8_float32", "float32")


def compute_type_for(setting: str, device: str, index: int = 0) -> str:
    """``auto`` is int8 on the CPU and, on CUDA GPU ``index``, float16 where CTranslate2
    supports it there, else int8_float32, else float32."""
    if setting != "auto":
        return setting
    if not device.startswith("cuda"):
        return "int8"
    try:
        import ctranslate2

        supported = set(ctranslate2.get_supported_compute_types("cuda", index))
    except Exception:  # no CUDA runtime for CTranslate2: loading will say so
        return "float16"
    return next((c for c in CUDA_COMPUTE_TYPES if c in supported), "float32")


def detect_language(
    model: object, audio_16k: object, *, vad_filter: bool = True
) -> tuple[str, float]:
    """Language of the first speech in ``audio_16k`` with a faster-whisper ``WhisperModel``
    (``vad_filter``: its own VAD finds the speech first)."""
    language, probability, _ = model.detect_language(  # type: ignore[attr-defined]
        audio_16k, vad_filter=vad_filter
    )
    return language, float(probability)
