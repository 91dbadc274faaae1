"""Length control: pick a translation that can be spoken in its line's time slot.

The spoken duration of a text is estimated from its count of letters and digits at the rate
of the voice that will speak it, measured by synthesizing a few of the project's own
translations with that engine and voice (so the estimate is calibrated for espeak-ng,
Piper or XTTS alike). When the engine's best translation would need more speed-up than
``fit.max_speed``, more candidates are considered, most faithful first: the engine's n-best
list, then translations of the source with filler words removed ("you know", "basically"),
and the first that fits is kept; if none fits, the shortest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Words and phrases that carry no content, by source language. Removing them changes no
# fact in the line, so a translation of the condensed line is still faithful.
FILLERS: dict[str, tuple[str, ...]] = {
    "en": (
        "you know", "i mean", "kind of", "sort of", "basically", "literally", "honestly",
        "um", "uh", "erm", "to be honest", "as a matter of fact", "at the end of the day",
    ),
    "es": ("o sea", "básicamente", "la verdad es que", "eh"),
    "fr": ("en fait", "euh", "franchement", "pour être honnête"),
    "de": ("ehrlich gesagt", "sozusagen", "quasi", "äh", "ähm"),
}  # fmt: skip
# Openers that only take a breath when a comma follows them ("Well, ...", "So, ...").
OPENERS: dict[str, tuple[str, ...]] = {
    "en": ("well", "so", "okay", "ok", "now", "look", "right"),
    "es": ("bueno", "pues", "vale", "mira"),
    "fr": ("bon", "alors", "ben", "bref"),
    "de": ("also", "na ja", "gut", "naja"),
}
_REPEATED_WORD = re.compile(r"\b(\w+)(\s*,?\s+\1\b)+", re.IGNORECASE)


def spoken_characters(text: str) -> int:
    """Letters and digits: what takes time to say (spaces and punctuation mostly do not)."""
    return sum(1 for char in text if char.isalnum())


def estimate_s(text: str, chars_per_s: float) -> float:
    return spoken_characters(text) / chars_per_s if chars_per_s > 0 else 0.0


def condense(text: str, language: str) -> str | None:
    """``text`` without filler words and stutters ("very very"), or None if it has none."""
    condensed = _REPEATED_WORD.sub(r"\1", text)
    openers = "|".join(re.escape(o) for o in OPENERS.get(language, ()))
    if openers:
        condensed = re.sub(rf"^\s*(?:(?:{openers})\s*,\s*)+", "", condensed, flags=re.IGNORECASE)
    for filler in sorted(FILLERS.get(language, ()), key=len, reverse=True):
        pattern = re.compile(rf",?\s*(?<!\w){re.escape(filler)}(?!\w)\s*,?", re.IGNORECASE)
        condensed = pattern.sub(" ", condensed)
    condensed = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(condensed.split()))
    condensed = re.sub(r"^[,;:\s]+", "", condensed)
    if not spoken_characters(condensed) or condensed == " ".join(text.split()):
        return None
    return condensed[0].upper() + condensed[1:] if text[:1].isupper() else condensed


@dataclass(frozen=True)
class Choice:
    text: str
    index: int  # position in the candidate list (0: the engine's best)
    estimated_s: float
    ratio: float  # estimated duration / slot
    condensed: bool


def choose(
    candidates: Sequence[tuple[str, bool]],
    ratio: Callable[[str], float],
    chars_per_s: float,
    max_speed: float,
) -> Choice:
    """The first candidate (``(text, condensed)``, most faithful first) whose ``ratio``
    (estimated duration over its slot; for text spread over several lines, the worst line's)
    is at most ``max_speed``; else the one with the lowest ratio."""
    choices = []
    for index, (text, condensed) in enumerate(candidates):
        choice = Choice(
            text, index, round(estimate_s(text, chars_per_s), 3), round(ratio(text), 3),
            condensed,
        )  # fmt: skip
        if choice.ratio <= max_speed:
            return choice
        choices.append(choice)
    return min(choices, key=lambda c: (c.ratio, c.index))


def slot_ratio(slot_s: float, chars_per_s: float) -> Callable[[str], float]:
    """Estimated duration over one slot."""
    return lambda text: estimate_s(text, chars_per_s) / slot_s if slot_s > 0 else float("inf")


def calibration_texts(texts: Sequence[str], budget_chars: int = 400) -> list[str]:
    """The longest few texts, up to ``budget_chars`` letters in all: long lines give the
    steadiest rate, and a few are enough."""
    chosen: list[str] = []
    total = 0
    for text in sorted(texts, key=spoken_characters, reverse=True):
        if total >= budget_chars:
            break
        if spoken_characters(text) >= 8:
            chosen.append(text)
            total += spoken_characters(text)
    return chosen
