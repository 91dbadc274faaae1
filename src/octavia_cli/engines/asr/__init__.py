"""Speech recognition engines, by name (the Protocol and result types are in ``base``)."""

from __future__ import annotations

from octavia_cli.config import Settings
from octavia_cli.engines.asr.base import ASR_ENGINES, AsrEngine
from octavia_cli.engines.asr.faster_whisper import FasterWhisperEngine
from octavia_cli.engines.asr.whisperx import WhisperXEngine
from octavia_cli.errors import ConfigError


def get_asr_engine(settings: Settings) -> AsrEngine:
    name = settings.asr.engine
    if name == "faster-whisper":
        return FasterWhisperEngine(settings)
    if name == "whisperx":
        return WhisperXEngine(settings)
    raise ConfigError(
        f"Setting 'asr.engine' names an unknown engine '{name}'.",
        f"Known engines: {', '.join(ASR_ENGINES)}.",
    )
