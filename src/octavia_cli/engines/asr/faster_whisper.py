"""faster-whisper (CTranslate2 Whisper) with word timestamps and the Silero VAD filter
(the speech chosen by :mod:`octavia_cli.engines.vad`).

It needs no alignment model, so it is the engine of the offline preset (with the bundled
multilingual base model) and a fast choice on CPU.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from octavia_cli.config import Settings
from octavia_cli.devices import release_memory, resolve_device, split_device
from octavia_cli.engines.asr.base import Recognition
from octavia_cli.engines.residency import ctranslate2_back, ctranslate2_to_cpu
from octavia_cli.engines.vad import SAMPLE_RATE_HZ, recognition_chunks
from octavia_cli.models.whisper import (
    check_whisper_language,
    compute_type_for,
    detect_language,
    download_errors,
    load_options,
    locate_whisper_model,
    resolve_model_name,
)
from octavia_cli.project.records import Word
from octavia_cli.workers import cores

logger = logging.getLogger(__name__)


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, settings: Settings) -> None:
        self.device_setting = settings.general.device
        self.model_spec = resolve_model_name(
            settings.asr.model, resolve_device(self.device_setting)
        )
        self.compute_type = settings.asr.compute_type
        self.beam_size = settings.asr.beam_size
        self.vad_filter = settings.asr.vad_filter
        self.cache_dir = settings.models.cache_dir
        self.offline = settings.offline
        self._model: Any = None
        self._loading = threading.Lock()

    @property
    def parallel_windows(self) -> int:
        """How many windows the transcribe stage may give at once. On a CPU, one per core
        (up to four), each decoded by one thread: CTranslate2 spreading one Whisper base
        decode over two threads was slower than one thread here (180 s of real speech in
        17.3 s against 15.0 s, 22 against 15 CPU seconds), so the cores go to windows."""
        if split_device(resolve_device(self.device_setting))[0] != "cpu":
            return 1
        return max(1, min(4, cores()))

    def describe(self) -> str:
        return f"{self.name}:{self.model_spec}"

    def check(self, language: str | None) -> None:
        resolve_device(self.device_setting)
        location = locate_whisper_model(self.model_spec, self.cache_dir, self.offline)
        check_whisper_language(location, self.model_spec, language)

    def _load(self) -> Any:
        with self._loading:  # windows recognised in parallel share one model
            return self._load_once()

    def _load_once(self) -> Any:
        if self._model is not None:
            self.to_device()  # back from CPU memory, if it was parked there
        if self._model is None:
            from faster_whisper import WhisperModel

            device, index = split_device(resolve_device(self.device_setting))
            compute_type = compute_type_for(self.compute_type, device, index)
            location = locate_whisper_model(self.model_spec, self.cache_dir, self.offline)
            logger.info("loading Whisper %s on %s (%s)", location, device, compute_type)
            threads = {}
            if device == "cpu":
                workers = self.parallel_windows
                threads = {"num_workers": workers, "cpu_threads": max(1, cores() // workers)}
            with download_errors(location, self.model_spec):
                self._model = WhisperModel(
                    location,
                    device=device,
                    device_index=index,
                    compute_type=compute_type,
                    **threads,
                    **load_options(location, self.offline),
                )
            release_memory()  # the load's buffers, before the windows' threads allocate
        return self._model

    def detect_language(self, audio_16k: np.ndarray) -> tuple[str, float]:
        """From the speech that :meth:`recognize` will hear (Octavia's VAD, which has
        already listened to this window by then), not from faster-whisper's own pass."""
        from faster_whisper.vad import collect_chunks

        chunks = recognition_chunks(audio_16k)
        speech = np.concatenate(collect_chunks(audio_16k, chunks)[0]) if chunks else audio_16k
        return detect_language(self._load(), speech, vad_filter=False)

    def recognize(
        self, audio_16k: np.ndarray, language: str, on_progress: Callable[[float], None],
        max_new_tokens: int | None = None,
    ) -> Recognition:  # fmt: skip
        """``max_new_tokens``: at most this many tokens per 30 s window (the line checks,
        which know what a window should say, so a window that loops on a word stops)."""
        model = self._load()
        chunks = None
        if self.vad_filter:  # faster-whisper's filter, with Octavia's VAD deciding the speech
            from faster_whisper.transcribe import restore_speech_timestamps
            from faster_whisper.vad import collect_chunks

            chunks = recognition_chunks(audio_16k)
            if not chunks:
                return Recognition(language, 1.0, [])
            audio_16k = np.concatenate(collect_chunks(audio_16k, chunks)[0])
        segments, info = model.transcribe(
            audio_16k,
            language=language,
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
            max_new_tokens=max_new_tokens,
        )
        if chunks:
            segments = restore_speech_timestamps(segments, chunks, SAMPLE_RATE_HZ)
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
            on_progress(float(segment.end))
        return Recognition(info.language, float(info.language_probability), words)

    @property
    def device(self) -> str:
        return resolve_device(self.device_setting)

    def to_cpu(self) -> None:
        """Park the weights in CPU memory (a kept engine between stages, on a GPU); they
        go back to the device when it next listens."""
        ctranslate2_to_cpu(getattr(self._model, "model", None))

    def to_device(self) -> None:
        ctranslate2_back(getattr(self._model, "model", None))

    def close(self) -> None:
        self._model = None
        gc.collect()
