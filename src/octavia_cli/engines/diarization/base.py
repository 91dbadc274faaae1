"""Speaker diarization: who speaks when.

An engine reads 16 kHz mono speech (the separated vocals when there are any) and returns
speaker turns. Assigning words to speakers and splitting lines at speaker changes is the
diarize stage's job, so every engine gets it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from octavia_cli.config import Settings
from octavia_cli.errors import InputError

DIARIZATION_ENGINES = ("none", "offline", "pyannote")


@dataclass(frozen=True)
class Turn:
    """A stretch of one speaker's speech; turns of different speakers may overlap."""

    start_s: float
    end_s: float
    speaker: str


@dataclass(frozen=True)
class SpeakerCount:
    exactly: int = 0  # 0: unknown, estimate it within [minimum, maximum]
    minimum: int = 1
    maximum: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeakerCount:
        d = settings.diarization
        count = cls(d.speakers, d.min_speakers, d.max_speakers)
        if count.minimum > count.maximum:
            raise InputError(
                f"--min-speakers {count.minimum} is more than --max-speakers {count.maximum}.",
                "Give a range whose minimum is at most its maximum.",
            )
        return count

    def bounds(self, available: int) -> tuple[int, int]:
        """The least and most clusters to consider with ``available`` embeddings."""
        if self.exactly:
            k = min(self.exactly, available)
            return k, k
        return min(self.minimum, available), max(1, min(self.maximum, available))


class DiarizationEngine(Protocol):
    name: str

    def describe(self) -> str:
        """Engine and model (for the manifest and the inputs hash)."""

    def check(self) -> None:
        """Raise if the engine cannot run (a package or a model is missing); load nothing."""

    def diarize(
        self, audio_16k: Path, count: SpeakerCount, on_progress: Callable[[float, float], None]
    ) -> list[Turn]:
        """Speaker turns of the 16 kHz mono WAV ``audio_16k``, labelled in any way (the stage
        renames them S1, S2... in order of first appearance)."""

    def close(self) -> None:
        """Free the models."""
