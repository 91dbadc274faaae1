"""Apertium from Debian's packages."""

from __future__ import annotations

import pytest

from octavia_cli.engines.mt.apertium import ApertiumEngine
from octavia_cli.errors import InputError


def test_translates_a_batch_line_by_line() -> None:
    engine = ApertiumEngine()
    out = engine.translate(["Hello world.", "The cat is on the table.", "Good night!"], "en", "es")
    assert len(out) == 3
    assert "Hola" in out[0] and "gato" in out[1] and "noche" in out[2].lower()
    assert all("*" not in line and "  " not in line for line in out)


def test_other_direction() -> None:
    assert "cat" in ApertiumEngine().translate(["El gato negro."], "es", "en")[0].lower()


def test_missing_pair_lists_installed_pairs() -> None:
    with pytest.raises(InputError) as excinfo:
        ApertiumEngine().check_pair("en", "ja")
    message = str(excinfo.value)
    assert "English→Japanese" in message and "eng→spa" in message


def test_empty_batch() -> None:
    assert ApertiumEngine().translate([], "en", "es") == []
