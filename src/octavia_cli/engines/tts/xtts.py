"""Coqui XTTS v2 (package ``coqui-tts``): multilingual speech in a cloned voice.

The weights are under the Coqui Public Model Licence (non-commercial use); the engine does
nothing until the user has accepted it once (``tts.accept_license``) and never prompts.

A voice is a profile of the voice library (``octavia clone-voice``): its conditioning
latents were computed once from the references, so every line has the same voice. Text is
normalised by XTTS's own tokenizer (numbers, abbreviations and symbols read out per
language); text longer than the model's limit for the language is split at sentence, then
clause boundaries, and the pieces are joined with a short pause and no clicks. ``speed`` is
XTTS's own rate control, used before any time-stretching.

The weights are read, never written: the hub's ``model.pth`` pickles its ``XttsConfig``
(with classes under the module path they had in 2023), which coqui-tts 0.28's loader reads
only after failing once, and then saves the whole 1.87 GB file again in place, inside the
hub cache's content-addressed blob (an interrupted save leaves a file that never loads; a
read-only cache fails; two workers race). :func:`read_weights` unpickles it read-only with
those classes allowed, and the model takes the weights from there.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.config import Settings
from octavia_cli.devices import release_memory, resolve_device
from octavia_cli.engines.residency import TorchParking
from octavia_cli.engines.tts.base import SynthesisResult
from octavia_cli.errors import ConfigError, InputError, MissingDependencyError
from octavia_cli.languages import language_name
from octavia_cli.models import voices
from octavia_cli.models.catalog import XTTS_FILES, XTTS_REPO, XTTS_REVISION, hub_snapshot

logger = logging.getLogger(__name__)

HUB_ID = XTTS_REPO  # coqui/XTTS-v2, the catalog's xtts-v2
LICENSE = "Coqui Public Model Licence (non-commercial use only)"
SAMPLE_RATE_HZ = 24_000
PAUSE_S = 0.12  # between the pieces of a split text
FADE_S = 0.01
# The model's character limit per language (its tokenizer warns past these).
CHAR_LIMITS = {"en": 250, "de": 253, "fr": 273, "es": 239, "it": 213, "pt": 203, "pl": 224,
               "zh": 82, "ar": 166, "cs": 186, "ru": 182, "nl": 251, "tr": 226, "ja": 71,
               "hu": 224, "ko": 95, "hi": 150}  # fmt: skip
MODEL_LANGUAGES = {"zh": "zh-cn"}  # ISO 639-1 -> XTTS's code where they differ
# What XTTS's tokenizer imports to read a language's text (coqui-tts's extra of that name):
# each group is one need, met by any of its modules (cutlet's MeCab wants a dictionary).
LANGUAGE_EXTRAS: dict[str, tuple[tuple[str, ...], ...]] = {
    "zh": (("pypinyin",),),
    "ja": (("cutlet",), ("fugashi",), ("unidic_lite", "unidic")),
}
# Takes after the first (a line that failed its check): another sampling seed each, the
# sampling temperature lower every other take (steadier, less babble), and from the third
# take on the text spoken clause by clause (XTTS stops early or rambles on long inputs).
TAKE_SEED = 1000
TAKE_TEMPERATURES = (0.75, 0.6, 0.7, 0.5)
SENTENCE = re.compile(r"(?<=[.!?。！？])\s+")
CLAUSE = re.compile(r"(?<=[,;:，；：])\s+")


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at sentence ends, then clause ends, then
    spaces (never inside a word unless a word is longer than the limit)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    for sentence in SENTENCE.split(text):
        for part in CLAUSE.split(sentence) if len(sentence) > limit else [sentence]:
            while len(part) > limit:
                cut = part.rfind(" ", 0, limit + 1)
                cut = cut if cut > 0 else limit
                pieces.append(part[:cut].strip())
                part = part[cut:].strip()
            if part:
                pieces.append(part)
    merged: list[str] = []  # put short neighbours back together while they fit
    for piece in pieces:
        if merged and len(merged[-1]) + 1 + len(piece) <= limit:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def join_pieces(pieces: list[np.ndarray], sample_rate_hz: int) -> np.ndarray:
    """Concatenate with a short pause, each piece faded in and out over 10 ms (no clicks)."""
    fade = int(FADE_S * sample_rate_hz)
    pause = np.zeros(int(PAUSE_S * sample_rate_hz), dtype=np.float32)
    out: list[np.ndarray] = []
    for index, piece in enumerate(pieces):
        piece = piece.astype(np.float32).copy()
        if len(piece) > 2 * fade:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            piece[:fade] *= ramp
            piece[-fade:] *= ramp[::-1]
        if index:
            out.append(pause)
        out.append(piece)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def read_weights(path: Path) -> dict[str, Any]:
    """The state dict in an XTTS ``model.pth``, read without writing anything: the hub's
    original (a pickled ``XttsConfig`` beside the weights) or a converted one (a dict)."""
    import torch
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.configs.xtts_config import XttsArgs, XttsAudioConfig, XttsConfig

    allowed = [
        BaseDatasetConfig, XttsConfig, XttsArgs, XttsAudioConfig,
        # where the original checkpoint's pickle looks for them
        (XttsArgs, "TTS.tts.models.xtts.XttsArgs"),
        (XttsAudioConfig, "TTS.tts.models.xtts.XttsAudioConfig"),
    ]  # fmt: skip
    with torch.serialization.safe_globals(allowed):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint["model"]


def _read_only_model(config: Any) -> Any:
    """An ``Xtts`` whose checkpoint loading reads :func:`read_weights` (coqui's own loader
    re-saves the original file; everything else of ``load_checkpoint`` is coqui's)."""
    from TTS.tts.models.xtts import Xtts

    class ReadOnlyXtts(Xtts):  # type: ignore[misc]
        def _load_checkpoint(self, model_path: Path) -> dict[str, Any]:
            return read_weights(Path(model_path))

    return ReadOnlyXtts(config)


class XttsEngine(TorchParking):
    name = "xtts"

    def __init__(self, settings: Settings) -> None:
        self.model_spec = settings.tts.model or HUB_ID
        self.accepted = settings.tts.accept_license
        self.device_setting = settings.general.device
        self.offline = settings.offline
        self.speed = 1.0
        self._model: Any = None

    def check(self) -> None:
        if not self.accepted:
            raise ConfigError(
                f"The XTTS v2 voice model is under the {LICENSE}; Octavia uses it only once "
                "you have accepted that licence.",
                "Read https://coqui.ai/cpml, then: octavia config set tts.accept_license true",
            )
        try:
            import TTS  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "The xtts engine needs the coqui-tts package.",
                "pip install 'octavia-cli[quality]'",
            ) from None

    def languages(self) -> set[str]:
        return set(CHAR_LIMITS)

    supports_speed = True

    def check_language(self, language: str) -> None:
        """Raise if the modules XTTS needs to read ``language`` are not installed (it would
        fail on the first line, after recognition and translation)."""
        from importlib.util import find_spec

        missing = [group[0] for group in LANGUAGE_EXTRAS.get(language, ())
                   if all(find_spec(module) is None for module in group)]  # fmt: skip
        if missing:
            raise MissingDependencyError(
                f"XTTS reads {language_name(language)} with {' and '.join(missing)}, "
                "which the coqui-tts install here lacks.",
                f"pip install 'coqui-tts[{language}]==0.28.0' (octavia-cli[quality] has it).",
            )

    def voice_for(self, language: str, requested: str = "") -> str:
        """A stored voice (its name in the user's library, or its folder in another:
        :func:`octavia_cli.models.voices.library_of`); "" when none is given (a dub then
        clones each speaker from the source). Raises if ``language`` needs a coqui-tts
        extra not installed."""
        self.check_language(language)
        if not requested:
            return ""

        library, name = voices.library_of(requested)
        profile = library.load(name)
        if profile.engine != self.name:
            raise InputError(f"The voice '{requested}' was made for {profile.engine}, not xtts.")
        return requested

    def _location(self) -> Path:
        local = Path(self.model_spec).expanduser()
        if local.is_dir():
            return local
        # The catalog's model: its pinned commit, and only the files the model reads.
        catalog = self.model_spec == HUB_ID
        return hub_snapshot(
            self.model_spec, XTTS_REVISION if catalog else None,
            list(XTTS_FILES) if catalog else None, offline=self.offline,
            what=f"The XTTS model {self.model_spec}",
            hint="Fetch it once with network access, or use --preset offline.",
        )  # fmt: skip

    def _load(self) -> Any:
        self.to_device()  # back from CPU memory, if it was parked there
        if self._model is None:
            self.check()
            from TTS.tts.configs.xtts_config import XttsConfig

            folder = self._location()
            config = XttsConfig()
            config.load_json(str(folder / "config.json"))
            model = _read_only_model(config)
            model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)
            device = resolve_device(self.device_setting)
            logger.info("loaded XTTS from %s on %s", folder, device)
            self._model = model.to(device)
        return self._model

    def clone(self, references: list[Path]) -> dict[str, Any]:
        """Conditioning latents and speaker embedding of the references."""
        import torch

        model = self._load()
        with torch.inference_mode():
            latent, embedding = model.get_conditioning_latents(
                audio_path=[str(p) for p in references]
            )
        return {"gpt_cond_latent": latent.cpu(), "speaker_embedding": embedding.cpu()}

    def synthesize(
        self, text: str, language: str, voice: str, destination: Path,
        speed: float | None = None, take: int = 0,
    ) -> SynthesisResult:  # fmt: skip
        """``take``: another way of saying a line that failed its check (see
        :data:`TAKE_TEMPERATURES`); take 0 samples as the model's config says."""
        import soundfile
        import torch

        if not voice:
            raise InputError(
                "The xtts engine speaks in a cloned voice, and none was given.",
                "Clone one (octavia clone-voice NAME ref.wav), then pass --voice NAME.",
            )
        model = self._load()
        if voice.endswith(".pt") and Path(voice).exists():  # a dub's own clone of a speaker
            cond = torch.load(voice, map_location="cpu", weights_only=True)
        else:
            cond = voices.conditioning(voice)
        latent = cond["gpt_cond_latent"].to(model.device)
        embedding = cond["speaker_embedding"].to(model.device)
        pieces = []
        sampling = {}
        if take:
            torch.manual_seed(TAKE_SEED + take)
            sampling = {"temperature": TAKE_TEMPERATURES[take % len(TAKE_TEMPERATURES)]}
        with torch.inference_mode():
            for piece in self._pieces(model, text, language, by_clause=take >= 2):
                out = model.inference(
                    piece, MODEL_LANGUAGES.get(language, language), latent, embedding,
                    speed=speed or self.speed, **sampling,
                )  # fmt: skip
                pieces.append(np.asarray(out["wav"], dtype=np.float32).reshape(-1))
        audio = join_pieces(pieces, SAMPLE_RATE_HZ)
        soundfile.write(str(destination), audio, SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
        return SynthesisResult(len(audio) / SAMPLE_RATE_HZ, SAMPLE_RATE_HZ)

    @staticmethod
    def _pieces(model: Any, text: str, language: str, by_clause: bool = False) -> list[str]:
        """Pieces within the language's character limit and the model's token limit
        (halved again where the tokenizer makes more tokens than characters); with
        ``by_clause``, one piece per clause."""
        code = MODEL_LANGUAGES.get(language, language)
        limit = model.args.gpt_max_text_tokens

        def fits(piece: str) -> bool:
            return len(model.tokenizer.encode(piece.lower(), lang=code)) < limit

        characters = CHAR_LIMITS.get(language, 250)
        if by_clause:
            pending = [piece for sentence in SENTENCE.split(" ".join(text.split()))
                       for clause in CLAUSE.split(sentence)
                       for piece in split_text(clause, characters)]  # fmt: skip
        else:
            pending = split_text(text, characters)
        pieces: list[str] = []
        while pending:
            piece = pending.pop(0)
            if fits(piece) or len(piece) < 8:
                pieces.append(piece)
            else:
                pending[:0] = split_text(piece, max(len(piece) // 2, 4))
        return pieces

    @property
    def device(self) -> str:
        return resolve_device(self.device_setting)

    def _resident(self) -> tuple[Any, str]:
        return self._model, self.device

    def close(self) -> None:
        self._model = None

        release_memory()
