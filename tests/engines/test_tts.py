"""espeak-ng and the bundled Piper voice, really speaking."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

from octavia_cli.config import load_settings
from octavia_cli.engines.tts import check_language, get_speech_engine
from octavia_cli.engines.tts.espeak import EspeakEngine
from octavia_cli.engines.tts.piper import PiperEngine
from octavia_cli.errors import InputError, MissingModelError


def test_espeak_speaks_spanish(tmp_path: Path) -> None:
    engine = EspeakEngine()
    assert {"es", "en", "fr", "de"} <= engine.languages()
    voice = engine.voice_for("es")
    assert voice == "es"
    result = engine.synthesize("Hola, ¿cómo estás?", "es", voice, tmp_path / "a.wav")
    data, rate = soundfile.read(tmp_path / "a.wav")
    assert rate == result.sample_rate_hz and abs(len(data) / rate - result.duration_s) < 1e-3
    assert 0.5 < result.duration_s < 4 and abs(data).max() > 0.1


def test_espeak_rejects_unknown_voice() -> None:
    with pytest.raises(InputError, match="no voice 'klingon'"):
        EspeakEngine().voice_for("es", "klingon")


def test_piper_bundled_voice_speaks_english(tmp_path: Path) -> None:
    engine = PiperEngine()
    assert engine.languages() == {"en"}
    voice = engine.voice_for("en")
    result = engine.synthesize("Good morning, everyone.", "en", voice, tmp_path / "p.wav")
    data, rate = soundfile.read(tmp_path / "p.wav")
    assert rate == 22050 and 0.8 < result.duration_s < 4 and abs(data).max() > 0.1


def test_auto_prefers_piper_then_falls_back_to_espeak() -> None:
    settings = load_settings()
    assert get_speech_engine(settings, "en").name == "piper"
    assert get_speech_engine(settings, "es").name == "espeak-ng"


def test_language_without_voice_is_reported() -> None:
    with pytest.raises(InputError, match="has no voice for Spanish"):
        check_language(PiperEngine(), "es")


def test_missing_piper_voice_file(tmp_path: Path) -> None:
    with pytest.raises(MissingModelError, match="does not exist"):
        PiperEngine(str(tmp_path / "none.onnx")).languages()
