"""Lip-sync: the mouth of a face re-drawn to speak other audio.

An engine works on square crops of the lower face, upright, at its own size, with the
audio that the mouth must say around each crop's time. What goes around it (shots, faces,
which face speaks, blending into the frame) is the stage's, in ``stages/lipsync.py``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

LIPSYNC_ENGINES = ("musetalk",)


class LipSyncEngine(Protocol):
    name: str
    crop_size: int  # the side of the square crops the engine takes and returns
    fps: float  # the frame rate the audio is read at (a crop's audio window is its frame's)

    def describe(self) -> str:
        """Engine, models and the options that change its output (for the inputs hash)."""

    def check(self) -> None:
        """Raise at once if the engine cannot run here (a missing package or model)."""

    def audio_features(self, audio_16k: np.ndarray) -> np.ndarray:
        """Features of ``audio_16k`` (mono, 16 kHz) at the engine's own audio rate; what
        :meth:`render` reads the windows of each frame from."""

    def render(self, crops: np.ndarray, features: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        """The crops (``N x S x S x 3`` uint8 RGB) re-drawn so each mouth says the audio
        around ``times_s`` (seconds from the start of ``features``); same shape."""

    def close(self) -> None:
        """Free the models (and the GPU memory they hold)."""
