"""Source separation: speech apart from music and ambience.

An engine reads the project's source audio and writes two files at the source's own sample
rate and channel layout: the voices, and everything else (the background the dub is mixed
over). Engines walk the file in bounded blocks, so memory does not grow with its length.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

SEPARATION_ENGINES = ("none", "demucs")


class SeparationEngine(Protocol):
    name: str

    def describe(self) -> str:
        """Engine, model and the options that change its output (for the inputs hash)."""

    def separate(
        self,
        source: Path,
        vocals: Path,
        background: Path,
        on_progress: Callable[[float, float], None],
    ) -> None:
        """Write ``vocals`` and ``background`` (WAV, ``source``'s rate and channels);
        ``on_progress(done_s, total_s)`` is called as blocks finish."""

    def close(self) -> None:
        """Free the model (and the GPU memory it holds)."""
