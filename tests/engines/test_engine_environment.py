"""pyannote's usage metrics (audio duration, speaker counts, sent to its makers' collector)
stay off unless ``models.telemetry``: the engines that run pyannote set that themselves,
whichever entry point built them (a job's settings in ``serve`` or a Celery worker, a
caller of the library), and whisperx's VAD, a pyannote model, reports nothing."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest

from hub_layout import no_network  # noqa: F401 (a fixture)
from octavia_cli.config import ModelSettings, load_settings


@pytest.fixture
def reported(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The spans pyannote's telemetry starts (none may leave), with the variable as
    pyannote's own default config leaves it: on."""
    pytest.importorskip("pyannote.audio", reason="needs octavia-cli[quality]")
    from pyannote.audio.telemetry import metrics

    spans: list[str] = []

    def record(name: str, *args: Any, **kwargs: Any) -> Any:
        spans.append(name)
        return mock.MagicMock()

    monkeypatch.setattr(metrics.tracer, "start_as_current_span", record)
    monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", "true")
    return spans


def test_the_pyannote_diarizer_turns_the_metrics_off(reported: list[str]) -> None:
    from octavia_cli.engines.diarization.pyannote import PyannoteDiarizer

    pipeline = object()  # a pipeline built in memory; pyannote asks at every run
    PyannoteDiarizer(pipeline=pipeline, models=ModelSettings()).pipeline()
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"
    PyannoteDiarizer(pipeline=pipeline, models=ModelSettings(telemetry=True)).pipeline()
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "true"  # the user opted in
    settings = load_settings({"models.telemetry": True})
    assert PyannoteDiarizer.from_settings(settings).models == settings.models


@pytest.mark.usefixtures("no_network")
def test_whisperx_vad_reports_nothing(reported: list[str]) -> None:
    pytest.importorskip("whisperx", reason="needs octavia-cli[quality]")
    from octavia_cli.engines.asr.whisperx import WhisperXEngine

    settings = {"asr.engine": "whisperx", "asr.model": "bundled:whisper-base",
                "general.device": "cpu"}  # fmt: skip
    engine = WhisperXEngine(load_settings(settings))
    engine._load_pipeline()  # loads the VAD model (pyannote's Model.from_pretrained)
    engine.close()
    assert reported == []
    engine = WhisperXEngine(load_settings(settings | {"models.telemetry": True}))
    engine._load_pipeline()
    engine.close()
    assert reported == ["oss-model-init"]  # what it would have sent
