"""How far what a dubbed line says is from what it should say: the character error rate of
its back-transcription, after one normalisation applied to both texts.

The normalisation (``docs/checks.md``) makes the comparison about speech, not spelling:

- Unicode NFC, then lower case (``str.lower``: ``ß`` stays ``ß``);
- numbers read out as words in the line's language (num2words: ``21`` -> ``veintiuno``,
  ``3,5`` -> ``tres punto cinco`` in Spanish; a language num2words lacks keeps its digits), so
  a recogniser writing ``veintiún`` or ``21`` is judged on what it heard;
- punctuation and symbols become spaces (``l'homme`` -> ``l homme``, ``¿Qué?`` -> ``qué``);
- accents and other marks are kept: ``esta`` for ``está`` is a real error, though a small one
  (one character);
- runs of spaces become one; languages written without spaces between words (Chinese,
  Japanese, Thai...) lose their spaces altogether.

The rate is jiwer's: (substitutions + deletions + insertions) / characters of the reference,
so speech appended to a line can take it past 1.
"""

from __future__ import annotations

import re
import unicodedata

WITHOUT_SPACES = frozenset({"zh", "ja", "th", "lo", "my", "km", "bo"})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_SPACES = re.compile(r"\s+")


def _number_words(number: str, language: str) -> str:
    from num2words import num2words

    # A separator followed by exactly three digits is a thousands separator ("1.000",
    # "1,000"); any other is a decimal one ("3,5", "3.5").
    whole, separator, fraction = re.split(r"([.,])", number, maxsplit=1) + [""] * (
        2 if not any(c in number for c in ".,") else 0
    )
    value: float | int
    if separator and len(fraction) == 3:
        value = int(whole + fraction)
    elif separator:
        value = float(f"{whole}.{fraction}")
    else:
        value = int(whole)
    try:
        return str(num2words(value, lang=language))
    except (NotImplementedError, OverflowError, ValueError, TypeError):
        return number


def normalize(text: str, language: str) -> str:
    """``text`` as it is compared (see the module's docstring)."""
    text = unicodedata.normalize("NFC", text).lower()
    text = _NUMBER.sub(lambda m: f" {_number_words(m.group(0), language)} ", text)
    text = "".join(
        " " if unicodedata.category(c)[0] in "PSC" and not c.isspace() else c for c in text
    )
    text = unicodedata.normalize("NFC", text.lower())  # num2words' own output, lower case
    separator = "" if language in WITHOUT_SPACES else " "
    return _SPACES.sub(separator, text).strip()


def character_error_rate(reference: str, hypothesis: str, language: str) -> float:
    """The character error rate of ``hypothesis`` against ``reference``, both normalised:
    0 for a perfect match, 1 for nothing heard, more when speech was added."""
    import jiwer

    expected, heard = normalize(reference, language), normalize(hypothesis, language)
    if not expected:
        return 0.0 if not heard else 1.0
    if not heard:
        return 1.0
    return float(jiwer.cer(expected, heard))


def word_count(text: str, language: str) -> int:
    """Words of ``text`` as compared (characters, for languages written without spaces)."""
    normalised = normalize(text, language)
    if language in WITHOUT_SPACES:
        return len(normalised)
    return len(normalised.split())
