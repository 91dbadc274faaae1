"""Placing a clip in its slot: the rules of the fit stage, and real Rubber Band stretching."""

from __future__ import annotations

import numpy as np
import pytest

from octavia_cli.model import FitStatus
from octavia_cli.stages.fit import FitOptions, fit_clip, plan_line

OPTIONS = FitOptions(max_speed=1.3)


def test_fits_at_natural_speed() -> None:
    p = plan_line(1.0, 3.0, 1.5, 0.0, OPTIONS)
    assert (p.start_s, p.end_s, p.speed, p.status) == (1.0, 2.5, 1.0, FitStatus.FITS)


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
