"""``asr.compute_type = auto`` on a GPU takes what CTranslate2 runs on that GPU (issue 16,
defect 11): float16 where the card has fast half precision, else int8_float32, else
float32. The GPUs are faked (this machine has none): CTranslate2's own answer for each
kind of card, and the CUDA device count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ctranslate2 = pytest.importorskip("ctranslate2")

from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.models.whisper import compute_type_for  # noqa: E402

# What ctranslate2.get_supported_compute_types("cuda") answers, by compute capability.
AMPERE = {"float32", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "float16",
          "bfloat16"}  # 8.6  # fmt: skip
PASCAL = {"float32", "int8", "int8_float32"}  # 6.1: a GTX 1080, no fast float16
MAXWELL = {"float32"}  # 5.2: no int8 either


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch) -> dict[int, set[str]]:
    """Two fake CUDA GPUs, by index: what CTranslate2 supports on each (set by the test)."""
    from octavia_cli import devices

    cards: dict[int, set[str]] = {0: set(AMPERE), 1: set(AMPERE)}

    def supported(device: str, device_index: int = 0) -> set[str]:
        return cards[device_index] if device == "cuda" else {"float32", "int8"}

    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", supported)
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    monkeypatch.setattr(devices, "cuda_device_count", lambda: len(cards))
    return cards


@pytest.mark.parametrize(("card", "chosen"), [(AMPERE, "float16"), (PASCAL, "int8_float32"),
                                              (MAXWELL, "float32")])  # fmt: skip
def test_auto_takes_what_the_gpu_runs(gpus: dict, card: set[str], chosen: str) -> None:
    gpus[1] = card
    assert compute_type_for("auto", "cuda", 1) == chosen
    assert compute_type_for("auto", "cuda", 0) == "float16"  # the other card has it
    assert compute_type_for("auto", "cpu") == "int8"
    assert compute_type_for("int8_float16", "cuda", 1) == "int8_float16"  # as set


@pytest.mark.parametrize("engine", ["faster-whisper", "whisperx"])
def test_the_engines_load_whisper_with_it(
    gpus: dict, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the second GPU, a Pascal card: Whisper is loaded there in int8_float32."""
    from octavia_cli.engines.asr import get_asr_engine

    gpus[1] = PASCAL
    folder = tmp_path / "ct2-whisper"  # a local model: nothing to find on the hub
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")
    loaded: list[dict[str, Any]] = []

    def load(location: str, device: str, **options: Any) -> object:
        loaded.append({"location": location, "device": device, **options})
        return object()

    if engine == "whisperx":
        whisperx = pytest.importorskip("whisperx")
        monkeypatch.setattr(whisperx, "load_model", load)
    else:
        faster_whisper = pytest.importorskip("faster_whisper")
        monkeypatch.setattr(faster_whisper, "WhisperModel", load)
    settings = load_settings({"asr.engine": engine, "asr.model": str(folder),
                              "general.device": "cuda:1"})  # fmt: skip
    assert settings.asr.compute_type == "auto"
    recognizer = get_asr_engine(settings)
    load_whisper = recognizer._load_pipeline if engine == "whisperx" else recognizer._load
    load_whisper()
    (options,) = loaded
    assert options["location"] == str(folder) and options["device"] == "cuda"
    assert options["device_index"] == 1 and options["compute_type"] == "int8_float32"
