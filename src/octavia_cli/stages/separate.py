"""Split the source audio into speech (``audio/vocals.wav``) and background
(``audio/background.wav``), both at the source's rate and layout, plus the speech at 16 kHz
mono for recognition and diarization (``audio/vocals-16k.wav``).

With separation off the stage records nothing: the later stages then use the original
audio (recognition reads ``audio/asr-16k.wav``; the mix ducks the original deeply).
"""

from __future__ import annotations

import time
from pathlib import Path

from octavia_cli.engines.separation import SeparationEngine
from octavia_cli.files import atomic_path
from octavia_cli.media.ffmpeg import extract_audio
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import stable_hash
from octavia_cli.stages.extract import ASR_SAMPLE_RATE_HZ, ASR_WAV, SOURCE_WAV

STAGE = "separate"
VOCALS_WAV = "audio/vocals.wav"
BACKGROUND_WAV = "audio/background.wav"
VOCALS_16K_WAV = "audio/vocals-16k.wav"


def separate(project: Project, engine: SeparationEngine | None, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, STAGE)
    if engine is None:
        if project.stages.pop(STAGE, None) is not None:  # turned off since the last run
            project.save()
        reporter.skipped("off")
        return
    inputs = stable_hash(project.stages["extract"].inputs_hash, engine.describe())
    outputs = (VOCALS_WAV, BACKGROUND_WAV, VOCALS_16K_WAV)
    if project.is_current(STAGE, inputs) and all(project.path(p).exists() for p in outputs):
        reporter.skipped()
        return
    began = time.monotonic()
    total = project.stages["extract"].info.get("duration_s") or None
    reporter.started(total=total, message=f"separating speech ({engine.describe()})")
    with (
        atomic_path(project.path(VOCALS_WAV)) as vocals,
        atomic_path(project.path(BACKGROUND_WAV)) as background,
    ):
        engine.separate(
            project.path(SOURCE_WAV), vocals, background, lambda done, t: reporter.advance(done, t)
        )
        with atomic_path(project.path(VOCALS_16K_WAV)) as speech:
            extract_audio(vocals, speech, sample_rate_hz=ASR_SAMPLE_RATE_HZ, channels=1)
    project.mark_done(STAGE, inputs, time.monotonic() - began, engine=engine.describe())
    reporter.done()


def is_separated(project: Project) -> bool:
    return STAGE in project.stages and project.path(BACKGROUND_WAV).exists()


def speech_16k(project: Project) -> Path:
    """The 16 kHz mono audio that recognition and diarization listen to."""
    return project.path(VOCALS_16K_WAV if is_separated(project) else ASR_WAV)


def speech_audio(project: Project) -> Path:
    """Speech at the source's rate, for voice references."""
    return project.path(VOCALS_WAV if is_separated(project) else SOURCE_WAV)


def speech_inputs(project: Project) -> str:
    """What the speech audio was made from (part of the later stages' inputs hashes)."""
    record = project.stages.get(STAGE)
    return record.inputs_hash if record is not None else ""
