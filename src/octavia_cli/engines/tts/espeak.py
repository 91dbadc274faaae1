"""espeak-ng, the formant synthesizer from Debian's packages: about a hundred languages,
no model file, very fast. Robotic next to neural voices, but it always works offline."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import soundfile

from octavia_cli.engines.tts.base import SynthesisResult
from octavia_cli.errors import InputError, MissingDependencyError, StageError
from octavia_cli.files import disk_full, is_disk_full
from octavia_cli.workers import cores


def _program() -> str:
    program = shutil.which("espeak-ng")
    if program is None:
        raise MissingDependencyError(
            "The program 'espeak-ng' is not installed.",
            "Install it (Debian/Ubuntu: sudo apt-get install espeak-ng).",
        )
    return program


@functools.lru_cache(maxsize=1)
def installed_voices() -> tuple[tuple[str, str, str], ...]:
    """``(iso639_1, espeak language tag, voice name)`` for every installed voice."""
    import langcodes

    result = subprocess.run([_program(), "--voices"], capture_output=True, text=True, check=False)
    voices = []
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        tag, name = fields[1], fields[3]
        try:
            code = langcodes.Language.get(langcodes.standardize_tag(tag, macro=True)).language
        except (ValueError, LookupError):
            continue
        if code and len(code) == 2:
            voices.append((code, tag, name))
    return tuple(voices)


# Voice variants that sound clearly different, in the order speakers get them.
MALE_VARIANTS = ("m3", "m1", "m7", "m2", "m4", "m5", "m6", "m8")
FEMALE_VARIANTS = ("f4", "f2", "f1", "f3", "f5")
LOW_VOICE_HZ = 165.0  # a speaker whose median pitch is below this gets a male variant


DEFAULT_WPM = 175  # espeak-ng's own default rate, in words a minute
DEFAULT_PITCH = 50
# How a line is spoken again when its take failed its check (take 0 is the default): the
# speaker's own voice and variant, a little slower or with gaps between words (clearer), the
# pitch moved a little. (rate factor, pitch, word gap in 10 ms units.)
TAKES = ((1.0, 50, 0), (0.92, 50, 1), (1.0, 42, 2), (0.86, 56, 0), (0.95, 46, 3),
         (0.9, 54, 2), (0.85, 50, 4), (1.0, 58, 1), (0.88, 44, 2), (0.93, 52, 5))  # fmt: skip


class EspeakEngine:
    name = "espeak-ng"
    supports_speed = True  # its own rate (-s), cheaper and cleaner than time-stretching
    cheap = True  # synthesizing a line twice costs next to nothing

    @property
    def parallel_lines(self) -> int:
        """Lines the synthesize stage may speak at once: each is a program of its own."""
        return min(4, cores())

    def voices_by_pitch(self, language: str, pitches: list[float | None]) -> list[str]:
        """A distinct voice for each speaker: the language's voice with a male variant for
        a low speaker, a female one for a high speaker (alternating when unknown)."""
        base = self.voice_for(language)
        pools = {True: list(MALE_VARIANTS), False: list(FEMALE_VARIANTS)}
        chosen = []
        for index, pitch in enumerate(pitches):
            low = pitch < LOW_VOICE_HZ if pitch is not None else index % 2 == 0
            pool = pools[low] or pools[not low]
            chosen.append(f"{base}+{pool.pop(0)}")
        return chosen

    def languages(self) -> set[str]:
        return {code for code, _, _ in installed_voices()}

    def voice_for(self, language: str, requested: str = "") -> str:
        voices = [v for v in installed_voices() if v[0] == language]
        if requested:
            voice, _, variant = requested.partition("+")  # es+f3: a voice with a variant
            if any(voice in (tag, name) for _, tag, name in installed_voices()) and (
                not variant or variant.replace("-", "").isalnum()
            ):
                return requested
            raise InputError(
                f"espeak-ng has no voice '{requested}'.", "List the voices with: espeak-ng --voices"
            )
        # Prefer the plain language tag (``es`` over ``es-419``).
        voices.sort(key=lambda v: (v[1] != language, len(v[1])))
        return voices[0][1] if voices else language

    def synthesize(
        self, text: str, language: str, voice: str, destination: Path, speed: float = 1.0,
        take: int = 0,
    ) -> SynthesisResult:  # fmt: skip
        """``take``: which of :data:`TAKES` (another way of saying a line that failed)."""
        rate, pitch, gap = TAKES[take % len(TAKES)]
        wpm = max(80, min(450, round(DEFAULT_WPM * speed * rate)))
        options = ["-p", str(pitch), "-g", str(gap)] if take else []
        # The WAV comes on stdout: espeak-ng cuts a long -w path at 199 bytes (and writes
        # there), so it is never given one.
        result = subprocess.run(
            [_program(), "-b", "1", "-v", voice, "-s", str(wpm), *options, "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        message = result.stderr.decode("utf-8", "replace").strip() or "no message"
        if result.returncode != 0 or len(result.stdout) <= WAV_HEADER_BYTES:
            raise StageError(
                f"espeak-ng made no speech with voice {voice}: {message}."
                if result.returncode == 0
                else f"espeak-ng failed on voice {voice}: {message}."
            )

        try:
            with open(destination, "wb") as handle:
                handle.write(_fix_wav_sizes(result.stdout))
        except OSError as exc:
            if is_disk_full(str(exc)):
                raise disk_full(destination) from exc
            raise
        info = soundfile.info(str(destination))
        return SynthesisResult(info.duration, info.samplerate)


WAV_HEADER_BYTES = 44


def _fix_wav_sizes(data: bytes) -> bytes:
    """espeak-ng cannot seek back on a pipe, so the RIFF and data sizes of the WAV it writes
    to stdout are placeholders (0x7ffff000); set them from the bytes we got."""
    import struct

    if data[:4] != b"RIFF" or data[36:40] != b"data":
        return data
    return (
        data[:4]
        + struct.pack("<I", len(data) - 8)
        + data[8:40]
        + struct.pack("<I", len(data) - WAV_HEADER_BYTES)
        + data[44:]
    )
