"""Source separation: speech apart from music and ambience.

An engine reads the project's source audio and writes two files at the source's own sample
rate and channel layout: the voices, and everything else (the background the dub is mixed
over). Engines walk the file in bounded blocks, so memory does not grow with its length.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from octavia_cli.config import Settings
from octavia_cli.errors import ConfigError

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


def get_separation_engine(settings: Settings) -> SeparationEngine | None:
    """The configured engine, or None when separation is off."""
    name = settings.separation.engine
    if name == "none":
        return None
    if name == "demucs":
        from octavia_cli.engines.separation.demucs import DemucsSeparator

        return DemucsSeparator.from_settings(settings)
    raise ConfigError(
        f"Setting 'separation.engine' names an unknown engine '{name}'.",
        f"Known engines: {', '.join(SEPARATION_ENGINES)}.",
    )
