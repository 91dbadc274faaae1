"""Lay the fitted clips on a timeline and mix them over the original audio.

The dub track is brought to the loudness of the source (ITU-R BS.1770, clamped to a sane
range); the original audio goes under it through a sidechain compressor keyed by the dub
(ffmpeg ``sidechaincompress``, presets soft/standard/cinematic), so it dips while the dub
speaks and comes back smoothly in the pauses; the mix is brought to the target loudness
(the source's, or e.g. -16 / -23 LUFS) and limited to a true peak of -1 dBTP. The result
has the source's sample rate and channels and lasts exactly as long as the picture (or the
audio, for audio-only input). The ducked background is kept in the project for checking.

With source separation (demucs) the dub goes over the separated background, so the original
voices are gone and the music stays, ducked by the chosen preset. Without it the original
voices are still in the background, so it is ducked deeply (the ``deep`` preset) whatever
the preset, and the run's summary says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from octavia_cli.audio import (
    fit_length,
    limit_peaks,
    place_clips,
    read_audio,
    to_channels,
    write_wav,
)
from octavia_cli.errors import ConfigError
from octavia_cli.media import (
    DUCKING_PRESETS,
    NO_SEPARATION_DUCKING,
    measure_loudness,
    measure_true_peak,
    sidechain_duck,
)
from octavia_cli.model import stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project
from octavia_cli.stages.extract import SOURCE_WAV

MAX_GAIN_DB = 20.0
TRUE_PEAK_DB = -1.0


@dataclass(frozen=True)
class MixOptions:
    ducking: str = "standard"  # a DUCKING_PRESETS name
    loudness: str = "match"  # "match" (the source's) or a LUFS target such as "-16"

    def target_lufs(self, source_lufs: float) -> float | None:
        if self.loudness == "match":
            return source_lufs if math.isfinite(source_lufs) else None
        try:
            value = float(self.loudness)
        except ValueError:
            raise ConfigError(
                f"Setting 'mix.loudness' must be match or a number of LUFS, not {self.loudness!r}.",
                "For example: --loudness -16.",
            ) from None
        if not -40.0 <= value <= -5.0:
            raise ConfigError(f"A loudness of {value} LUFS is out of range (-40 to -5).")
        return value


def stage_name(target: str) -> str:
    return f"mix:{target}"


def mix_path(target: str) -> str:
    return f"mix/dub.{target}.wav"


def voice_path(target: str) -> str:
    return f"mix/voice.{target}.wav"


def background_path(target: str) -> str:
    return f"mix/background.{target}.wav"


def mix(project: Project, target: str, options: MixOptions, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    assert project.media is not None
    fits = [s.fits[target] for s in sorted(transcript.segments, key=lambda s: s.start_s)]
    duration = project.media.output_duration_s
    from octavia_cli.stages.separate import BACKGROUND_WAV, is_separated, speech_inputs

    separated = is_separated(project)
    ducking = options.ducking if separated else NO_SEPARATION_DUCKING
    inputs = stable_hash(
        project.stages["extract"].inputs_hash,
        speech_inputs(project),
        [f.key for f in fits],
        options.ducking,
        options.loudness,
        duration,
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
    under = original  # what goes under the dub: the separated background, if any
    if separated:
        under = fit_length(read_audio(project.path(BACKGROUND_WAV), rate)[0], length)

    voice, _spans = place_clips(
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

    if options.ducking not in DUCKING_PRESETS:
        raise ConfigError(f"Unknown ducking preset '{options.ducking}'.")
    background = sidechain_duck(under, voice, rate, ducking)
    background = fit_length(background, length)
    mixed = background + voice
    reporter.advance(2, 3)
    target_lufs = options.target_lufs(source_lufs)
    mixed_lufs = measure_loudness(mixed, rate)
    final_gain_db = 0.0
    if target_lufs is not None and math.isfinite(mixed_lufs):
        final_gain_db = float(np.clip(target_lufs - mixed_lufs, -MAX_GAIN_DB, MAX_GAIN_DB))
    scale = 10 ** (final_gain_db / 20)
    mixed = limit_peaks(mixed * scale, rate, ceiling_db=TRUE_PEAK_DB - 0.5)
    true_peak = measure_true_peak(mixed, rate)
    if true_peak > TRUE_PEAK_DB:  # inter-sample peaks the sample limiter could not see
        mixed = mixed * 10 ** ((TRUE_PEAK_DB - 0.1 - true_peak) / 20)
        true_peak = measure_true_peak(mixed, rate)
    write_wav(project.path(voice_path(target)), limit_peaks(voice * scale, rate), rate)
    write_wav(project.path(background_path(target)), limit_peaks(background * scale, rate), rate)
    write_wav(project.path(mix_path(target)), mixed, rate)
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        source_lufs=_round(source_lufs),
        target_lufs=_round(target_lufs) if target_lufs is not None else None,
        output_lufs=_round(measure_loudness(mixed, rate)),
        true_peak_dbtp=_round(true_peak),
        voice_gain_db=round(gain_db, 2),
        ducking=ducking,
        separated=separated,
        duration_s=round(length / rate, 3),
    )
    reporter.done()


def _round(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None
