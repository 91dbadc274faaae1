"""Speaker diarization engines, by name (the Protocol and result types are in ``base``)."""

from __future__ import annotations

from octavia_cli.config import Settings
from octavia_cli.engines.diarization.base import DIARIZATION_ENGINES, DiarizationEngine
from octavia_cli.engines.diarization.offline import OfflineDiarizer
from octavia_cli.engines.diarization.pyannote import PyannoteDiarizer
from octavia_cli.errors import ConfigError


def get_diarization_engine(settings: Settings) -> DiarizationEngine | None:
    """The configured engine; None when diarization is off or one speaker is asked for."""
    name = settings.diarization.engine
    if name == "none" or settings.diarization.speakers == 1:
        return None
    if name == "offline":
        return OfflineDiarizer()
    if name == "pyannote":
        return PyannoteDiarizer.from_settings(settings)
    raise ConfigError(
        f"Setting 'diarization.engine' names an unknown engine '{name}'.",
        f"Known engines: {', '.join(DIARIZATION_ENGINES)}.",
    )
