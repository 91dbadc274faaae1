"""Machine translation engines: ``apertium`` (rule-based, offline) and ``transformers``
(OPUS-MT, M2M100, NLLB-200)."""

from __future__ import annotations

from typing import Protocol

MT_ENGINES = ("apertium", "transformers")


class TranslationEngine(Protocol):
    name: str

    def describe(self) -> str:
        """Engine and model, for the translations' hashes (a change re-translates)."""

    def supported_pairs(self) -> list[str]:
        """The pairs it can translate, for messages."""

    def check_pair(self, source: str, target: str) -> None:
        """Raise, naming the pairs that exist, if ``source``->``target`` is unsupported or
        its model is unavailable; load nothing."""

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate each text; the result has one entry per input, in order."""

    def candidates(self, texts: list[str], source: str, target: str, count: int) -> list[list[str]]:
        """Up to ``count`` translations of each text, best first (engines without n-best
        give one)."""

    def close(self) -> None:
        """Free the models."""
