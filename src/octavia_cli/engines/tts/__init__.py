"""Speech synthesis engines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from octavia_cli.config import Settings
from octavia_cli.errors import ConfigError, InputError
from octavia_cli.languages import language_name


@dataclass(frozen=True)
class SynthesisResult:
    duration_s: float
    sample_rate_hz: int


class SpeechEngine(Protocol):
    name: str

    def languages(self) -> set[str]:
        """ISO 639-1 codes this engine has a voice for."""

    def voice_for(self, language: str, requested: str = "") -> str:
        """The voice id that will speak ``language`` (``requested`` if given and valid)."""

    def synthesize(
        self, text: str, language: str, voice: str, destination: Path
    ) -> SynthesisResult:
        """Speak ``text`` into a mono WAV file at ``destination``."""


def get_speech_engine(settings: Settings, language: str) -> SpeechEngine:
    """The engine named by ``tts.engine``; ``auto`` prefers a Piper voice for the language,
    falling back to espeak-ng, which speaks about a hundred languages."""
    from octavia_cli.engines.tts.espeak import EspeakEngine
    from octavia_cli.engines.tts.piper import PiperEngine

    name = settings.tts.engine
    if name == "auto":
        piper = PiperEngine(settings.tts.voice if settings.tts.voice.endswith(".onnx") else "")
        if language in piper.languages():
            return piper
        return EspeakEngine()
    if name == "espeak-ng":
        return EspeakEngine()
    if name == "piper":
        return PiperEngine(settings.tts.voice)
    if name == "xtts":
        from octavia_cli.engines.tts.xtts import XttsEngine

        engine = XttsEngine(settings)
        engine.check()
        return engine
    raise ConfigError(
        f"Setting 'tts.engine' names an unknown engine '{name}'.",
        "Known engines: auto, espeak-ng, piper, xtts.",
    )


def check_language(engine: SpeechEngine, language: str) -> None:
    if language not in engine.languages():
        known = ", ".join(sorted(engine.languages())) or "none"
        raise InputError(
            f"The {engine.name} engine has no voice for {language_name(language)} "
            f"('{language}'); it speaks: {known}.",
            "Choose another --to, or another engine with --tts-engine.",
        )
