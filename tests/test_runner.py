"""The runner owns the engines: built once per settings, kept by batches and workers, freed
by a single run as each stage ends, parked off the GPU between stages when kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octavia_cli.config import load_settings
from octavia_cli.pipeline import Runner

OFFLINE = {"general.preset": "offline"}


def test_an_engine_is_built_once_per_settings_and_the_old_one_freed() -> None:
    with Runner(keep=True) as runner:
        first = runner.asr(load_settings(OFFLINE))
        assert runner.asr(load_settings(OFFLINE)) is first
        first._model = object()  # as if loaded
        other = runner.asr(load_settings(OFFLINE | {"asr.beam_size": 2}))
        assert other is not first and first._model is None  # replaced: the old one freed
        assert runner.built["asr"] == 2 and runner.alive() == {"asr": other}
    assert runner.alive() == {}


def test_a_single_run_frees_each_engine_when_its_stage_is_done() -> None:
    with Runner() as runner:
        engine = runner.asr(load_settings(OFFLINE))
        engine._model = object()
        runner.release(engine)
        assert engine._model is None and runner.alive() == {}
        assert runner.asr(load_settings(OFFLINE)) is not engine  # the next stage builds anew


def test_one_speech_engine_at_a_time() -> None:
    """Each language gets the engine that speaks it; asking for another closes the one
    before, so a dub never holds two."""
    with Runner(keep=True) as runner:
        settings = load_settings(OFFLINE)
        english = runner.speech(settings, "en")  # the bundled Piper voice speaks English
        assert english.name == "piper" and runner.speech(settings, "en") is english
        spanish = runner.speech(settings, "es")
        assert spanish.name == "espeak-ng" and list(runner.alive().values()) == [spanish]
        assert runner.built["speech"] == 2


class _GpuEngine:
    """Stands in for a model on a GPU this machine does not have: it records where the
    runner moves it."""

    device = "cuda"

    def __init__(self) -> None:
        self.moves: list[str] = []
        self.closed = False

    def to_cpu(self) -> None:
        self.moves.append("cpu")

    def to_device(self) -> None:
        self.moves.append("cuda")

    def close(self) -> None:
        self.closed = True


def test_a_kept_engine_is_parked_off_the_gpu_between_its_stages(monkeypatch) -> None:
    """Released by its stage, a kept engine on a GPU goes to CPU memory (not closed); the
    checks of the next job get it without moving it back (the engine does that itself
    when it next works), so the card never holds a parked stage's models early."""
    import octavia_cli.pipeline.runner as runner_module

    monkeypatch.setattr(runner_module, "resolve_device", lambda setting: setting)
    settings = load_settings(OFFLINE)
    with Runner(keep=True) as runner:
        engine = runner._get("asr", settings, _GpuEngine)
        runner.release(engine)  # its stage is over: into CPU memory, not closed
        assert engine.moves == ["cpu"] and not engine.closed
        assert runner._get("asr", settings, _GpuEngine) is engine  # the next job's checks
        assert engine.moves == ["cpu"]
    assert engine.closed


def test_a_single_run_on_a_gpu_closes_instead(monkeypatch) -> None:
    import octavia_cli.pipeline.runner as runner_module

    monkeypatch.setattr(runner_module, "resolve_device", lambda setting: setting)
    with Runner() as runner:
        engine = runner._get("asr", load_settings(OFFLINE), _GpuEngine)
        runner.release(engine)
        assert engine.closed and engine.moves == []


def test_whisper_parks_its_weights_in_host_memory_and_still_recognises(tmp_path: Path) -> None:
    """The real parking calls of the CTranslate2 recogniser (the bundled Whisper): its
    weights moved to host memory (on a CPU they are there already) and loaded back, then
    it still hears the speech."""
    import soundfile

    from conftest import make_media

    clip = make_media(tmp_path / "hello.wav", ((0.2, "Good morning to everyone."),),
                      duration_s=3.0, video=False, bed=False)  # fmt: skip
    audio, rate = soundfile.read(str(clip), dtype="float32")
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    sixteen = np.interp(np.arange(0, len(mono), rate / 16_000), np.arange(len(mono)), mono)
    with Runner(keep=True) as runner:
        engine = runner.asr(load_settings(OFFLINE))
        engine._load()
        engine.to_cpu()
        engine.to_device()
        assert engine._model.model.model_is_loaded
        heard = engine.recognize(sixteen.astype(np.float32), "en", lambda s: None)
    assert "morning" in " ".join(w.text for w in heard.words).lower()


def test_a_per_run_setting_keeps_the_engine() -> None:
    """Settings the stages read per run (a glossary, length control, XTTS's voice) do not
    rebuild a kept engine; those it is built from do (Piper's voice is its model)."""
    with Runner(keep=True) as runner:
        first = runner.translator(load_settings(OFFLINE))
        again = runner.translator(load_settings(OFFLINE | {"mt.length_control": False}))
        assert again is first and runner.built["mt"] == 1
        piper = runner.speech(load_settings(OFFLINE | {"tts.engine": "piper"}), "en")
        other = runner.speech(load_settings(OFFLINE | {"tts.engine": "piper",
                                                       "tts.voice": "x.onnx"}), "en")  # fmt: skip
        assert other is not piper and runner.built["speech"] == 2
