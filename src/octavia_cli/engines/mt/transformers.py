"""Neural translation with Hugging Face transformers: OPUS-MT (MarianMT) for the pairs that
have a model, M2M100 or NLLB-200 for the rest (see ``catalog``).

Batched beam search, in float16 on CUDA; ``candidates`` returns the n best beams per text
(best first) for length control and glossary checks. A multi-target OPUS-MT model (en-zh,
en-ar) gets its target label (``>>cmn_Hans<<``) at the start of every text. ``mt.model`` is
``auto``, a catalog name (``nllb-600m``), a hub id, or a local folder saved with
``save_pretrained``; the model family (marian, m2m_100, nllb) is read from the folder's
config and tokenizer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings, apply_library_environment
from octavia_cli.devices import release_memory, resolve_device
from octavia_cli.engines.residency import torch_to
from octavia_cli.errors import InputError, MissingDependencyError, MissingModelError
from octavia_cli.languages import language_name
from octavia_cli.models.bundled import hub_cache_dir
from octavia_cli.models.translation import (
    MAIN,
    MANY_TO_MANY,
    OPUS_MT_PAIRS,
    MtModel,
    choose,
    marian_target_label,
    nllb_code,
)

logger = logging.getLogger(__name__)

MAX_INPUT_TOKENS = 512


class TransformersEngine:
    name = "transformers"

    def __init__(self, settings: Settings) -> None:
        self.model_setting = settings.mt.model
        self.device_setting = settings.general.device
        self._parked = False  # the models are in CPU memory until it next translates
        self.batch_size = settings.mt.batch_size
        self.beams = settings.mt.beams
        self.offline = settings.offline
        self.models = settings.models
        self._loaded: dict[str, tuple[Any, Any, str]] = {}

    # -- which model ---------------------------------------------------------------------

    def _model_for(self, source: str, target: str) -> MtModel:
        setting = self.model_setting
        local = Path(setting).expanduser()
        if local.is_dir():
            model: MtModel | None = MtModel(
                str(local), str(local), MAIN, _family_of(local), "local", 0
            )
        else:
            model = choose(setting, source, target)
        if model is None and setting != "auto" and "/" in setting and not local.is_dir():
            family = (
                "nllb" if "nllb" in setting else "m2m100" if "m2m100" in setting else ("marian")
            )
            model = MtModel(setting, setting, MAIN, family, "see the model card", 0)
        if model is None or not _family_supports(model, source, target):
            raise InputError(
                f"The translation model {setting} has no {language_name(source)}→"
                f"{language_name(target)} ({source}→{target}).",
                f"{self.supported_pairs_hint()} Use --model auto, or --engine apertium.",
            )
        return model

    def describe(self) -> str:
        return f"{self.name}:{self.model_setting}"

    def supported_pairs(self) -> list[str]:
        pairs = sorted(f"{s}→{t}" for s, t in OPUS_MT_PAIRS)
        return [*pairs, "any pair of M2M100's 100 languages", "NLLB-200's 200 languages"]

    def supported_pairs_hint(self) -> str:
        return (
            f"OPUS-MT has {len(OPUS_MT_PAIRS)} pairs (e.g. en→es, en→de, fr→en); M2M100 "
            "covers any pair of 100 languages and NLLB-200 of 200."
        )

    def check_pair(self, source: str, target: str) -> None:
        """Raise if no model can translate the pair, or if it is not cached while offline."""
        model = self._model_for(source, target)
        _require_transformers()
        if Path(model.hub_id).is_dir() or not self.offline:
            return
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(
            model.hub_id, "config.json", cache_dir=str(hub_cache_dir()), revision=model.revision
        )
        if not isinstance(cached, str):
            raise MissingModelError(
                f"The translation model {model.hub_id} ({model.license}, about "
                f"{model.size_mb} MB) is not in the local cache and downloads are off "
                "(offline).",
                "Run once with network access to fetch it, or use --engine apertium.",
            )

    # -- translating ---------------------------------------------------------------------

    def _load(self, model: MtModel) -> tuple[Any, Any, str]:
        if self._parked:
            self.to_device()
        if model.hub_id in self._loaded:
            return self._loaded[model.hub_id]
        apply_library_environment(self.models)  # no background safetensors conversion
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        device = resolve_device(self.device_setting)
        local = Path(model.hub_id).is_dir()
        options: dict[str, Any] = (
            {}
            if local
            else {
                "revision": model.revision,
                "cache_dir": str(hub_cache_dir()),
                "local_files_only": self.offline,
            }
        )
        logger.info("loading translation model %s on %s", model.hub_id, device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(model.hub_id, **options)
            network = AutoModelForSeq2SeqLM.from_pretrained(
                model.hub_id,
                dtype=torch.float16 if device.startswith("cuda") else torch.float32,
                **options,
            )
        except OSError as exc:
            raise MissingModelError(
                f"The translation model {model.hub_id} could not be loaded: {exc}.",
                "Check the network and the model name, or use --engine apertium.",
            ) from None
        network = network.to(device).eval()
        self._loaded[model.hub_id] = (network, tokenizer, model.family)
        return self._loaded[model.hub_id]

    def candidates(self, texts: list[str], source: str, target: str, count: int) -> list[list[str]]:
        """The ``count`` best translations of each text, best first."""
        if not texts:
            return []
        import torch

        model = self._model_for(source, target)
        network, tokenizer, family = self._load(model)
        generate: dict[str, Any] = {}
        if family == "m2m100":
            tokenizer.src_lang = source
            generate["forced_bos_token_id"] = tokenizer.get_lang_id(target)
        elif family == "nllb":
            tokenizer.src_lang = nllb_code(source)
            generate["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(nllb_code(target))
        label = ""
        if family == "marian":
            labels = list(getattr(tokenizer, "supported_language_codes", None) or [])
            found = marian_target_label(labels, target)
            if found is None:
                shown = " ".join(labels[:12]) + (" ..." if len(labels) > 12 else "")
                raise InputError(
                    f"The translation model {model.hub_id} translates into several languages "
                    f"({shown}) and has no label for {language_name(target)} ({target}).",
                    "Choose another --model, or --model auto.",
                )
            label = found
        beams = max(self.beams, count)
        results: list[list[str]] = []
        for first in range(0, len(texts), self.batch_size):
            batch = texts[first : first + self.batch_size]
            encoded = tokenizer(
                [f"{label} {text}" for text in batch] if label else batch,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=MAX_INPUT_TOKENS,
                return_token_type_ids=False,
            ).to(network.device)
            longest = int(encoded["input_ids"].shape[1])
            with torch.inference_mode():
                output = network.generate(
                    **encoded,
                    num_beams=beams,
                    num_return_sequences=count,
                    max_new_tokens=min(MAX_INPUT_TOKENS, 2 * longest + 16),
                    **generate,
                )
            decoded = tokenizer.batch_decode(output, skip_special_tokens=True)
            for index in range(len(batch)):
                group = decoded[index * count : (index + 1) * count]
                results.append([" ".join(text.split()) for text in group])
        return results

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        return [group[0] for group in self.candidates(texts, source, target, 1)]

    @property
    def device(self) -> str:
        return resolve_device(self.device_setting)

    def to_cpu(self) -> None:
        """Park the loaded models in CPU memory (a kept engine between stages, on a GPU);
        they go back to the device when it next translates."""
        for network, _, _ in self._loaded.values():
            torch_to(network, "cpu")
        self._parked = bool(self._loaded)

    def to_device(self) -> None:
        if self._parked:
            for network, _, _ in self._loaded.values():
                torch_to(network, self.device)
            self._parked = False

    def close(self) -> None:
        self._loaded.clear()

        release_memory()


def _family_supports(model: MtModel, source: str, target: str) -> bool:
    if Path(model.hub_id).is_dir() or model.name == model.hub_id:
        if model.family == "nllb":
            return nllb_code(source) is not None and nllb_code(target) is not None
        if model.family == "m2m100":
            return MANY_TO_MANY["m2m100-418m"].supports(source, target)
        return True  # a Marian folder or id: its pair is the user's word
    return model.supports(source, target)


def _family_of(folder: Path) -> str:
    """marian, m2m100 or nllb, from a saved model's config and tokenizer config."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise MissingModelError(
            f"{folder} is not a translation model folder (no readable config.json).",
            "Point mt.model at a folder saved with save_pretrained.",
        ) from None
    model_type = config.get("model_type", "")
    if model_type == "marian":
        return "marian"
    if model_type == "m2m_100":
        tokenizer_config = folder / "tokenizer_config.json"
        text = tokenizer_config.read_text(encoding="utf-8") if tokenizer_config.exists() else ""
        return "nllb" if "Nllb" in text else "m2m100"
    raise MissingModelError(
        f"{folder} holds a '{model_type}' model; the transformers engine runs MarianMT, "
        "M2M100 and NLLB models.",
        "Choose another mt.model.",
    )


def _require_transformers() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"The transformers translation engine needs torch and transformers ({exc}).",
            "pip install 'octavia-cli[quality]', or use --engine apertium.",
        ) from None
