"""Probe the input and decode its audio: once at the source's own rate and layout (for the
mix; surround stays surround), once at 16 kHz mono (for speech recognition)."""

from __future__ import annotations

import time
from pathlib import Path

from octavia_cli.errors import InputError
from octavia_cli.media import extract_audio, probe
from octavia_cli.model import stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project

STAGE = "extract"
SOURCE_WAV = "audio/source.wav"
ASR_WAV = "audio/asr-16k.wav"
ASR_SAMPLE_RATE_HZ = 16_000
MAX_CHANNELS = 8  # the source's layout is kept, up to 7.1


def extract(project: Project, source: Path, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, STAGE)
    media = probe(source)
    if not media.has_audio:
        raise InputError(
            f"{source} has no audio track, so there is no speech to dub.",
            "Give a video or audio file with sound.",
        )
    inputs = stable_hash(project.source_fingerprint, MAX_CHANNELS, ASR_SAMPLE_RATE_HZ)
    project.media = media
    if project.is_current(STAGE, inputs) and all(
        project.path(p).exists() for p in (SOURCE_WAV, ASR_WAV)
    ):
        reporter.skipped()
        return
    began = time.monotonic()
    reporter.started(total=2, message="decoding audio")
    sample_rate = media.audio_sample_rate_hz or 48_000
    channels = min(max(media.audio_channels, 1), MAX_CHANNELS)
    from octavia_cli.files import atomic_path

    with atomic_path(project.path(SOURCE_WAV)) as tmp:
        extract_audio(source, tmp, sample_rate_hz=sample_rate, channels=channels)
    reporter.advance(1, 2)
    with atomic_path(project.path(ASR_WAV)) as tmp:
        extract_audio(source, tmp, sample_rate_hz=ASR_SAMPLE_RATE_HZ, channels=1)
    project.mark_done(
        STAGE,
        inputs,
        time.monotonic() - began,
        sample_rate_hz=sample_rate,
        channels=channels,
        duration_s=media.duration_s,
    )
    reporter.done()
