"""faster-whisper (CTranslate2 Whisper) with word timestamps and the Silero VAD filter.

It needs no alignment model, so it is the engine of the offline preset (with the bundled
multilingual base model) and a fast choice on CPU. The model is a faster-whisper size name
(downloaded from the hub into the standard cache unless offline), a local CTranslate2
folder, or ``bundled:NAME`` (see :mod:`octavia_cli.models`).
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.devices import resolve_device
from octavia_cli.errors import InputError, MissingDependencyError, MissingModelError
from octavia_cli.languages import language_name
from octavia_cli.model import Transcript, Word
from octavia_cli.models import BUNDLED_PREFIX, bundled_model_path, hub_cache_dir
from octavia_cli.progress import StageReporter
from octavia_cli.segmentation import split_into_lines

logger = logging.getLogger(__name__)


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, settings: Settings) -> None:
        self.model_spec = settings.asr.model
        self.device_setting = settings.general.device
        self.compute_type = settings.asr.compute_type
        self.beam_size = settings.asr.beam_size
        self.vad_filter = settings.asr.vad_filter
        self.cache_dir = settings.models.cache_dir
        self.offline = settings.offline
        self._model: Any = None

    def describe(self) -> str:
        return f"{self.name}:{self.model_spec}"

    # -- model location ------------------------------------------------------------------

    def _model_location(self) -> str:
        """A local folder for the model, or the hub name when it may still be downloaded."""
        spec = self.model_spec
        if spec.startswith(BUNDLED_PREFIX):
            return str(bundled_model_path(spec[len(BUNDLED_PREFIX) :], self.cache_dir))
        local = Path(spec).expanduser()
        if local.is_dir():
            if not (local / "model.bin").exists():
                raise MissingModelError(
                    f"{local} is not a CTranslate2 Whisper model (no model.bin).",
                    "Point asr.model at a folder made by ct2-transformers-converter.",
                )
            return str(local)
        if "/" in spec and (spec.startswith((".", "~")) or local.suffix):
            raise MissingModelError(
                f"The model folder {spec} does not exist.", "Check the path in asr.model."
            )
        try:
            from faster_whisper.utils import download_model
        except ImportError as exc:
            raise MissingDependencyError(
                "faster-whisper is not installed.", "pip install faster-whisper"
            ) from exc
        try:
            return download_model(spec, local_files_only=True, cache_dir=str(hub_cache_dir()))
        except ValueError as exc:  # an unknown size name
            raise MissingModelError(
                f"'{spec}' is not a Whisper model name: {exc}.",
                "Use e.g. large-v3, small, or a local folder.",
            ) from None
        except Exception:
            if self.offline:
                raise MissingModelError(
                    f"The Whisper model '{spec}' is not in the local cache and downloads are "
                    "off (offline).",
                    "Fetch it once on a machine with network access (it is cached in "
                    f"{hub_cache_dir()}), or use --preset offline.",
                ) from None
            return spec  # WhisperModel downloads it into the cache

    def check(self, language: str | None) -> None:
        resolve_device(self.device_setting)
        location = self._model_location()
        if language is not None:
            from faster_whisper.tokenizer import _LANGUAGE_CODES

            if language not in _LANGUAGE_CODES:
                raise InputError(
                    f"Whisper cannot transcribe {language_name(language)} ('{language}')."
                )
            if Path(location).is_dir() and _english_only(Path(location)) and language != "en":
                raise InputError(
                    f"The Whisper model {self.model_spec} is English-only and cannot "
                    f"transcribe {language_name(language)}.",
                    "Use a multilingual model (asr.model), e.g. bundled:whisper-base.",
                )

    def _load(self) -> Any:
        if self._model is None:
            from faster_whisper import WhisperModel

            device = resolve_device(self.device_setting)
            compute_type = self.compute_type
            if compute_type == "auto":
                compute_type = "float16" if device == "cuda" else "int8"
            location = self._model_location()
            logger.info("loading Whisper %s on %s (%s)", location, device, compute_type)
            try:
                self._model = WhisperModel(
                    location,
                    device=device,
                    compute_type=compute_type,
                    download_root=str(hub_cache_dir()) if not Path(location).is_dir() else None,
                    local_files_only=self.offline,
                )
            except Exception as exc:
                if Path(location).is_dir():
                    raise
                raise MissingModelError(
                    f"The Whisper model '{self.model_spec}' could not be downloaded: {exc}.",
                    "Check the network, or use --preset offline.",
                ) from None
        return self._model

    # -- transcription -------------------------------------------------------------------

    def transcribe(
        self, audio_16k_mono: Path, language: str | None, reporter: StageReporter
    ) -> Transcript:
        model = self._load()
        segments, info = model.transcribe(
            str(audio_16k_mono),
            language=language,
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=self.vad_filter,
            condition_on_previous_text=False,
        )
        total = max(info.duration, 1e-3)
        reporter.started(total=total, message="transcribing")
        words: list[Word] = []
        for segment in segments:  # a generator: decoding happens as we iterate
            for word in segment.words or []:
                words.append(
                    Word(
                        word.word,
                        round(float(word.start), 3),
                        round(float(word.end), 3),
                        round(float(word.probability), 3),
                    )
                )
            reporter.advance(min(float(segment.end), total), total)
        reporter.advance(total, total)
        return Transcript(
            language=info.language,
            language_probability=round(info.language_probability, 3),
            duration_s=round(info.duration, 3),
            engine=self.name,
            model=self.model_spec,
            segments=split_into_lines(words),
        )

    def close(self) -> None:
        self._model = None
        gc.collect()


def _english_only(folder: Path) -> bool:
    """English-only Whisper models (``*.en``) have a vocabulary of 51,864 tokens; the
    multilingual ones have 51,865 (51,866 for large-v3). Read it without loading weights."""
    try:
        with open(folder / "vocabulary.txt", "rb") as handle:
            return sum(1 for _ in handle) < 51865
    except OSError:
        return False
