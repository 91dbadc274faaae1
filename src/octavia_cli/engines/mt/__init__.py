"""Machine translation engines: ``apertium`` (rule-based, offline) and ``transformers``
(OPUS-MT, M2M100, NLLB-200): the factory (the Protocol and result types are in ``base``)."""

from __future__ import annotations

from octavia_cli.config import Settings
from octavia_cli.engines.mt.apertium import ApertiumEngine
from octavia_cli.engines.mt.base import MT_ENGINES, TranslationEngine
from octavia_cli.engines.mt.transformers import TransformersEngine
from octavia_cli.errors import ConfigError


def get_translation_engine(settings: Settings) -> TranslationEngine:
    name = settings.mt.engine
    if name == "apertium":
        return ApertiumEngine()
    if name == "transformers":
        return TransformersEngine(settings)
    raise ConfigError(
        f"Setting 'mt.engine' names an unknown engine '{name}'.",
        f"Known engines: {', '.join(MT_ENGINES)}.",
    )
