"""Speech recognition engines.

An engine turns 16 kHz mono audio into timed words; splitting them into dubbing lines,
snapping line edges to the speech and walking a long file in bounded chunks are the
transcribe stage's job, so every engine gets them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from octavia_cli.project.records import Word

ASR_ENGINES = ("faster-whisper", "whisperx")


@dataclass
class Recognition:
    """What an engine heard in one stretch of audio; times are seconds from its start."""

    language: str
    language_probability: float
    words: list[Word] = field(default_factory=list)


class AsrEngine(Protocol):
    name: str

    def describe(self) -> str:
        """Engine and model, for the manifest and the inputs hash."""

    def check(self, language: str | None) -> None:
        """Raise if a model is unavailable or cannot handle ``language``; load nothing."""

    def detect_language(self, audio_16k: np.ndarray) -> tuple[str, float]:
        """The spoken language of ``audio_16k`` and its probability."""

    def recognize(
        self, audio_16k: np.ndarray, language: str, on_progress: Callable[[float], None]
    ) -> Recognition:
        """Timed words of ``audio_16k`` (mono float32 at 16 kHz) spoken in ``language``;
        ``on_progress`` gets the seconds of audio done so far."""

    def close(self) -> None:
        """Free the models (and the GPU memory they hold)."""
