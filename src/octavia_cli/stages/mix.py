"""Lay the fitted clips on a timeline and mix them over the original audio.

The dub track is brought to the loudness of the source (ITU-R BS.1770, clamped to a sane
range), the original audio is ducked while the dub speaks (gain ramps, not switches), and a
limiter keeps peaks under -1 dBFS. The result has the source's sample rate and channels and
lasts exactly as long as the picture (or the audio, for audio-only input).

Without source separation the original voices stay under the dub, only quieter; separating
speech from music (demucs) replaces this later.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from octavia_cli.audio import (
    ducking_envelope,
    fit_length,
    limit_peaks,
    place_clips,
    read_audio,
    to_channels,
    write_wav,
)
from octavia_cli.media import measure_loudness
from octavia_cli.model import stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project
from octavia_cli.stages.extract import SOURCE_WAV

MAX_GAIN_DB = 20.0


@dataclass(frozen=True)
class MixOptions:
    duck_db: float = -15.0  # gain of the original audio while the dub speaks


def stage_name(target: str) -> str:
    return f"mix:{target}"


def mix_path(target: str) -> str:
    return f"mix/dub.{target}.wav"


def voice_path(target: str) -> str:
    return f"mix/voice.{target}.wav"


def mix(project: Project, target: str, options: MixOptions, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    assert project.media is not None
    fits = [s.fits[target] for s in sorted(transcript.segments, key=lambda s: s.start_s)]
    duration = project.media.output_duration_s
    inputs = stable_hash(
        project.stages["extract"].inputs_hash, [f.key for f in fits], options.duck_db, duration
    )
    if project.is_current(stage_name(target), inputs) and project.path(mix_path(target)).exists():
        reporter.skipped()
        return
    began = time.monotonic()
    reporter.started(total=3)
    original, rate = read_audio(project.path(SOURCE_WAV))
    channels = original.shape[0]
    length = round(duration * rate)
    original = fit_length(original, length)

    voice, spans = place_clips(
        length,
        [
            (round(f.start_s * rate), read_audio(project.path(f.path), rate)[0])
            for f in fits
            if f.path
        ],
    )
    reporter.advance(1, 3)

    source_lufs = measure_loudness(original, rate)
    voice = to_channels(voice, channels)
    voice_lufs = measure_loudness(voice, rate)  # in the output's channel layout
    gain_db = 0.0
    if math.isfinite(source_lufs) and math.isfinite(voice_lufs):
        gain_db = float(np.clip(source_lufs - voice_lufs, -MAX_GAIN_DB, MAX_GAIN_DB))
    voice *= 10 ** (gain_db / 20)

    envelope = ducking_envelope(length, spans, rate, options.duck_db)
    mixed = limit_peaks(original * envelope + voice, rate)
    reporter.advance(2, 3)
    write_wav(project.path(voice_path(target)), limit_peaks(voice, rate), rate)
    write_wav(project.path(mix_path(target)), mixed, rate)
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        source_lufs=_round(source_lufs),
        voice_gain_db=round(gain_db, 2),
        duration_s=round(length / rate, 3),
    )
    reporter.done()


def _round(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None
