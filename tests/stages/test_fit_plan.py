"""Placing a clip in its slot: the rules of the fit stage, and real Rubber Band stretching."""

from __future__ import annotations

import numpy as np
import pytest

from octavia_cli.project.records import FitStatus
from octavia_cli.stages.fit import FitOptions, fit_clip, plan_line

OPTIONS = FitOptions(max_speed=1.3)


def test_fits_at_natural_speed() -> None:
    p = plan_line(1.0, 3.0, 1.95, 0.0, OPTIONS)  # within 3% of its slot: left as it is
    assert (p.start_s, p.end_s, p.speed, p.status) == (1.0, 2.95, 1.0, FitStatus.FITS)


def test_a_short_line_is_slowed_to_fill_its_slot_within_the_band() -> None:
    p = plan_line(1.0, 3.0, 1.8, 0.0, OPTIONS)  # 0.9 of its slot: slowed, not past 0.9x
    assert p.status is FitStatus.SLOWED and 0.9 <= p.speed < 1.0
    assert p.end_s <= 3.0 and p.end_s - p.start_s == pytest.approx(1.8 / p.speed, abs=1e-3)
    p = plan_line(1.0, 3.0, 1.0, 0.0, OPTIONS)  # half its slot: 0.9x at most
    assert p.speed == pytest.approx(0.9) and p.end_s == pytest.approx(1.0 + 1.0 / 0.9, abs=1e-3)
    p = plan_line(1.0, 3.0, 1.0, 0.0, FitOptions(max_speed=1.3, min_speed=1.0))  # off
    assert p.speed == 1.0 and p.status is FitStatus.FITS


def test_sped_up_within_bound() -> None:
    p = plan_line(1.0, 3.0, 2.4, 0.0, OPTIONS)
    assert p.status is FitStatus.SPED_UP and p.speed == pytest.approx(1.2)
    assert p.end_s == pytest.approx(3.0) and p.overflow_s == 0


def test_overflow_runs_into_following_silence_never_cut() -> None:
    p = plan_line(1.0, 3.0, 3.0, 1.0, OPTIONS)  # no silence before the slot to borrow
    assert p.status is FitStatus.OVERFLOW and p.speed == 1.3
    assert p.end_s == pytest.approx(1.0 + 3.0 / 1.3, abs=1e-3)
    assert p.overflow_s == pytest.approx(p.end_s - 3.0, abs=1e-3)


def test_a_line_that_fits_only_by_borrowing_the_silence_before_it() -> None:
    # 2.8 s at 1.3x is 2.154 s for a 2 s slot: it starts 0.154 s early, at full speed-up.
    p = plan_line(1.0, 3.0, 2.8, 0.0, OPTIONS)
    assert p.status is FitStatus.BORROWED and p.speed == 1.3
    assert p.start_s == pytest.approx(3.0 - 2.8 / 1.3, abs=1e-3) and p.end_s == pytest.approx(3.0)
    assert -OPTIONS.max_lead_s <= p.shift_s < 0 and p.overflow_s == 0
    # Never earlier than the previous line allows, nor more than max_lead_s.
    p = plan_line(1.0, 3.0, 3.5, 0.9, OPTIONS)
    assert p.start_s == 0.9 and p.status is FitStatus.OVERFLOW
    p = plan_line(1.0, 3.0, 3.5, 0.0, OPTIONS)
    assert p.start_s == pytest.approx(0.7)


def test_pushed_when_previous_line_ran_over() -> None:
    p = plan_line(1.0, 3.0, 1.0, 1.4, OPTIONS)
    assert p.status is FitStatus.PUSHED and p.start_s == 1.4 and p.shift_s == pytest.approx(0.4)


def test_fit_clip_trims_and_stretches_for_real() -> None:
    rate = 16_000
    t = np.arange(int(2.0 * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    clip = np.concatenate([np.zeros(rate // 2, np.float32), tone, np.zeros(rate // 2, np.float32)])[
        None, :
    ]
    fitted, placement = fit_clip(clip, rate, 0.0, 1.6, 0.0, OPTIONS)
    assert placement.status is FitStatus.SPED_UP
    # Silence trimmed (2 s of tone left), then sped up 2.0/1.6 = 1.25x by Rubber Band.
    assert fitted.shape[1] / rate == pytest.approx(1.6, abs=0.06)
    assert placement.end_s == pytest.approx(fitted.shape[1] / rate, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(fitted[0]))
    assert np.fft.rfftfreq(fitted.shape[1], 1 / rate)[spectrum.argmax()] == pytest.approx(
        220, abs=5
    )


def test_timeline_of_picture_stretches() -> None:
    from octavia_cli.media.timeline import Stretch, TimeMap

    timeline = TimeMap([Stretch(2.0, 4.0, 1.25)])  # 2 s played in 2.5 s
    assert timeline.to_output(1.0) == 1.0
    assert timeline.to_output(3.0) == pytest.approx(3.25)
    assert timeline.to_output(6.0) == pytest.approx(6.5)  # everything after moves 0.5 s
    assert timeline.pieces(8.0) == [(0.0, 2.0, 1.0), (2.0, 4.0, 1.25), (4.0, 8.0, 1.0)]
    assert TimeMap.from_list(timeline.to_list()).to_output(6.0) == pytest.approx(6.5)


def test_a_line_that_needs_the_picture_slowed() -> None:
    from octavia_cli.stages.fit import video_stretch_for

    # 3.0 s of speech for a 2 s slot: 1.3x gives 2.31 s, still too long (no silence to
    # borrow); slowing the picture over the slot by 2.31 / 2 = 1.154 makes it fit.
    p = plan_line(1.0, 3.0, 3.0, 1.0, OPTIONS)
    assert p.status is FitStatus.OVERFLOW
    factor = video_stretch_for(2.0, 1.0, 1.0, p.end_s - p.start_s, 1.25)
    assert factor == pytest.approx(3.0 / 1.3 / 2.0, abs=1e-3)
    p = plan_line(1.0, 1.0 + 2.0 * factor, 3.0, 1.0, OPTIONS)
    assert p.overflow_s == 0 and p.speed == pytest.approx(1.3, abs=1e-3)
    # Never more than the limit, and nothing when it already fits.
    assert video_stretch_for(1.0, 0.0, 0.0, 5.0, 1.25) == 1.25
    assert video_stretch_for(2.0, 0.0, 0.0, 1.5, 1.25) == 1.0
