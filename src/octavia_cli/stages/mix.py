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
from pathlib import Path

import numpy as np

from octavia_cli.errors import ConfigError
from octavia_cli.files import atomic_path, writing
from octavia_cli.media.audio import dialogue_channels, read_audio
from octavia_cli.media.ffmpeg import (
    DUCKING_PRESETS,
    NO_SEPARATION_DUCKING,
    finish_mix,
    measure_file,
    render_mix,
)
from octavia_cli.media.loudness import ABSOLUTE_GATE_LUFS, LoudnessMeter
from octavia_cli.media.timeline import TimeMap
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import (
    BACKGROUND_WAV,
    SOURCE_WAV,
    is_separated,
    mix_path,
    speech_inputs,
)
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import MixInfo, stable_hash

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


def voice_path(target: str) -> str:
    return f"mix/voice.{target}.wav"


def background_path(target: str) -> str:
    return f"mix/background.{target}.wav"


def mix(project: Project, target: str, options: MixOptions, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    assert project.media is not None
    fits = [s.fits[target] for s in sorted(transcript.segments, key=lambda s: s.start_s)]

    timeline = TimeMap.from_list(project.stages[f"fit:{target}"].info.stretches)
    source_duration = project.media.output_duration_s
    duration = source_duration + timeline.added_s  # longer where the picture is slowed

    separated = is_separated(project)
    ducking = options.ducking if separated else NO_SEPARATION_DUCKING
    inputs = stable_hash(
        project.stages["extract"].inputs_hash,
        speech_inputs(project),
        [f.key for f in fits],
        options.ducking,
        options.loudness,
        duration,
        timeline.to_list(),
    )
    if project.is_current(stage_name(target), inputs) and project.path(mix_path(target)).exists():
        reporter.skipped()
        return
    began = time.monotonic()
    reporter.started(total=4)
    info = project.stages["extract"].info
    rate, channels = info.sample_rate_hz, info.channels
    length = round(duration * rate)
    seconds = length / rate
    under = project.path(BACKGROUND_WAV if separated else SOURCE_WAV)
    if options.ducking not in DUCKING_PRESETS:
        raise ConfigError(f"Unknown ducking preset '{options.ducking}'.")
    # Intermediates, swept up if a run is killed: the voice track at the clips' own level,
    # the mix before its final gain and limiter, and the ducked background.
    raw_voice, premix, ducked = (
        project.path(f"mix/.{name}.{target}.tmp.wav") for name in ("voice-raw", "premix", "ducked")
    )
    raw_voice.parent.mkdir(parents=True, exist_ok=True)
    try:
        with writing(raw_voice):
            voice_lufs = write_voice_track(
                raw_voice,
                [(round(f.start_s * rate), project.path(f.path)) for f in fits if f.path],
                rate, channels, length,
            )  # fmt: skip
        reporter.advance(1, 4)
        source_lufs = _source_loudness(project, source_duration)
        pieces = timeline.pieces(source_duration) if timeline.stretches else None
        gain_db = 0.0
        if math.isfinite(source_lufs) and math.isfinite(voice_lufs):
            gain_db = float(np.clip(source_lufs - voice_lufs, -MAX_GAIN_DB, MAX_GAIN_DB))
        mixed_lufs, _ = render_mix(
            under, raw_voice, {"mix": premix, "background": ducked}, seconds=seconds,
            voice_gain_db=gain_db, ducking=ducking, under_pieces=pieces,
        )  # fmt: skip
        reporter.advance(2, 4)
        target_lufs = options.target_lufs(source_lufs)
        final_gain_db = 0.0
        if target_lufs is not None and math.isfinite(mixed_lufs):
            final_gain_db = float(np.clip(target_lufs - mixed_lufs, -MAX_GAIN_DB, MAX_GAIN_DB))
        true_peak = float("inf")
        for _ in range(3):  # inter-sample peaks the limiter could not see: a little less gain
            with (
                atomic_path(project.path(mix_path(target))) as mixed,
                atomic_path(project.path(background_path(target))) as background,
                atomic_path(project.path(voice_path(target))) as voice,
            ):
                output_lufs, true_peak = finish_mix(
                    premix, ducked, raw_voice,
                    {"mix": mixed, "background": background, "voice": voice},
                    final_gain_db=final_gain_db, voice_gain_db=gain_db,
                    ceiling_db=TRUE_PEAK_DB - 0.5,
                )  # fmt: skip
            if true_peak <= TRUE_PEAK_DB:
                break
            final_gain_db -= true_peak - (TRUE_PEAK_DB - 0.2)
        reporter.advance(3, 4)
    finally:
        for path in (raw_voice, premix, ducked):
            path.unlink(missing_ok=True)
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        MixInfo(
            source_lufs=_round(source_lufs),
            target_lufs=_round(target_lufs) if target_lufs is not None else None,
            output_lufs=_round(output_lufs),
            true_peak_dbtp=_round(true_peak),
            voice_gain_db=round(gain_db, 2),
            ducking=ducking,
            separated=separated,
            duration_s=round(seconds, 3),
        ),
    )
    reporter.done()


BLOCK_S = 60.0


def _source_loudness(project: Project, seconds: float) -> float:
    """The source's integrated loudness over ``seconds``: as the extraction measured it,
    or measured now (a project from an earlier version, a truncated file)."""
    measured = project.stages["extract"].info.source_lufs
    if measured is not None:
        return float(measured) if measured > ABSOLUTE_GATE_LUFS else float("-inf")
    return measure_file(project.path(SOURCE_WAV), seconds=seconds)[0]


def write_voice_track(
    path: Path, clips: list[tuple[int, Path]], rate: int, channels: int, length: int
) -> float:
    """Lay the fitted clips (mono, at ``rate``) at their start samples on a track of
    ``length`` samples and ``channels`` channels, written a block at a time; clips of
    different speakers that overlap are summed. The voice goes where dialogue goes in the
    source's layout (:func:`dialogue_channels`). Returns the track's integrated loudness
    (LUFS; -inf for silence), measured as it is written."""
    import soundfile

    meter = LoudnessMeter(rate)

    ordered = sorted((start, clip, soundfile.info(str(clip)).frames) for start, clip in clips)
    block = round(BLOCK_S * rate)
    cache: dict[Path, np.ndarray] = {}
    with soundfile.SoundFile(str(path), "w", rate, channels, subtype="FLOAT", format="WAV") as out:
        for begin in range(0, length, block):
            end = min(begin + block, length)
            buffer = np.zeros(end - begin, dtype=np.float32)
            for start, clip, frames in ordered:
                if start >= end:
                    break
                if start + frames <= begin:
                    continue
                if clip not in cache:
                    cache.clear()  # keep only the clip that runs on into the next block
                    cache[clip] = read_audio(clip, rate)[0][0]
                audio = cache[clip]
                a, b = max(start, begin), min(start + len(audio), end)
                if b > a:
                    buffer[a - begin : b - begin] += audio[a - start : b - start]
            meter.add(buffer)
            frame = np.zeros((end - begin, channels), dtype=np.float32)
            frame[:, dialogue_channels(channels)] = buffer[:, None]
            out.write(frame)
    return meter.integrated(len(dialogue_channels(channels)))


def _round(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None
