"""Fit each synthesized clip into the time slot of its source line.

Per line, in time order: trim the clip's own leading and trailing silence; if it is longer
than its slot, speed it up (Rubber Band, pitch kept) by at most ``max_speed``; if it is still
longer, start it early in the silence before its slot (at most ``max_lead_s``), then let it
run on into the silence that follows and record the overflow. Speech is never cut or
dropped. A speaker's line never starts before that speaker's previous dubbed line has ended
(plus a small gap): if it ran over, this one starts late, and the shift is recorded; lines
of different speakers may overlap, as the speech did.

Shorter translations (the translate stage's length control) come first, so stretching and
borrowing only take up what is left. Each dub's timing report (``report/timing.LANG.json``)
lists every line's slot, duration, speed, shift and violations, with totals.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import numpy as np

from octavia_cli.files import atomic_write_bytes
from octavia_cli.media.audio import (
    read_audio,
    resample,
    time_stretch,
    to_channels,
    trim_silence,
    write_wav,
)
from octavia_cli.media.timeline import Stretch, TimeMap
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import timing_report_path
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import Fit, FitInfo, FitStatus, stable_hash

TOLERANCE_S = 0.01


@dataclass(frozen=True)
class FitOptions:
    max_speed: float = 1.3  # largest speed-up to fit a line into its slot
    min_speed: float = 0.9  # a short line is slowed down to fill its slot, this far at most
    gap_s: float = 0.05  # least silence kept between two dubbed lines
    max_lead_s: float = 0.3  # how far into the silence before its slot a line may start
    max_shift_s: float = 0.5  # a later start than this is reported as a violation
    allow_video_stretch: bool = False  # slow the picture for a line that fits no other way
    max_video_stretch: float = 1.25  # ...by at most this much


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
    room = max(slot_end_s - start, 1e-3)
    speed = 1.0
    if clip_s < (room - TOLERANCE_S) * 0.97 and options.min_speed < 1.0:
        # Short: slow it a little (within the band) so it fills its slot as the source did.
        speed = max(clip_s / (room * 0.97), options.min_speed)
    elif clip_s > room + TOLERANCE_S:
        speed = min(clip_s / room, options.max_speed)
        length = clip_s / speed
        if length > room + TOLERANCE_S:  # still too long: borrow the silence before the slot
            earliest_lead = max(earliest_start_s, slot_start_s - options.max_lead_s)
            start = min(start, max(earliest_lead, slot_end_s - length))
    shift = start - slot_start_s
    length = clip_s / speed
    end = start + length
    overflow = max(0.0, end - slot_end_s)
    if overflow > TOLERANCE_S:
        status = FitStatus.OVERFLOW
    elif speed > 1.0 + 1e-6 and shift >= -TOLERANCE_S:
        status = FitStatus.SPED_UP
    elif speed < 1.0 - 1e-6 and abs(shift) <= TOLERANCE_S:
        status = FitStatus.SLOWED
    elif shift < -TOLERANCE_S:
        status = FitStatus.BORROWED
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
    output_rate_hz: int | None = None,
) -> tuple[np.ndarray, Placement]:
    """Trim a clip's silence, plan its placement and time-stretch it: mono in, mono out,
    at ``output_rate_hz`` if given (stretched at the clip's own rate first: a 22 kHz voice
    costs Rubber Band half what it does at 48 kHz).

    The returned placement's ``end_s`` is where the stretched audio really ends.
    """
    audio = trim_silence(to_channels(audio, 1), sample_rate_hz)
    placement = plan_line(
        slot_start_s, slot_end_s, audio.shape[1] / sample_rate_hz, earliest_start_s, options
    )
    fitted = time_stretch(audio, sample_rate_hz, placement.speed)
    rate = sample_rate_hz
    if output_rate_hz is not None and output_rate_hz != sample_rate_hz:
        fitted, rate = resample(fitted, sample_rate_hz, output_rate_hz), output_rate_hz
    end = round(placement.start_s + fitted.shape[1] / rate, 3)
    return fitted, dataclasses.replace(placement, end_s=end)


def stage_name(target: str) -> str:
    return f"fit:{target}"


def video_stretch_for(
    slot_s: float, slot_start_s: float, earliest_s: float, fitted_s: float, limit: float
) -> float:
    """How much to slow the picture over a slot of ``slot_s`` seconds so that a line of
    ``fitted_s`` seconds (already at the fastest speed allowed) fits in it, starting no
    earlier than ``earliest_s``: at most ``limit``."""
    lost = max(0.0, earliest_s - slot_start_s)  # the slot's start taken by the line before
    needed = (fitted_s + lost) / max(slot_s, 1e-3)
    return round(min(max(needed, 1.0), limit), 4)


def fit(project: Project, target: str, options: FitOptions, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    rate = project.stages["extract"].info.sample_rate_hz
    segments = sorted(transcript.segments, key=lambda s: s.start_s)
    began = time.monotonic()
    refitted = 0
    voice_of = project.speaker_groups()  # merged speakers share one voice, one line at a time
    earliest_by_speaker: dict[str, float] = {}
    timeline = TimeMap()
    reporter.started(total=len(segments))
    for index, segment in enumerate(segments, start=1):
        clip = segment.clips[target]
        speaker = voice_of.get(segment.speaker, segment.speaker)
        earliest = earliest_by_speaker.get(speaker, 0.0)
        slot_start, slot_end = (
            timeline.to_output(segment.start_s),
            timeline.to_output(segment.end_s),
        )
        key = stable_hash(
            clip.key,
            clip.take,
            clip.path,
            segment.start_s,
            segment.end_s,
            round(slot_start, 3),
            round(earliest, 3),
            options.max_speed,
            options.min_speed,
            options.gap_s,
            options.max_lead_s,
            options.allow_video_stretch,
            options.max_video_stretch,
            rate,
        )
        previous = segment.fits.get(target)
        if (
            previous is not None
            and previous.key == key
            and (not previous.path or project.path(previous.path).exists())
        ):
            if previous.path:
                earliest_by_speaker[speaker] = previous.end_s + options.gap_s
            if previous.stretch > 1.0:
                timeline.add(Stretch(segment.start_s, segment.end_s, previous.stretch))
            reporter.advance(index, len(segments))
            continue
        refitted += 1
        if not clip.path:  # an empty line: keep its slot free
            segment.fits[target] = Fit(
                "", key, FitStatus.FITS.value, 1.0, slot_start, slot_start, segment.start_s,
                segment.end_s,
            )  # fmt: skip
            continue
        audio, clip_rate = read_audio(project.path(clip.path))
        # The engine's own rate already moved the line this far from the speaker's pace:
        # the band (min_speed..max_speed) bounds the two together.
        engine_factor = clip.tts_speed / clip.pace if clip.pace else 1.0
        line_options = dataclasses.replace(
            options,
            max_speed=max(1.0, options.max_speed / engine_factor),
            min_speed=min(1.0, options.min_speed / engine_factor),
        )
        fitted, placement = fit_clip(
            audio, clip_rate, slot_start, slot_end, earliest, line_options, rate
        )
        stretch = 1.0
        if placement.overflow_s > TOLERANCE_S and options.allow_video_stretch:
            # Nothing else fits it: slow the picture over its slot, as little as needed.
            stretch = video_stretch_for(
                segment.end_s - segment.start_s, slot_start, earliest,
                placement.end_s - placement.start_s, options.max_video_stretch,
            )  # fmt: skip
            timeline.add(Stretch(segment.start_s, segment.end_s, stretch))
            slot_end = timeline.to_output(segment.end_s)
            fitted, placement = fit_clip(
                audio, clip_rate, slot_start, slot_end, earliest, line_options, rate
            )
        total = placement.speed * engine_factor
        if options.max_speed < total < options.max_speed + 0.01:  # rounding of the rate
            total = options.max_speed
        placement = dataclasses.replace(placement, speed=round(total, 4))
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
            round(placement.start_s - slot_start, 3),
            round(stretch, 4),
        )
        earliest_by_speaker[speaker] = placement.end_s + options.gap_s
        reporter.advance(index, len(segments))
    inputs = stable_hash([s.fits[target].key for s in segments])
    if refitted == 0 and project.is_current(stage_name(target), inputs):
        reporter.skipped()
        return
    report = timing_report(segments, target, options, timeline)
    atomic_write_bytes(
        project.path(timing_report_path(target)),
        json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8"),
    )
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        FitInfo(
            refitted=refitted,
            report=timing_report_path(target),
            stretches=timeline.to_list(),
            added_s=round(timeline.added_s, 3),
            totals=report["totals"],
        ),
    )
    reporter.done(f"{refitted} lines fitted")


def timing_report(
    segments: list, target: str, options: FitOptions, timeline: TimeMap | None = None
) -> dict:
    """Per line: slot (on the output's timeline, and in the source), dub duration, speed,
    shift, picture stretch, violations; and totals."""
    timeline = timeline or TimeMap()
    lines = []
    for segment in segments:
        fit_record = segment.fits[target]
        slot_start = timeline.to_output(fit_record.slot_start_s)
        slot_end = timeline.to_output(fit_record.slot_end_s)
        slot = slot_end - slot_start
        duration = fit_record.end_s - fit_record.start_s
        violations = []
        if fit_record.overflow_s > 0:
            violations.append(f"runs {fit_record.overflow_s:.2f} s past its slot")
        if fit_record.shift_s > options.max_shift_s:
            violations.append(f"starts {fit_record.shift_s:.2f} s late")
        if fit_record.speed > options.max_speed + 1e-3:
            violations.append(f"speed {fit_record.speed:.2f}x over the limit")
        translation = segment.translations.get(target)
        lines.append(
            {
                "id": segment.id,
                "speaker": segment.speaker,
                "slot_start_s": round(slot_start, 3),
                "slot_end_s": round(slot_end, 3),
                "source_start_s": fit_record.slot_start_s,
                "source_end_s": fit_record.slot_end_s,
                "video_stretch": fit_record.stretch,
                "start_s": fit_record.start_s,
                "end_s": fit_record.end_s,
                "dub_s": round(duration, 3),
                "slot_s": round(slot, 3),
                "speed": fit_record.speed,
                "shift_s": fit_record.shift_s,
                "status": fit_record.status,
                "violations": violations,
                "source": segment.text,
                "text": translation.text if translation else "",
                "fallback": translation.fallback if translation else "",
            }
        )
    spoken = [line for line in lines if line["dub_s"] > 0]
    within = [line for line in spoken if abs(line["dub_s"] / max(line["slot_s"], 1e-3) - 1) <= 0.1]
    totals = {
        "lines": len(lines),
        "within_10_percent": len(within),
        "within_10_percent_share": round(len(within) / len(spoken), 3) if spoken else 1.0,
        "max_speed": max((line["speed"] for line in lines), default=1.0),
        "sped_up": sum(line["speed"] > 1.0 for line in lines),
        "slowed": sum(line["speed"] < 1.0 for line in lines),
        "borrowed": sum(line["shift_s"] < 0 for line in lines),
        "late": sum(line["shift_s"] > options.max_shift_s for line in lines),
        "overflowing": sum(line["status"] == FitStatus.OVERFLOW.value for line in lines),
        "violations": sum(bool(line["violations"]) for line in lines),
        "video_stretched": sum(line["video_stretch"] > 1.0 for line in lines),
        "video_added_s": round(timeline.added_s, 3),
        # Lines whose translation was unusable: spoken in their source words, or said by a
        # neighbouring line of their sentence (none is silently dropped).
        "from_source": sum(line["fallback"] == "source" for line in lines),
        "merged": sum(line["fallback"] == "merged" for line in lines),
    }
    return {"language": target, "max_speed_allowed": options.max_speed, "totals": totals,
            "video_stretches": timeline.to_list(), "lines": lines}  # fmt: skip
