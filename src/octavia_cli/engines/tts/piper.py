"""Piper: fast neural voices (VITS exported to ONNX), one ``.onnx`` file per voice.

Voices come from ``tts.voice`` (a path to a ``.onnx`` file with its ``.onnx.json`` beside it)
or from Python packages that carry one (see :mod:`octavia_cli.models.bundled`). Each voice speaks
the one language its config names.
"""

from __future__ import annotations

import functools
import json
import wave
from pathlib import Path
from typing import Any

from octavia_cli.engines.tts.base import SynthesisResult
from octavia_cli.errors import InputError, MissingDependencyError, MissingModelError
from octavia_cli.models.bundled import bundled_piper_voices


def _voice_language(model: Path) -> str | None:
    try:
        config = json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    code = (config.get("language") or {}).get("family") or (
        (config.get("espeak") or {}).get("voice", "").split("-")[0]
    )
    return code or None


@functools.lru_cache(maxsize=4)
def _load_voice(model: str) -> Any:
    try:
        from piper import PiperVoice
    except ImportError as exc:
        raise MissingDependencyError(
            "piper-tts is not installed.", "pip install piper-tts"
        ) from exc
    return PiperVoice.load(model)


# Takes after the first, as factors of the voice's own (noise_scale, noise_w_scale,
# length_scale): less noise first (steadier), then more, and a little slower.
TAKES = ((1.0, 1.0, 1.0), (0.6, 0.75, 1.0), (1.2, 1.25, 1.04), (0.4, 0.5, 1.06),
         (0.8, 1.5, 0.97), (0.5, 1.0, 1.08), (1.35, 0.6, 1.0), (0.7, 0.4, 1.03),
         (0.9, 1.2, 1.1), (0.3, 0.3, 1.0))  # fmt: skip


class PiperEngine:
    name = "piper"
    supports_speed = True  # its own rate (length_scale)
    cheap = True  # fast enough to synthesize a line twice

    def __init__(self, voice_file: str = "") -> None:
        self.voice_file = voice_file

    def voices(self) -> dict[str, Path]:
        """Voice files by path, with the user's own first."""
        found: list[Path] = []
        if self.voice_file:
            path = Path(self.voice_file).expanduser()
            if not path.exists():
                raise MissingModelError(
                    f"The Piper voice {path} does not exist.",
                    "Check tts.voice, or download the voice's .onnx and .onnx.json files.",
                )
            found.append(path)
        found.extend(bundled_piper_voices())
        return {str(p): p for p in found}

    def languages(self) -> set[str]:
        return {lang for p in self.voices().values() if (lang := _voice_language(p))}

    def voice_for(self, language: str, requested: str = "") -> str:
        candidates = [str(p) for p in self.voices().values() if _voice_language(p) == language]
        if requested:
            if requested in candidates:
                return requested
            raise InputError(f"The Piper voice {requested} does not speak '{language}'.")
        if not candidates:
            raise InputError(
                f"No Piper voice speaks '{language}'.",
                "Set tts.voice to a Piper .onnx voice for that language.",
            )
        return candidates[0]

    def voices_by_pitch(self, language: str, pitches: list[float | None]) -> list[str]:
        """A distinct Piper voice for each speaker, in the order the voices are found.

        Raises:
            InputError: fewer Piper voices speak ``language`` than there are speakers.
        """
        candidates = [str(p) for p in self.voices().values() if _voice_language(p) == language]
        if len(candidates) < len(pitches):
            raise InputError(
                f"{len(pitches)} speakers need distinct voices, and only {len(candidates)} "
                f"Piper voice(s) speak '{language}'.",
                "Give each speaker a voice (--voice S2=VOICE), or use --tts-engine espeak-ng.",
            )
        return candidates[: len(pitches)]

    def synthesize(
        self, text: str, language: str, voice: str, destination: Path, speed: float = 1.0,
        take: int = 0,
    ) -> SynthesisResult:  # fmt: skip
        """``take``: another way of saying a line that failed its check (0: the voice's
        own settings): the sampling noise of the voice (``noise_scale``) and of its
        durations (``noise_w_scale``) varied around the voice's values, and its length a
        little (:data:`TAKES`)."""
        from piper import SynthesisConfig

        piper_voice = _load_voice(voice)
        config = None
        if take or abs(speed - 1.0) > 1e-3:
            noise, noise_w, length = TAKES[take % len(TAKES)]
            own = piper_voice.config
            config = SynthesisConfig(
                length_scale=own.length_scale * length / speed,
                noise_scale=own.noise_scale * noise,
                noise_w_scale=own.noise_w_scale * noise_w,
            )
        with wave.open(str(destination), "wb") as wav:
            piper_voice.synthesize_wav(text, wav, syn_config=config)
        with wave.open(str(destination), "rb") as wav:
            return SynthesisResult(wav.getnframes() / wav.getframerate(), wav.getframerate())
