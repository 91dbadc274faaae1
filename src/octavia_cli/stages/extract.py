"""Probe the input and decode its audio, in one ffmpeg run, twice: at the source's own rate
and layout (for the mix; surround stays surround) and at 16 kHz mono (for speech
recognition). The same run measures the source's loudness, which the mix matches."""

from __future__ import annotations

import logging
import math
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import soundfile

from octavia_cli.errors import InputError
from octavia_cli.files import atomic_path
from octavia_cli.media.ffmpeg import (
    AudioTrack,
    MediaInfo,
    decodable_video_s,
    decode_audio,
    probe,
)
from octavia_cli.media.loudness import ABSOLUTE_GATE_LUFS
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import ASR_SAMPLE_RATE_HZ, ASR_WAV, SOURCE_WAV
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import ExtractInfo, stable_hash

logger = logging.getLogger(__name__)

STAGE = "extract"
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
        decoded = project.stages[STAGE].info.decoded_s
        if decoded is not None:
            project.media = as_decoded(media, float(decoded), source)
        reporter.skipped()
        return
    began = time.monotonic()
    reporter.started(total=1, message="decoding audio")
    sample_rate = media.audio_sample_rate_hz or 48_000
    channels = min(max(media.audio_channels, 1), MAX_CHANNELS)
    measure_s = media.output_duration_s
    with ExitStack() as stack:
        source_wav = stack.enter_context(atomic_path(project.path(SOURCE_WAV)))
        asr_wav = stack.enter_context(atomic_path(project.path(ASR_WAV)))
        lufs = decode_audio(
            source,
            [
                AudioTrack(source_wav, sample_rate, channels),
                AudioTrack(asr_wav, ASR_SAMPLE_RATE_HZ, 1),
            ],
            measure_s=measure_s,
        )
    decoded = soundfile.info(str(project.path(SOURCE_WAV))).duration
    project.media = as_decoded(media, decoded, source, warn=True)
    measured = project.media.output_duration_s == measure_s  # not if it was cut short
    project.mark_done(
        STAGE,
        inputs,
        time.monotonic() - began,
        ExtractInfo(
            sample_rate,
            channels,
            media.duration_s,
            round(decoded, 3),
            source_lufs=_round(lufs) if measured and lufs is not None else None,
        ),
    )
    reporter.done()


TRUNCATED_BY_S = 1.0  # less audio than the container says by more than this: truncated


def as_decoded(media: MediaInfo, decoded_s: float, source: Path, *, warn: bool = False):
    """``media`` with the durations that actually decode, when ``decoded_s`` (the audio that
    decoded) falls short of the container's by more than a second (a truncated download):
    the dub then covers what decodes, and the output's streams are cut to one length."""
    declared = media.audio_duration_s or media.duration_s
    if decoded_s >= declared - TRUNCATED_BY_S:
        return media
    length = decoded_s
    if media.has_video:
        length = min(decoded_s, decodable_video_s(source) or decoded_s)
    if warn:
        logger.warning(
            "%s: the file says it lasts %.1f s but only %.1f s of it decode (a truncated "
            "or damaged file?); dubbing the %.1f s that decode.",
            source.name, media.duration_s, decoded_s, length,
        )  # fmt: skip
    return replace(
        media,
        duration_s=length,
        video_duration_s=length if media.has_video else None,
        audio_duration_s=decoded_s,
        truncated=True,
    )


def _round(lufs: float) -> float:
    """LUFS for the manifest (JSON has no infinity): silence is the -70 LUFS gate."""
    return round(lufs, 2) if math.isfinite(lufs) else ABSOLUTE_GATE_LUFS
