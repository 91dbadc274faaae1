"""Split the source audio into speech (``audio/vocals.wav``) and background
(``audio/background.wav``), both at the source's rate and layout, plus the speech at 16 kHz
mono for recognition and diarization (``audio/vocals-16k.wav``).

With separation off the stage records nothing: the later stages then use the original
audio (recognition reads ``audio/asr-16k.wav``; the mix ducks the original deeply).
"""

from __future__ import annotations

import time

from octavia_cli.engines.separation.base import SeparationEngine
from octavia_cli.files import atomic_path
from octavia_cli.media.ffmpeg import extract_audio
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import (
    ASR_SAMPLE_RATE_HZ,
    BACKGROUND_WAV,
    SEPARATE_STAGE,
    SOURCE_WAV,
    VOCALS_16K_WAV,
    VOCALS_WAV,
)
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import SeparateInfo, stable_hash

STAGE = SEPARATE_STAGE


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
    total = project.stages["extract"].info.duration_s or None
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
    project.mark_done(STAGE, inputs, time.monotonic() - began, SeparateInfo(engine.describe()))
    reporter.done()
