"""Machine translation engines."""

from __future__ import annotations

from typing import Protocol

from octavia_cli.config import Settings
from octavia_cli.errors import ConfigError


class TranslationEngine(Protocol):
    name: str

    def check_pair(self, source: str, target: str) -> None:
        """Raise, naming the pairs that exist, if ``source``->``target`` is unsupported."""

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate each text; the result has one entry per input, in order."""


def get_translation_engine(settings: Settings) -> TranslationEngine:
    name = settings.mt.engine
    if name == "apertium":
        from octavia_cli.engines.mt.apertium import ApertiumEngine

        return ApertiumEngine()
    raise ConfigError(
        f"Setting 'mt.engine' names an unknown engine '{name}'.", "Known engines: apertium."
    )
