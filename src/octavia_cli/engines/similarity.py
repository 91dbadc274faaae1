"""Speaker similarity of synthesized speech to its voice's reference, with resemblyzer (a
GE2E speaker encoder whose weights ship in its wheel): cosine similarity of utterance
embeddings, 1.0 for the same voice. Used to catch a cloned line that drifted to another
voice and re-synthesize it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """resemblyzer imports (it pulls in webrtcvad, which needs pkg_resources)."""
    import logging

    try:
        import_resemblyzer()
    except Exception as exc:  # ImportError, or a broken dependency of it
        logging.getLogger(__name__).warning(
            "speaker similarity check off: resemblyzer does not import (%s)", exc
        )
        return False
    return True


def import_resemblyzer() -> Any:
    """``resemblyzer``, imported without the warning its webrtcvad prints about
    pkg_resources on every run (nothing the user can act on)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import resemblyzer

    return resemblyzer


@functools.lru_cache(maxsize=1)
def encoder() -> Any:
    """resemblyzer's GE2E speaker encoder on the CPU (loaded once; the diarizer and the
    similarity check share it)."""
    return import_resemblyzer().VoiceEncoder("cpu", verbose=False)


def embed(path: Path) -> np.ndarray:
    """The speaker embedding of a recording (unit length)."""
    wav = import_resemblyzer().preprocess_wav(str(path))
    if len(wav) < 1600:  # under 0.1 s of speech after trimming: use the file as it is
        import soundfile

        wav, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
        wav = wav.mean(axis=1)
    return encoder().embed_utterance(wav)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-9))


def reference_embedding(reference: Path, cache: Path) -> np.ndarray:
    """The embedding of a voice's reference, computed once and kept beside it."""
    if cache.exists():
        return np.load(cache)
    value = embed(reference)
    np.save(cache, value)
    return value
