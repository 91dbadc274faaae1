"""Speech synthesis engines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from octavia_cli.errors import InputError
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


def check_language(engine: SpeechEngine, language: str) -> None:
    if language not in engine.languages():
        known = ", ".join(sorted(engine.languages())) or "none"
        raise InputError(
            f"The {engine.name} engine has no voice for {language_name(language)} "
            f"('{language}'); it speaks: {known}.",
            "Choose another --to, or another engine with --tts-engine.",
        )
