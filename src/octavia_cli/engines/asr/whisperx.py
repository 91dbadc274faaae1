"""whisperx: batched faster-whisper inference over VAD chunks, then forced alignment of
each chunk's text with a wav2vec2 CTC model for word times.

The Whisper model is found exactly as the faster-whisper engine finds it (hub name, local
folder or ``bundled:NAME``); the VAD is whisperx's pyannote segmentation model, whose
weights ship inside the whisperx wheel; the alignment model is whisperx's default for the
language (a torchaudio bundle or a Hugging Face model) unless ``asr.align_model`` names
one. Both stay loaded while a long file is walked chunk by chunk (together they take about
3.5 GB of GPU memory with large-v3 in float16) and are freed, with the CUDA cache, when the
stage ends, so the next stage has the GPU memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from octavia_cli.config import Settings, apply_library_environment
from octavia_cli.devices import release_memory, resolve_device, split_device
from octavia_cli.engines.asr.alignment import (
    AlignModel,
    align_words,
    check_align_model,
    load_align_model,
)
from octavia_cli.engines.asr.base import Recognition
from octavia_cli.engines.residency import ctranslate2_back, ctranslate2_to_cpu, torch_to
from octavia_cli.errors import MissingDependencyError
from octavia_cli.models.bundled import hub_cache_dir
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

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000


def _require_whisperx() -> None:
    try:
        import whisperx  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"The whisperx engine needs the whisperx package ({exc}).",
            "pip install 'octavia-cli[quality]', or use --engine faster-whisper.",
        ) from None


class WhisperXEngine:
    name = "whisperx"

    def __init__(self, settings: Settings) -> None:
        self.device_setting = settings.general.device
        self.model_spec = settings.asr.model
        self.compute_type = settings.asr.compute_type
        self.beam_size = settings.asr.beam_size
        self.batch_size = settings.asr.batch_size
        self.align_model_spec = settings.asr.align_model
        self.cache_dir = settings.models.cache_dir
        self.offline = settings.offline
        self.models = settings.models
        self._pipeline: Any = None
        self._aligner: AlignModel | None = None
        self._parked = False  # the models are in CPU memory until it next listens

    @property
    def device(self) -> str:
        return resolve_device(self.device_setting)

    @property
    def model_name(self) -> str:
        return resolve_model_name(self.model_spec, self.device)

    def describe(self) -> str:
        align = f"+align:{self.align_model_spec}" if self.align_model_spec else ""
        return f"{self.name}:{self.model_name}{align}"

    def check(self, language: str | None) -> None:
        _require_whisperx()
        location = locate_whisper_model(self.model_name, self.cache_dir, self.offline)
        check_whisper_language(location, self.model_name, language)
        if language is not None:
            check_align_model(self.align_model_spec, language, hub_cache_dir(), self.offline)

    def _load_pipeline(self) -> Any:
        """The whisperx pipeline: loaded once, for any language (given per call)."""
        if self._pipeline is not None:
            self.to_device()  # back from CPU memory, if it was parked there
            return self._pipeline
        apply_library_environment(self.models)  # its VAD is a pyannote model: no metrics
        import whisperx

        quiet_loggers()
        location = locate_whisper_model(self.model_name, self.cache_dir, self.offline)
        kind, index = split_device(self.device)
        compute_type = compute_type_for(self.compute_type, kind, index)
        logger.info("loading Whisper %s on %s (%s) for whisperx", location, self.device,
                    compute_type)  # fmt: skip
        with download_errors(location, self.model_name):
            self._pipeline = whisperx.load_model(
                location,
                kind,
                device_index=index,
                compute_type=compute_type,
                vad_method="pyannote",  # its weights ship in the whisperx wheel
                asr_options={"beam_size": self.beam_size},
                **load_options(location, self.offline),
            )
        return self._pipeline

    def detect_language(self, audio_16k: np.ndarray) -> tuple[str, float]:
        return detect_language(self._load_pipeline().model, audio_16k)

    def recognize(
        self, audio_16k: np.ndarray, language: str, on_progress: Callable[[float], None]
    ) -> Recognition:
        duration = len(audio_16k) / SAMPLE_RATE_HZ
        check_align_model(self.align_model_spec, language, hub_cache_dir(), self.offline)
        pipeline = self._load_pipeline()
        result = pipeline.transcribe(
            audio_16k,
            batch_size=self.batch_size,
            language=language,
            # Half the stage's progress for recognition, half for alignment.
            progress_callback=lambda percent: on_progress(duration * percent / 200),
        )
        segments = [s for s in result["segments"] if s["text"].strip()]
        aligner = self._load_aligner(language)
        words: list[Word] = []
        import torch

        waveform = torch.from_numpy(np.ascontiguousarray(audio_16k, dtype=np.float32))
        for index, segment in enumerate(segments):
            start, end = float(segment["start"]), min(float(segment["end"]), duration)
            piece = waveform[int(start * SAMPLE_RATE_HZ) : int(end * SAMPLE_RATE_HZ)]
            emission = aligner.emissions(piece.unsqueeze(0).to(self.device))
            words.extend(
                align_words(
                    segment["text"],
                    emission,
                    aligner.dictionary,
                    aligner.blank_id,
                    start,
                    end,
                    language,
                )
            )
            on_progress(duration / 2 + duration / 2 * (index + 1) / len(segments))
        return Recognition(language, 1.0, words)

    def _load_aligner(self, language: str) -> AlignModel:
        self.to_device()
        if self._aligner is None or self._aligner.language != language:
            self._aligner = None
            logger.info("loading the alignment model for '%s' on %s", language, self.device)
            apply_library_environment(self.models)  # a pytorch_model.bin: no conversion
            self._aligner = load_align_model(
                self.align_model_spec, language, self.device, hub_cache_dir(), self.offline
            )
        return self._aligner

    def to_cpu(self) -> None:
        """Park the recogniser's weights and the alignment model in CPU memory (a kept
        engine between stages, on a GPU); they go back to the device when it next
        listens."""
        whisper = getattr(self._pipeline, "model", None)
        ctranslate2_to_cpu(getattr(whisper, "model", None))
        torch_to(getattr(self._aligner, "model", None), "cpu")
        self._parked = True

    def to_device(self) -> None:
        if not self._parked:
            return
        whisper = getattr(self._pipeline, "model", None)
        ctranslate2_back(getattr(whisper, "model", None))
        torch_to(getattr(self._aligner, "model", None), self.device)
        self._parked = False

    def close(self) -> None:
        self._pipeline = None
        self._aligner = None

        release_memory()


def quiet_loggers() -> None:
    """Lightning announces a checkpoint upgrade each time the VAD loads: not ours to show."""
    for name in ("lightning", "lightning.pytorch", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
