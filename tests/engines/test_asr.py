"""faster-whisper on the bundled multilingual base model, on speech the test makes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from octavia_cli.config import load_settings
from octavia_cli.engines.asr import get_asr_engine
from octavia_cli.engines.asr.faster_whisper import FasterWhisperEngine
from octavia_cli.errors import ConfigError, InputError, MissingModelError
from octavia_cli.media.audio import read_audio
from octavia_cli.media.ffmpeg import extract_audio
from octavia_cli.models.bundled import bundled_model_path
from octavia_cli.models.whisper import english_only


@pytest.fixture
def speech_16k(tmp_path: Path, media_factory) -> Path:
    source = media_factory(
        "speech.wav",
        video=False,
        bed=False,
        duration_s=6.0,
        lines=((0.4, "Welcome to the city library."), (3.2, "Thank you for watching.")),
    )
    wav = tmp_path / "speech16k.wav"
    extract_audio(source, wav, sample_rate_hz=16_000, channels=1)
    return wav


def _read(path: Path) -> np.ndarray:
    audio, _ = read_audio(path)
    return audio[0]


def test_recognizes_timed_words(speech_16k: Path) -> None:
    progress: list[float] = []
    engine = get_asr_engine(load_settings())
    result = engine.recognize(_read(speech_16k), "en", progress.append)
    engine.close()
    text = " ".join(w.text.strip().lower() for w in result.words)
    assert "library" in text and "watching" in text
    assert all(w.start_s <= w.end_s for w in result.words)
    assert result.words == sorted(result.words, key=lambda w: w.start_s)
    watching = next(w for w in result.words if "watching" in w.text.lower())
    assert 3.2 < watching.start_s < 5.0
    assert progress and progress[-1] > 3.0


def test_detects_language(speech_16k: Path) -> None:
    engine = get_asr_engine(load_settings())
    language, probability = engine.detect_language(_read(speech_16k))
    assert language == "en" and probability > 0.5


def test_bundled_model_is_assembled_and_verified(session_cache: Path) -> None:
    folder = bundled_model_path("whisper-base", str(session_cache))
    assert (folder / "model.bin").stat().st_size == 2 * 72_608_766
    assert not english_only(folder)
    # A damaged assembled file is noticed (its size/mtime stamp no longer matches) and rebuilt.
    assert bundled_model_path("whisper-base", str(session_cache)) == folder


def test_damaged_assembly_is_rebuilt(tmp_path: Path) -> None:
    folder = bundled_model_path("whisper-base", str(tmp_path))
    (folder / "model.bin").write_bytes(b"garbage")
    folder = bundled_model_path("whisper-base", str(tmp_path))
    assert (folder / "model.bin").stat().st_size == 2 * 72_608_766


def test_hub_model_missing_offline_names_it() -> None:
    engine = FasterWhisperEngine(load_settings({"asr.model": "large-v3"}))
    with pytest.raises(MissingModelError, match="'large-v3' is not in the local cache"):
        engine.check("en")
    with pytest.raises(MissingModelError, match="'huge-v9' is not a Whisper model name"):
        FasterWhisperEngine(load_settings({"asr.model": "huge-v9"})).check("en")
    # auto is small on the CPU, and is named as such.
    engine = FasterWhisperEngine(load_settings({"asr.model": "auto", "general.device": "cpu"}))
    with pytest.raises(MissingModelError, match="'small' is not in the local cache"):
        engine.check("en")


def test_missing_local_folder_and_non_model_folder(tmp_path: Path) -> None:
    with pytest.raises(MissingModelError, match=r"no model\.bin"):
        FasterWhisperEngine(load_settings({"asr.model": str(tmp_path)})).check(None)
    with pytest.raises(MissingModelError, match="does not exist"):
        FasterWhisperEngine(load_settings({"asr.model": "./nowhere/model"})).check(None)


def test_english_only_model_refuses_other_languages(tmp_path: Path) -> None:
    folder = tmp_path / "tiny.en"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")
    (folder / "vocabulary.txt").write_text("x\n" * 51864)
    engine = FasterWhisperEngine(load_settings({"asr.model": str(folder)}))
    with pytest.raises(InputError, match="English-only"):
        engine.check("es")
    engine.check("en")


def test_unknown_engine_is_a_config_error() -> None:
    from octavia_cli.config import AsrSettings, Settings

    settings = Settings(asr=AsrSettings(engine="nope"))
    with pytest.raises(ConfigError, match=r"asr\.engine"):
        get_asr_engine(settings)


def test_device_cuda_without_gpu_is_a_clear_error(cli, talk) -> None:
    from octavia_cli.devices import cuda_available

    if cuda_available():
        pytest.skip("a GPU is present")
    code, _, err = cli("transcribe", str(talk), "--device", "cuda")
    assert code == 1 and "no CUDA GPU is usable here" in err


@pytest.mark.gpu
def test_faster_whisper_on_cuda(speech_16k: Path) -> None:
    engine = get_asr_engine(load_settings({"general.device": "cuda"}))
    result = engine.recognize(_read(speech_16k), "en", lambda s: None)
    engine.close()
    assert "library" in " ".join(w.text for w in result.words).lower()
