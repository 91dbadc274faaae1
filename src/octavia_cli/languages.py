"""Language codes: ISO 639-1 on the command line, each engine maps them to its own.

We use ``langcodes`` (with its ``language_data``) rather than a table of our own: it knows
every ISO 639 code, the alpha-3 forms that Apertium (``spa``) and container metadata
(ISO 639-2/B, ``ger``) want, and English names for messages.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable

from octavia_cli.errors import InputError

logger = logging.getLogger(__name__)

_CODE = re.compile(r"^[a-z]{2}$")


def normalize_targets(codes: Iterable[str]) -> tuple[str, ...]:
    """Target languages as given on the command line or in a job: each normalised
    (:func:`normalize_language`: ``ES`` -> ``es``, ``es-MX`` -> ``es``, with a note for a
    regional tag) and duplicates dropped, in their first order. Done once, where the
    languages enter, so outputs, plans and charges all see the same codes.

    Raises:
        InputError: one of them is not a language code.
    """
    targets: dict[str, None] = {}
    for code in codes:
        language = normalize_language(code)
        if regional_tag(code):
            logger.info(
                "'%s': regional variants are not supported yet; using %s (%s).",
                code.strip(), language, language_name(language),
            )  # fmt: skip
        targets.setdefault(language, None)
    return tuple(targets)


def regional_tag(code: str) -> str | None:
    """The region or script part of a tag (``MX`` of ``es-MX``, ``Hans`` of ``zh_Hans``)."""
    _, _, rest = code.strip().replace("_", "-").partition("-")
    return rest or None


@functools.lru_cache(maxsize=256)
def normalize_language(code: str) -> str:
    """Return ``code`` as a lower-case ISO 639-1 code, or raise if it is not one.

    Raises:
        InputError: the code is not a known two-letter ISO 639-1 language.
    """
    import langcodes

    cleaned = code.strip().lower().replace("_", "-")
    primary = cleaned.split("-", 1)[0]
    if not _CODE.match(primary):
        meant = _two_letter_code_for(code.strip())
        raise InputError(
            f"'{code}' is not a language code.",
            f"Use the two-letter ISO 639-1 code: {meant} ({language_name(meant)})."
            if meant
            else "Use a two-letter ISO 639-1 code such as en, es, fr or de.",
        )
    language = langcodes.Language.get(primary)
    try:
        language.to_alpha3()
    except LookupError:
        raise InputError(
            f"'{code}' is not a known ISO 639-1 language code.",
            "Use a two-letter code such as en, es, fr or de.",
        ) from None
    return language.language or primary


def _two_letter_code_for(text: str) -> str | None:
    """The ISO 639-1 code a three-letter code (``spa``, ``ger``) or a language's name
    (``Spanish``, ``español``) stands for, if it has one."""
    import langcodes

    for lookup in (langcodes.Language.get, langcodes.find):
        try:
            language = lookup(text).language
        except (LookupError, ValueError, langcodes.tag_parser.LanguageTagError):
            continue
        if language and _CODE.match(language):
            return language
    return None


def language_name(code: str) -> str:
    """English name of an ISO 639-1 code (``es`` -> ``Spanish``)."""
    import langcodes

    return langcodes.Language.get(code).display_name()


def alpha3(code: str, *, bibliographic: bool = False) -> str:
    """ISO 639-2/3 code: terminological by default (``deu``), or bibliographic (``ger``)."""
    import langcodes

    return langcodes.Language.get(code).to_alpha3(variant="B" if bibliographic else "T")
