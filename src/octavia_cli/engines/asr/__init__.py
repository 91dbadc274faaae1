"""Speech recognition engines."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from octavia_cli.config import Settings
from octavia_cli.errors import ConfigError
from octavia_cli.model import Transcript
from octavia_cli.progress import StageReporter


class AsrEngine(Protocol):
    name: str

    def check(self, language: str | None) -> None:
        """Raise if the model is unavailable or cannot handle ``language``; load nothing."""

    def transcribe(
        self, audio_16k_mono: Path, language: str | None, reporter: StageReporter
    ) -> Transcript:
        """Transcribe a 16 kHz mono WAV into dubbing lines with word times."""

    def describe(self) -> str:
        """Engine and model, for the manifest and the inputs hash."""

    def close(self) -> None:
        """Free the model (and the GPU memory it holds)."""


def get_asr_engine(settings: Settings) -> AsrEngine:
    name = settings.asr.engine
    if name == "faster-whisper":
        from octavia_cli.engines.asr.faster_whisper import FasterWhisperEngine

        return FasterWhisperEngine(settings)
    raise ConfigError(
        f"Setting 'asr.engine' names an unknown engine '{name}'.", "Known engines: faster-whisper."
    )
