"""Speech synthesis engines, by name (the Protocol and result types are in ``base``)."""

from __future__ import annotations

from octavia_cli.config import Settings
from octavia_cli.engines.tts.base import SpeechEngine
from octavia_cli.engines.tts.espeak import EspeakEngine
from octavia_cli.engines.tts.piper import PiperEngine
from octavia_cli.engines.tts.xtts import XttsEngine
from octavia_cli.errors import ConfigError

TTS_ENGINES = ("auto", "espeak-ng", "piper", "xtts")


def speech_engine_name(settings: Settings, language: str) -> str:
    """Which engine ``tts.engine`` means for ``language``, without building it: ``auto``
    prefers a Piper voice for the language, falling back to espeak-ng, which speaks about a
    hundred languages."""
    name = settings.tts.engine
    if name == "auto":
        piper = PiperEngine(settings.tts.voice if settings.tts.voice.endswith(".onnx") else "")
        return "piper" if language in piper.languages() else "espeak-ng"
    if name not in TTS_ENGINES:
        raise ConfigError(
            f"Setting 'tts.engine' names an unknown engine '{name}'.",
            f"Known engines: {', '.join(TTS_ENGINES)}.",
        )
    return name


def get_speech_engine(settings: Settings, language: str) -> SpeechEngine:
    """The engine that speaks ``language`` by the settings (see :func:`speech_engine_name`)."""
    name = speech_engine_name(settings, language)
    if name == "espeak-ng":
        return EspeakEngine()
    if name == "piper":
        voice = settings.tts.voice
        return PiperEngine(voice if settings.tts.engine == "piper" or voice.endswith(".onnx")
                           else "")  # fmt: skip

    engine = XttsEngine(settings)
    engine.check()
    return engine
