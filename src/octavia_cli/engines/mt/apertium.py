"""Apertium, the rule-based translator from Debian's packages: fully offline, fast.

Apertium names its modes with ISO 639-3 codes (``eng-spa``); some older pairs use ISO
639-1 (``en-es``). We accept both, translate a whole batch in one process call (one line
per text: Apertium keeps line breaks) and pass ``-u`` so unknown words are not marked.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

from octavia_cli.errors import InputError, MissingDependencyError, StageError
from octavia_cli.languages import alpha3, language_name


@functools.lru_cache(maxsize=1)
def installed_modes() -> tuple[str, ...]:
    """Apertium modes installed on this machine, e.g. ``("eng-spa", "spa-eng")``."""
    program = shutil.which("apertium")
    if program is None:
        raise MissingDependencyError(
            "The program 'apertium' is not installed.",
            "Install it with a language pair (Debian/Ubuntu: sudo apt-get install apertium "
            "apertium-eng-spa).",
        )
    result = subprocess.run([program, "-l"], capture_output=True, text=True, check=False)
    return tuple(line.strip() for line in result.stdout.splitlines() if line.strip())


class ApertiumEngine:
    name = "apertium"
    keeps_unknown_words = True  # with -u: glossary placeholders pass through untouched

    def describe(self) -> str:
        return self.name

    def candidates(self, texts: list[str], source: str, target: str, count: int) -> list[list[str]]:
        """Rule-based translation has one answer per text."""
        return [[text] for text in self.translate(texts, source, target)]

    def close(self) -> None:
        pass

    def _mode(self, source: str, target: str) -> str | None:
        modes = installed_modes()
        for mode in (f"{alpha3(source)}-{alpha3(target)}", f"{source}-{target}"):
            if mode in modes:
                return mode
        return None

    def supported_pairs(self) -> list[str]:
        return [m.replace("-", "→") for m in installed_modes() if m.count("-") == 1]

    def check_pair(self, source: str, target: str) -> None:
        if self._mode(source, target) is None:
            pairs = ", ".join(self.supported_pairs()) or "none"
            raise InputError(
                f"Apertium has no {language_name(source)}→{language_name(target)} "
                f"({source}→{target}) pair installed; installed pairs: {pairs}.",
                f"Install the pair (e.g. sudo apt-get install apertium-{alpha3(source)}-"
                f"{alpha3(target)}) or choose another --to.",
            )

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        self.check_pair(source, target)
        if not texts:
            return []
        mode = self._mode(source, target)
        assert mode is not None
        lines = [" ".join(text.split()) for text in texts]
        translated = self._run(mode, "\n".join(lines)).split("\n")
        if len(translated) != len(lines):  # a line merged or split: translate one by one
            translated = [self._run(mode, line) for line in lines]
        return [" ".join(line.split()) for line in translated]

    @staticmethod
    def _run(mode: str, text: str) -> str:
        program = shutil.which("apertium") or "apertium"
        result = subprocess.run(
            [program, "-u", mode], input=text, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StageError(f"Apertium failed: {result.stderr.strip() or 'no message'}.")
        return result.stdout.rstrip("\n")
