"""Glossaries: terms that must be translated a fixed way, or kept as they are (names).

A glossary is a CSV file with a ``source,target`` header, or a TOML file with a ``[terms]``
table (``"Octavia" = ""``); an empty target means "keep the source term". Terms match whole
words, case-insensitively.

How a term is enforced depends on the engine: Apertium passes unknown words through, so
the term is replaced by a placeholder before translation and by its target after; a neural
engine is asked for its n best translations and the best one that keeps every term wins,
else the source term it copied is replaced. Every output is then verified, and the terms
the engine would not keep are reported.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from octavia_cli.errors import InputError
from octavia_cli.files import atomic_write_bytes
from octavia_cli.project.records import stable_hash


@dataclass(frozen=True)
class Term:
    source: str
    target: str  # "" keeps the source term as it is

    @property
    def wanted(self) -> str:
        return self.target or self.source


@dataclass(frozen=True)
class Glossary:
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    def to_dict(self) -> dict[str, str]:
        """source -> target ("" keeps the term): how a glossary travels to a server."""
        return {t.source: t.target for t in self.terms}

    def write_csv(self, path: Path) -> None:
        """Write the glossary as a CSV file :func:`load_glossary` reads back (atomically)."""
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["source", "target"])
        writer.writerows((t.source, t.target) for t in self.terms)
        atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))

    @property
    def digest(self) -> str:
        return stable_hash([(t.source, t.target) for t in self.terms]) if self.terms else ""

    def applicable(self, text: str) -> list[Term]:
        """Terms whose source form occurs in ``text``, longest first."""
        found = [t for t in self.terms if _pattern(t.source).search(text)]
        return sorted(found, key=lambda t: -len(t.source))

    def missing(self, source_text: str, output: str) -> list[Term]:
        """Terms of ``source_text`` whose wanted form is not in ``output``."""
        return [t for t in self.applicable(source_text) if not _pattern(t.wanted).search(output)]

    def protect(self, text: str) -> tuple[str, dict[str, str]]:
        """Replace each term with a placeholder word an engine that keeps unknown words
        passes through; returns the text and placeholder -> wanted form."""
        mapping: dict[str, str] = {}
        for index, term in enumerate(self.applicable(text)):
            placeholder = "Zqx" + "".join(chr(ord("a") + int(d)) for d in f"{index:03d}") + "q"
            text, count = _pattern(term.source).subn(placeholder, text)
            if count:
                mapping[placeholder] = term.wanted
        return text, mapping

    def post_edit(self, source_text: str, output: str) -> str:
        """Replace source terms the engine copied untranslated by their targets."""
        for term in self.missing(source_text, output):
            output = _pattern(term.source).sub(_literal(term.wanted), output)
        return output


def restore(text: str, mapping: dict[str, str]) -> str:
    for placeholder, wanted in mapping.items():
        text = re.sub(re.escape(placeholder), _literal(wanted), text, flags=re.IGNORECASE)
    return text


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A replacement that is ``text`` as it is (no group references)."""
    return lambda _match: text


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.IGNORECASE)


def load_glossary(path: Path) -> Glossary:
    """Read a CSV (``source,target`` header) or TOML (``[terms]`` table) glossary.

    Raises:
        InputError: the file is missing, or not in either form.
    """
    if not path.exists():
        raise InputError(f"The glossary {path} does not exist.", "Check the file name.")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read the glossary {path}: {exc}.") from None
    if suffix == ".toml":
        try:
            table = tomllib.loads(text).get("terms")
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"The glossary {path} is not valid TOML: {exc}.") from None
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise InputError(
                f"The glossary {path} has no [terms] table of strings.",
                'Write it as: [terms] followed by lines such as "source" = "target".',
            )
        pairs = list(table.items())
    elif suffix == ".csv":
        rows = list(csv.reader(text.splitlines()))
        header = [cell.strip().lower() for cell in rows[0]] if rows else []
        if header[:2] != ["source", "target"]:
            raise InputError(
                f"The glossary {path} must start with the header source,target.",
                "For example: source,target / library,biblioteca / Octavia,",
            )
        pairs = [(row[0], row[1] if len(row) > 1 else "") for row in rows[1:] if row]
    else:
        raise InputError(
            f"The glossary {path} is neither .csv nor .toml.", "Use one of those formats."
        )
    terms = tuple(Term(s.strip(), t.strip()) for s, t in pairs if s.strip())
    if not terms:
        raise InputError(f"The glossary {path} has no terms.")
    return Glossary(terms)
