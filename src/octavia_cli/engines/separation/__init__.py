"""Source separation engines, by name (the Protocol and result types are in ``base``)."""

from __future__ import annotations

from octavia_cli.config import Settings
from octavia_cli.engines.separation.base import SEPARATION_ENGINES, SeparationEngine
from octavia_cli.engines.separation.demucs import DemucsSeparator
from octavia_cli.errors import ConfigError


def get_separation_engine(settings: Settings) -> SeparationEngine | None:
    """The configured engine, or None when separation is off."""
    name = settings.separation.engine
    if name == "none":
        return None
    if name == "demucs":
        return DemucsSeparator.from_settings(settings)
    raise ConfigError(
        f"Setting 'separation.engine' names an unknown engine '{name}'.",
        f"Known engines: {', '.join(SEPARATION_ENGINES)}.",
    )
