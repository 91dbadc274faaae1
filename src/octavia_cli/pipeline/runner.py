"""Who owns the engines: one :class:`Runner` per run, per batch or per worker.

Every engine a dub uses (recogniser, separator, diarizer, translator, speech engine) is
built by the runner, once for a given settings section and device, and handed to the stages;
no stage builds one of its own. What happens to an engine when its stage is done depends on
who runs:

- a single CLI run (``keep=False``): the engine is closed as soon as its stage finishes, so
  on a GPU only one stage's models are ever in memory (a 12 GB card dubs a long video);
- a batch (``octavia dub episodes/*.mp3``) and each ``serve`` worker (``keep=True``): the
  engines stay built between files and jobs, so a model is loaded once, not once per file.
  On a GPU, an engine whose stage is over is *parked*: moved to CPU memory by
  ``to_cpu()`` where the engine has one (torch and CTranslate2 models), closed otherwise;
  the engine itself moves back to the GPU when it next does its work (not when a check
  asks for it: ``prepare`` looks at every engine before the first stage). So a card never
  holds two stages' models, and a worker still skips the load from disk.

One engine of each kind is alive at a time: asking for a different one (another model,
another device, another speech engine for the next language) closes the previous one. So a
dub never holds two speech engines, and a worker running two XTTS jobs builds XTTS once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.devices import release_memory, resolve_device
from octavia_cli.engines.asr import get_asr_engine
from octavia_cli.engines.asr.base import AsrEngine
from octavia_cli.engines.diarization import get_diarization_engine
from octavia_cli.engines.diarization.base import DiarizationEngine
from octavia_cli.engines.lipsync import get_lipsync_engine
from octavia_cli.engines.lipsync.base import LipSyncEngine
from octavia_cli.engines.mt import get_translation_engine
from octavia_cli.engines.mt.base import TranslationEngine
from octavia_cli.engines.separation import get_separation_engine
from octavia_cli.engines.separation.base import SeparationEngine
from octavia_cli.engines.tts import get_speech_engine, speech_engine_name
from octavia_cli.engines.tts.base import SpeechEngine
from octavia_cli.project.records import stable_hash

logger = logging.getLogger(__name__)

# The settings section each kind of engine is built from.
SECTIONS = {"asr": "asr", "qa": "asr", "mt": "mt", "separation": "separation",
            "diarization": "diarization", "speech": "tts", "lipsync": "lipsync"}  # fmt: skip
# Settings of those sections that a built engine does not hold (the stages read them per
# run): a job that changes only these reuses the kept engine. XTTS takes its voice per
# line; Piper's voice is its model, so for Piper the voice counts.
PER_RUN = {"mt": {"glossary", "length_control", "candidates"},
           "speech": {"min_similarity", "max_attempts", "voice_library", "match_voices",
                      "match_threshold", "save_voices"},
           "lipsync": {"enabled", "crf", "min_face_px"}}  # fmt: skip
PER_RUN_XTTS = {"voice"}


@dataclass(frozen=True)
class EngineFactories:
    """How each kind of engine is built from the settings: the engine packages' factories.
    A runner is given another set where a caller wants other engines for the same
    Protocols (the tests of the plumbing use cheap fakes: ``tests/fakes.py``)."""

    asr: Callable[[Settings], AsrEngine] = get_asr_engine
    translator: Callable[[Settings], TranslationEngine] = get_translation_engine
    separator: Callable[[Settings], SeparationEngine | None] = get_separation_engine
    diarizer: Callable[[Settings], DiarizationEngine | None] = get_diarization_engine
    speech: Callable[[Settings, str], SpeechEngine] = get_speech_engine
    speech_name: Callable[[Settings, str], str] = speech_engine_name
    checker: Callable[[Settings], AsrEngine] = get_asr_engine  # hears the dubbed lines
    lipsync: Callable[[Settings], LipSyncEngine] = get_lipsync_engine


# What a runner builds unless it is given other factories.
FACTORIES = EngineFactories()


class Runner:
    """Builds engines, keeps them for as long as its owner wants them, and frees them.

    Use it as a context manager (``with Runner() as runner:``): leaving it closes every
    engine it holds.
    """

    def __init__(self, *, keep: bool = False, factories: EngineFactories | None = None) -> None:
        self.keep = keep
        self.factories = factories or FACTORIES
        self._engines: dict[str, tuple[str, Any]] = {}
        self.built: Counter[str] = Counter()  # engines built, by kind (tests, metrics)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the engines ---------------------------------------------------------------------

    def asr(self, settings: Settings) -> AsrEngine:

        return self._get("asr", settings, lambda: self.factories.asr(settings))

    def checker(self, settings: Settings) -> AsrEngine:
        """The recogniser that hears the dubbed lines (the check stage): Whisper through
        faster-whisper with ``qa.model``. The transcription's own engine where that is the
        same (the offline preset), so a batch holds one copy."""
        heard = checker_settings(settings)
        transcribing = self._engines.get("asr")
        if (
            heard.asr == settings.asr and transcribing is not None
            and transcribing[0] == self._key("asr", settings)
            and self.factories.checker is self.factories.asr  # (not where a test swapped one)
        ):  # fmt: skip
            return transcribing[1]  # a batch's, kept: one copy of the model
        return self._get("qa", heard, lambda: self.factories.checker(heard))

    def translator(self, settings: Settings) -> TranslationEngine:

        return self._get("mt", settings, lambda: self.factories.translator(settings))

    def separator(self, settings: Settings) -> SeparationEngine | None:
        """demucs, or None with separation off."""

        if settings.separation.engine == "none":
            return None
        return self._get("separation", settings, lambda: self.factories.separator(settings))

    def diarizer(self, settings: Settings) -> DiarizationEngine | None:
        """The diarizer, or None when it is off or one speaker was asked for."""

        if settings.diarization.engine == "none" or settings.diarization.speakers == 1:
            return None
        return self._get("diarization", settings, lambda: self.factories.diarizer(settings))

    def lipsync(self, settings: Settings) -> LipSyncEngine:
        """The engine that re-draws mouths (``--lip-sync``)."""

        return self._get("lipsync", settings, lambda: self.factories.lipsync(settings))

    def speech(self, settings: Settings, language: str) -> SpeechEngine:
        """The engine that speaks ``language``: one for every language it speaks (XTTS), or
        the one the settings pick for this language (Piper where it has a voice)."""

        name = self.factories.speech_name(settings, language)
        return self._get("speech", settings, lambda: self.factories.speech(settings, language),
                         extra=name)  # fmt: skip

    # -- lifetimes -----------------------------------------------------------------------

    def release(self, engine: Any) -> None:
        """``engine``'s stage is done: close it (a single run), or keep it, parked off the
        GPU where it runs on one (a batch or a worker)."""
        if engine is None:
            return
        kind = next((k for k, (_, e) in self._engines.items() if e is engine), None)
        if kind is None:  # not ours (a caller's engine): leave it be
            return
        if not self.keep:
            del self._engines[kind]
            _close(engine)
            release_memory()
            return
        if _on_gpu(engine):
            if hasattr(engine, "to_cpu"):
                engine.to_cpu()
                logger.debug("parked the %s engine in CPU memory", kind)
            else:
                del self._engines[kind]
                _close(engine)

    def alive(self) -> dict[str, Any]:
        """The engines built and not closed, by kind."""
        return {kind: engine for kind, (_, engine) in self._engines.items()}

    def close(self) -> None:
        for _, engine in self._engines.values():
            _close(engine)
        self._engines.clear()

    def _key(self, kind: str, settings: Settings, extra: str = "") -> str:
        ignored = PER_RUN.get(kind, set()) | (PER_RUN_XTTS if extra == "xtts" else set())
        section = {name: value for name, value in
                   dataclasses.asdict(getattr(settings, SECTIONS[kind])).items()
                   if name not in ignored}  # fmt: skip
        return stable_hash(section, settings.general.device, settings.models.cache_dir,
                           settings.offline, extra)  # fmt: skip

    def _get(self, kind: str, settings: Settings, make: Callable[[], Any], extra: str = "") -> Any:
        key = self._key(kind, settings, extra)
        cached = self._engines.get(kind)
        if cached is not None and cached[0] == key:
            return cached[1]
        if cached is not None:
            del self._engines[kind]
            _close(cached[1])
        engine = make()
        self.built[kind] += 1
        self._engines[kind] = (key, engine)
        return engine


def checker_settings(settings: Settings) -> Settings:
    """``settings`` with the ``asr`` section of the check stage's recogniser: faster-whisper
    (word times without an alignment model, in any language Whisper knows), the model of
    ``qa.model`` (``auto``: the transcription's; whisperx uses the same CTranslate2
    Whisper models, so nothing more is downloaded). It decodes as the transcription does
    (beam 5, Whisper's fallback to higher temperatures): greedy decoding saved 8% of the
    time on espeak-ng's Spanish and raised its median CER from 0.19 to 0.25; without the
    fallback, its 95th percentile went from 0.50 to 0.81 (repetitions)."""
    model = settings.qa.model if settings.qa.model != "auto" else settings.asr.model
    asr = dataclasses.replace(settings.asr, engine="faster-whisper", model=model,
                              vad_filter=True)  # fmt: skip
    return dataclasses.replace(settings, asr=asr)


def shares_recogniser(settings: Settings) -> bool:
    """Whether the line checks hear with the transcription's own engine on the CPU (the
    offline preset), so that a dub may keep it loaded between the two."""
    return checker_settings(settings).asr == settings.asr and not str(
        resolve_device(settings.general.device)
    ).startswith("cuda")


@contextmanager
def runner_for(runner: Runner | None) -> Iterator[Runner]:
    """The caller's runner (left open), or one for this call alone (closed at its end)."""
    if runner is not None:
        yield runner
        return
    with Runner() as own:
        yield own


def _close(engine: Any) -> None:
    close = getattr(engine, "close", None)
    if close is not None:
        close()


def _on_gpu(engine: Any) -> bool:
    device = getattr(engine, "device", None)
    if device is None:
        return False
    try:
        return str(resolve_device(str(device))).startswith("cuda")
    except Exception:  # an engine's own device object: judge by its name
        return str(device).startswith("cuda")
