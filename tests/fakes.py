"""Cheap engines for the tests of the plumbing: one per engine Protocol.

A test that checks what the pipeline does *around* the engines (resuming, locking, batches,
outputs, the server's jobs, bad input) needs engines that behave like engines, not models
that take seconds to load and run on two cores. These do real, cheap work on the audio they
get, so every stage still runs on real files:

- the recogniser finds the speech with the product's own VAD and puts the next sentence of
  its script on each stretch of speech, the words spread over it;
- the diarizer gives the stretches of speech to ``speakers`` speakers in turn;
- the translator tags each text with its target language, passing its words through
  (and offers a candidate a word shorter);
- the speech engine writes a tone whose length follows the text, one burst per word (its
  pitch set by the voice and the word);
- the separator writes the source as the voices and a quiet copy as the background.

They are selected per test with the ``fake_engines`` fixture (``tests/conftest.py``), which
gives every runner built during the test these factories. The real engines are tested in
``tests/engines`` and run end to end in a few tests of the dub.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from octavia_cli.config import Settings
from octavia_cli.engines.asr.base import Recognition
from octavia_cli.engines.diarization.base import SpeakerCount, Turn
from octavia_cli.engines.tts.base import SynthesisResult
from octavia_cli.engines.vad import detect_speech
from octavia_cli.errors import InputError, MissingModelError
from octavia_cli.pipeline.runner import EngineFactories
from octavia_cli.project.records import Word

SCRIPT = (
    "Welcome to the city library.",
    "Today we talk about old books.",
    "The new room opens next week.",
    "Thank you for watching.",
)
LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt"})
SAMPLE_RATE_HZ = 22_050


@dataclass
class FakeRecognizer:
    script: tuple[str, ...] = SCRIPT
    language: str = "en"
    name: str = "fake-asr"
    calls: int = 0

    def describe(self) -> str:
        return f"fake-asr:{len(self.script)}-sentences"

    def check(self, language: str | None) -> None:
        if language is not None and language not in LANGUAGES:
            raise MissingModelError(
                f"The fake recogniser has no model for '{language}'.",
                f"It hears: {', '.join(sorted(LANGUAGES))}.",
            )

    def detect_language(self, audio_16k: np.ndarray) -> tuple[str, float]:
        return self.language, 0.99

    def recognize(
        self, audio_16k: np.ndarray, language: str, on_progress: Callable[[float], None]
    ) -> Recognition:
        self.calls += 1
        words: list[Word] = []
        for index, (start, end) in enumerate(detect_speech(audio_16k)):
            sentence = self.script[index % len(self.script)].split()
            weights = np.cumsum([0] + [len(w) + 1 for w in sentence], dtype=float)
            times = start + (end - start) * weights / weights[-1]
            for word, a, b in zip(sentence, times[:-1], times[1:], strict=True):
                words.append(Word(f" {word}", round(float(a), 3), round(float(b), 3), 0.95))
        on_progress(len(audio_16k) / 16_000)
        return Recognition(language, 0.99, words)

    def close(self) -> None:
        pass


@dataclass
class FakeDiarizer:
    speakers: int = 1
    name: str = "fake-diarizer"

    def describe(self) -> str:
        return f"fake-diarizer:{self.speakers}"

    def check(self) -> None:
        pass

    def diarize(
        self, audio_16k: Path, count: SpeakerCount, on_progress: Callable[[float, float], None]
    ) -> list[Turn]:
        audio, _ = soundfile.read(str(audio_16k), dtype="float32")
        people = count.exactly or max(count.minimum, min(self.speakers, count.maximum))
        turns = [
            Turn(start, end, f"voice{index % people}")
            for index, (start, end) in enumerate(detect_speech(audio))
        ]
        total = len(audio) / 16_000
        on_progress(total, total)
        return turns

    def close(self) -> None:
        pass


@dataclass
class FakeTranslator:
    name: str = "fake-mt"
    keeps_unknown_words: bool = True  # every word is unknown to it: glossary terms pass
    pairs: frozenset[str] = frozenset(
        f"{a}-{b}" for a in LANGUAGES for b in LANGUAGES if a != b
    )  # fmt: skip
    translated: list[str] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)  # a text's translation, when set

    def describe(self) -> str:
        return "fake-mt"

    def supported_pairs(self) -> list[str]:
        return sorted(self.pairs)

    def check_pair(self, source: str, target: str) -> None:
        if f"{source}-{target}" not in self.pairs:
            raise InputError(
                f"The fake translator cannot translate {source} to {target}.",
                f"Its pairs: {', '.join(self.supported_pairs())}.",
            )

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        self.check_pair(source, target)
        self.translated.extend(texts)
        return [
            self.replies.get(text, f"[{target}] {text}" if text.strip() else "") for text in texts
        ]

    def candidates(self, texts: list[str], source: str, target: str, count: int) -> list[list[str]]:
        best = self.translate(texts, source, target)
        shorter = [" ".join(t.split()[:2] + t.split()[3:]) if len(t.split()) > 3 else t
                   for t in best]  # a word less  # fmt: skip
        return [[b, s][:count] if s != b else [b] for b, s in zip(best, shorter, strict=True)]

    def close(self) -> None:
        pass


@dataclass
class FakeSpeech:
    name: str = "fake-tts"
    supports_speed: bool = True
    cheap: bool = True
    seconds_per_char: float = 0.06
    delay_s: float = 0.0  # time each synthesis takes (a slow engine, for queueing tests)
    spoken: list[tuple[str, str]] = field(default_factory=list)  # (voice, text)

    def languages(self) -> set[str]:
        return set(LANGUAGES)

    def voice_for(self, language: str, requested: str = "") -> str:
        if requested:
            if requested.partition("-")[2].isdigit():
                return requested
            raise InputError(f"The fake speech engine has no voice '{requested}'.")
        return f"{language}-1"

    def voices_by_pitch(self, language: str, pitches: list[float | None]) -> list[str]:
        return [f"{language}-{index + 1}" for index in range(len(pitches))]

    def synthesize(
        self,
        text: str,
        language: str,
        voice: str,
        destination: Path,
        speed: float = 1.0,
        take: int = 0,
    ) -> SynthesisResult:
        self.spoken.append((voice, text))
        if self.delay_s:
            time.sleep(self.delay_s)
        number = int(voice.partition("-")[2] or 1)
        words = text.split() or [""]
        pieces = [np.zeros(int(0.05 * SAMPLE_RATE_HZ), dtype=np.float32)]
        for word in words:
            seconds = max(0.12, (len(word) + 1) * self.seconds_per_char / speed)
            t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
            envelope = np.sin(np.pi * t / seconds) ** 0.5
            pitch = 110 + 40 * number + zlib.crc32(word.encode()) % 97  # words differ
            tone = 0.3 * envelope * np.sin(2 * math.pi * pitch * t)
            pieces += [tone.astype(np.float32), np.zeros(int(0.04 * SAMPLE_RATE_HZ), np.float32)]
        audio = np.concatenate(pieces)
        soundfile.write(str(destination), audio, SAMPLE_RATE_HZ, format="WAV", subtype="PCM_16")
        return SynthesisResult(len(audio) / SAMPLE_RATE_HZ, SAMPLE_RATE_HZ)

    def close(self) -> None:
        pass


@dataclass
class FakeSeparator:
    name: str = "fake-separation"

    def describe(self) -> str:
        return "fake-separation"

    def separate(
        self,
        source: Path,
        vocals: Path,
        background: Path,
        on_progress: Callable[[float, float], None],
    ) -> None:
        audio, rate = soundfile.read(str(source), dtype="float32", always_2d=True)
        soundfile.write(str(vocals), audio, rate, subtype="FLOAT")
        soundfile.write(str(background), audio * 0.05, rate, subtype="FLOAT")
        total = len(audio) / rate
        on_progress(total, total)

    def close(self) -> None:
        pass


@dataclass
class FakeEngines:
    """The engines a test's runners get, and what they were asked (one of each kind, made
    on demand and counted, like the real factories)."""

    recognizer: FakeRecognizer = field(default_factory=FakeRecognizer)
    diarizer: FakeDiarizer = field(default_factory=FakeDiarizer)
    translator: FakeTranslator = field(default_factory=FakeTranslator)
    speech: FakeSpeech = field(default_factory=FakeSpeech)
    separator: FakeSeparator = field(default_factory=FakeSeparator)
    # Kinds built by the real factories instead (an engine's own tests: "speech" for XTTS
    # dubs whose recognising and diarizing are not what is tested).
    real: set[str] = field(default_factory=set)

    def factories(self) -> EngineFactories:
        def diarizer(settings: Settings) -> FakeDiarizer | None:
            d = settings.diarization
            return None if d.engine == "none" or d.speakers == 1 else self.diarizer

        def separator(settings: Settings) -> FakeSeparator | None:
            return None if settings.separation.engine == "none" else self.separator

        fakes = EngineFactories(
            asr=lambda settings: self.recognizer,
            translator=lambda settings: self.translator,
            separator=separator,
            diarizer=diarizer,
            speech=lambda settings, language: self.speech,
            speech_name=lambda settings, language: "fake",
        )
        real = EngineFactories()

        def pick(kind: str, chosen_by: str | None = None) -> Callable:
            """The real or the fake factory of ``kind``, as ``real`` says when it is called
            (a test may change ``real`` after the fixture made the factories)."""
            return lambda *args: getattr(real if (chosen_by or kind) in self.real else fakes, kind)(
                *args
            )

        return EngineFactories(
            asr=pick("asr"),
            translator=pick("translator"),
            separator=pick("separator"),
            diarizer=pick("diarizer"),
            speech=pick("speech"),
            checker=lambda settings: real.checker(settings),  # the real recogniser
            speech_name=pick("speech_name", "speech"),
        )
