"""Lip-sync engines, by name (the Protocol is in ``base``)."""

from __future__ import annotations

from octavia_cli.config import Settings
from octavia_cli.engines.lipsync.base import LIPSYNC_ENGINES, LipSyncEngine
from octavia_cli.errors import ConfigError


def get_lipsync_engine(settings: Settings) -> LipSyncEngine:
    name = settings.lipsync.engine
    if name == "musetalk":
        from octavia_cli.engines.lipsync.musetalk import MuseTalk

        return MuseTalk.from_settings(settings)
    raise ConfigError(
        f"Setting 'lipsync.engine' names an unknown engine '{name}'.",
        f"Known engines: {', '.join(LIPSYNC_ENGINES)}.",
    )
