"""espeak-ng and the bundled Piper voice, really speaking."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

from octavia_cli.config import load_settings
from octavia_cli.engines.tts import get_speech_engine
from octavia_cli.engines.tts.base import check_language
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


def test_espeak_writes_through_stdout_to_a_long_path_and_checks_what_it_got(
    tmp_path: Path,
) -> None:
    """espeak-ng never gets a path (it cut long ones at 199 bytes and wrote there): its WAV
    comes on stdout, its sizes fixed; a failed run is a stage error naming it."""
    from octavia_cli.errors import StageError

    folder = tmp_path / ("d" * 150) / ("e" * 100)
    folder.mkdir(parents=True)
    clip = folder / "0001.wav"
    result = EspeakEngine().synthesize("Hola a todos.", "es", "es", clip)
    info = soundfile.info(str(clip))
    assert info.frames > 1000 and abs(info.duration - result.duration_s) < 1e-6
    assert sorted(p.name for p in folder.iterdir()) == ["0001.wav"]
    with pytest.raises(StageError, match="espeak-ng failed on voice zz-nope"):
        EspeakEngine().synthesize("Hola.", "es", "zz-nope", tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


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


def _two_speaker_project(tmp_path: Path):
    from octavia_cli.project.manifest import Project
    from octavia_cli.project.records import Segment, Speaker, Transcript

    project = Project(tmp_path, {"source": {"path": "talk.mp4", "fingerprint": "x"}})
    project.transcript = Transcript(
        language="en", language_probability=1.0, duration_s=4.0, engine="test", model="test",
        segments=[Segment("0001", 0.0, 1.5, "Hello there.", speaker="S1"),
                  Segment("0002", 2.0, 3.5, "Hi, how are you?", speaker="S2")],
    )  # fmt: skip
    project.speakers = [Speaker("S1", pitch_hz=110.0), Speaker("S2", pitch_hz=220.0)]
    return project


def test_too_few_piper_voices_for_the_speakers(tmp_path: Path) -> None:
    """One bundled English Piper voice and two speakers: auto falls back to two distinct
    espeak-ng voices; piper asked for by name says what to do instead."""
    from octavia_cli.stages.synthesize import speaker_voices

    project = _two_speaker_project(tmp_path)
    engine, voices = speaker_voices(project, "en", load_settings(), PiperEngine())
    assert engine.name == "espeak-ng" and len(set(voices.values())) == 2
    male, female = voices["S1"], voices["S2"]
    assert male.endswith(("+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7")), male
    assert "+f" in female, female
    with pytest.raises(InputError, match="only 1 Piper voice"):
        speaker_voices(project, "en", load_settings({"tts.engine": "piper"}), PiperEngine())
    # Asked for by speaker, the one Piper voice may voice one of them.
    piper = str(PiperEngine().voice_for("en"))
    settings = load_settings({"tts.engine": "piper", "tts.voice": f"S1={piper},S2={piper}"})
    assert speaker_voices(project, "en", settings, PiperEngine())[1] == {"S1": piper, "S2": piper}
