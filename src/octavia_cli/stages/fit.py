"""Fit each synthesized clip into the time slot of its source line.

Per line, in time order: trim the clip's own leading and trailing silence; if it is longer
than its slot, speed it up (Rubber Band, pitch kept) by at most ``max_speed``; if it is still
longer, let it run on into the silence that follows and record the overflow. Speech is never
cut. A line never starts before the previous dubbed line has ended (plus a small gap): if the
previous one ran over, this one starts late, and that shift is recorded too.

Timeline planning over whole stretches of lines (borrowing silence before a line, shorter
translation candidates, bounded shifts) is a later refinement; the records here already
carry what it needs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from octavia_cli.audio import read_audio, time_stretch, to_channels, trim_silence, write_wav
from octavia_cli.model import Fit, FitStatus, stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project

TOLERANCE_S = 0.01


@dataclass(frozen=True)
class FitOptions:
    max_speed: float = 1.3  # largest speed-up to fit a line into its slot
    gap_s: float = 0.05  # least silence kept between two dubbed lines


@dataclass(frozen=True)
class Placement:
    start_s: float
    end_s: float
    speed: float
    status: FitStatus
    overflow_s: float
    shift_s: float


def plan_line(
    slot_start_s: float,
    slot_end_s: float,
    clip_s: float,
    earliest_start_s: float,
    options: FitOptions,
) -> Placement:
    """Where and how fast a clip of ``clip_s`` seconds plays for the slot it dubs."""
    start = max(slot_start_s, earliest_start_s)
    shift = start - slot_start_s
    room = max(slot_end_s - start, 1e-3)
    speed = 1.0
    if clip_s > room + TOLERANCE_S:
        speed = min(clip_s / room, options.max_speed)
    length = clip_s / speed
    end = start + length
    overflow = max(0.0, end - slot_end_s)
    if overflow > TOLERANCE_S:
        status = FitStatus.OVERFLOW
    elif speed > 1.0:
        status = FitStatus.SPED_UP
    elif shift > TOLERANCE_S:
        status = FitStatus.PUSHED
    else:
        status = FitStatus.FITS
    return Placement(
        round(start, 3),
        round(end, 3),
        round(speed, 4),
        status,
        round(overflow if overflow > TOLERANCE_S else 0.0, 3),
        round(shift, 3),
    )


def fit_clip(
    audio: np.ndarray,
    sample_rate_hz: int,
    slot_start_s: float,
    slot_end_s: float,
    earliest_start_s: float,
    options: FitOptions,
) -> tuple[np.ndarray, Placement]:
    """Trim a clip's silence, plan its placement and time-stretch it: mono in, mono out.

    The returned placement's ``end_s`` is where the stretched audio really ends.
    """
    audio = trim_silence(to_channels(audio, 1), sample_rate_hz)
    placement = plan_line(
        slot_start_s, slot_end_s, audio.shape[1] / sample_rate_hz, earliest_start_s, options
    )
    fitted = time_stretch(audio, sample_rate_hz, placement.speed)
    end = round(placement.start_s + fitted.shape[1] / sample_rate_hz, 3)
    return fitted, dataclasses.replace(placement, end_s=end)


def stage_name(target: str) -> str:
    return f"fit:{target}"


def fit(project: Project, target: str, options: FitOptions, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    rate = project.stages["extract"].info["sample_rate_hz"]
    segments = sorted(transcript.segments, key=lambda s: s.start_s)
    began = time.monotonic()
    refitted = 0
    earliest = 0.0
    reporter.started(total=len(segments))
    for index, segment in enumerate(segments, start=1):
        clip = segment.clips[target]
        key = stable_hash(
            clip.key,
            segment.start_s,
            segment.end_s,
            round(earliest, 3),
            options.max_speed,
            options.gap_s,
            rate,
        )
        previous = segment.fits.get(target)
        if (
            previous is not None
            and previous.key == key
            and (not previous.path or project.path(previous.path).exists())
        ):
            earliest = previous.end_s + options.gap_s if previous.path else earliest
            reporter.advance(index, len(segments))
            continue
        refitted += 1
        if not clip.path:  # an empty line: keep its slot free
            segment.fits[target] = Fit(
                "",
                key,
                FitStatus.FITS.value,
                1.0,
                segment.start_s,
                segment.start_s,
                segment.start_s,
                segment.end_s,
            )
            continue
        audio, _ = read_audio(project.path(clip.path), rate)
        fitted, placement = fit_clip(audio, rate, segment.start_s, segment.end_s, earliest, options)
        relative = f"fitted/{target}/{segment.id}.wav"
        write_wav(project.path(relative), fitted, rate)
        segment.fits[target] = Fit(
            relative,
            key,
            placement.status.value,
            placement.speed,
            placement.start_s,
            placement.end_s,
            segment.start_s,
            segment.end_s,
            placement.overflow_s,
            placement.shift_s,
        )
        earliest = placement.end_s + options.gap_s
        reporter.advance(index, len(segments))
    inputs = stable_hash([s.fits[target].key for s in segments])
    if refitted == 0 and project.is_current(stage_name(target), inputs):
        reporter.skipped()
        return
    statuses = [s.fits[target].status for s in segments]
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        refitted=refitted,
        **{status.value: statuses.count(status.value) for status in FitStatus},
    )
    reporter.done(f"{refitted} lines fitted")
