"""XTTS speaks Chinese and Japanese only with coqui-tts's zh and ja extras: without them a
run is refused before any work, with the one sentence naming the install (exit 3)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("TTS", reason="the xtts engine needs octavia-cli[quality]")

from octavia_cli.config import load_settings
from octavia_cli.engines.tts.xtts import LANGUAGE_EXTRAS, XttsEngine
from octavia_cli.errors import MissingDependencyError


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The extras' modules the test says are installed (all others behave as absent,
    whatever this machine has)."""
    present: set[str] = set()
    extras = {module for groups in LANGUAGE_EXTRAS.values() for g in groups for module in g}
    find_spec = importlib.util.find_spec

    def pretend(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
        if name in extras:
            return find_spec("json") if name in present else None
        return find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", pretend)
    monkeypatch.setenv("OCTAVIA_TTS_ACCEPT_LICENSE", "true")
    return present


def test_each_claimed_language_is_checked_for_its_extra(installed: set[str]) -> None:
    engine = XttsEngine(load_settings({"tts.engine": "xtts"}))
    assert {"zh", "ja"} <= engine.languages()
    with pytest.raises(MissingDependencyError, match=r"Chinese with pypinyin.*coqui-tts\[zh\]"):
        engine.voice_for("zh")
    with pytest.raises(MissingDependencyError, match="Japanese with cutlet and fugashi and "
                       r"unidic_lite.*coqui-tts\[ja\]"):  # fmt: skip
        engine.voice_for("ja")
    installed.update({"pypinyin", "cutlet", "fugashi", "unidic"})  # unidic: the full one
    assert engine.voice_for("zh") == engine.voice_for("ja") == ""
    for language in engine.languages() - set(LANGUAGE_EXTRAS):
        engine.check_language(language)  # the rest need only coqui-tts itself


def test_a_run_is_refused_before_any_work(
    cli, installed: set[str], tmp_path: Path, talk: Path
) -> None:
    out_wav = tmp_path / "nihao.wav"
    code, _, err = cli("synthesize", "你好。", "--to", "zh", "--tts-engine", "xtts",
                       "-o", str(out_wav))  # fmt: skip
    assert code == 3 and "XTTS reads Chinese with pypinyin" in err
    assert "pip install 'coqui-tts[zh]==0.28.0'" in err and "Traceback" not in err
    assert not out_wav.exists()
    # A dub checks it with the rest, before any stage: --dry-run lists it among the problems.
    code, out, err = cli("dub", str(talk), "--to", "ja", "--from", "en", "--tts-engine", "xtts",
                         "--dry-run")  # fmt: skip
    assert code == 0, err
    (plan,) = json.loads(out)
    assert any("XTTS reads Japanese with cutlet" in problem for problem in plan["problems"])
    assert not talk.with_name("talk.octavia").exists()
