"""Speech from text alone (``octavia synthesize``): lines spoken by the voice of a language
and laid on one track, each fitted into its time slot when it has one."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.media.audio import place_clips, read_audio
from octavia_cli.pipeline.runner import Runner, runner_for
from octavia_cli.pipeline.steps import choose_voice
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.stages.fit import FitOptions, fit_clip

# A line to speak: its text and, for a timed line (a translation's JSON), its slot.
Line = tuple[str, float | None, float | None]


def speak_lines(
    lines: list[Line], target: str, settings: Settings, hook: ProgressHook,
    runner: Runner | None = None,
) -> tuple[Any, int]:  # fmt: skip
    """The track (channels, samples) and its rate: untimed lines one after another, timed
    ones each fitted into its slot (sped up within ``fit.max_speed``, never overlapping)."""
    options = FitOptions(max_speed=settings.fit.max_speed, min_speed=settings.fit.min_speed)
    reporter = StageReporter(hook, f"synthesize:{target}")
    with runner_for(runner) as run, tempfile.TemporaryDirectory(prefix="octavia-") as scratch:
        engine, voice = choose_voice(run, settings, target)
        reporter.started(total=len(lines))
        placed: list[tuple[float, Any]] = []
        rate = 0
        earliest = 0.0
        for index, (text, start_s, end_s) in enumerate(lines, start=1):
            clip_path = Path(scratch) / f"{index:05d}.wav"
            engine.synthesize(text, target, voice, clip_path)
            audio, rate = read_audio(clip_path, rate or None)
            if start_s is None or end_s is None:  # untimed text: one line after another
                placed.append((earliest, audio[:1]))
                earliest += audio.shape[1] / rate
                continue
            fitted, placement = fit_clip(audio, rate, start_s, end_s, earliest, options)
            placed.append((placement.start_s, fitted))
            earliest = placement.end_s + options.gap_s
            reporter.advance(index, len(lines))
        end = max(
            [start + clip.shape[1] / rate for start, clip in placed]
            + [end for _, _, end in lines if end is not None]
        )
        track, _ = place_clips(
            round(end * rate), [(round(start * rate), clip) for start, clip in placed]
        )
    return track, rate
