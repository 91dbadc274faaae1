"""Forced alignment: word times from a wav2vec2 CTC model's emissions, as whisperx does it.

whisperx's ``align`` also splits segments into sentences with NLTK's Punkt, which it
downloads at run time (and so fails on an air-gapped machine), and it leaves words it could
not align without times. We use its trellis and backtracking (``get_trellis``,
``backtrack``, ``merge_repeats``) on each recognised segment and build the words ourselves:
punctuation is not aligned (it is not spoken), digits and symbols match any character
(whisperx's wildcard column), and every word that still has no time gets one interpolated
between its neighbours by length. Sentences are the segmentation module's job anyway.

The five torchaudio bundles (en, fr, de, es, it) keep their weights where torch's hub does,
``<torch hub>/checkpoints/<file>``: the folder ``octavia models pull`` fills and the
catalog looks in. The Hugging Face models are in the hub cache.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octavia_cli.errors import InputError, MissingModelError
from octavia_cli.languages import language_name
from octavia_cli.models.catalog import torch_hub_dir
from octavia_cli.project.records import Word

LANGUAGES_WITHOUT_SPACES = frozenset({"ja", "zh", "th", "lo", "my", "km"})
WORD_SEPARATOR = "|"  # what wav2vec2 vocabularies use for a space


@dataclass
class AlignModel:
    """A loaded CTC model and its vocabulary (lower-cased characters to token ids)."""

    name: str
    model: Any  # torch.nn.Module
    kind: str  # "torchaudio" or "huggingface"
    dictionary: dict[str, int]
    blank_id: int
    language: str = ""

    def emissions(self, waveform: Any) -> Any:
        """Log-probabilities ``(frames, vocabulary)`` for a ``(1, samples)`` tensor."""
        import torch

        with torch.inference_mode():
            if waveform.shape[-1] < 400:  # wav2vec2's shortest input
                waveform = torch.nn.functional.pad(waveform, (0, 400 - waveform.shape[-1]))
            if self.kind == "torchaudio":
                logits, _ = self.model(waveform)
            else:
                logits = self.model(waveform).logits
            return torch.log_softmax(logits, dim=-1)[0].float().cpu()


def default_align_model(language: str) -> str | None:
    """whisperx's choice for ``language``: a torchaudio bundle or a Hugging Face model id."""
    from whisperx.alignment import DEFAULT_ALIGN_MODELS_HF, DEFAULT_ALIGN_MODELS_TORCH

    return DEFAULT_ALIGN_MODELS_TORCH.get(language) or DEFAULT_ALIGN_MODELS_HF.get(language)


def resolve_align_model(spec: str, language: str) -> str:
    name = spec or default_align_model(language)
    if not name:
        raise InputError(
            f"whisperx has no alignment model for {language_name(language)}.",
            "Set asr.align_model to a wav2vec2 CTC model for it, or use --engine faster-whisper.",
        )
    return name


def check_align_model(spec: str, language: str, cache_dir: Path, offline: bool) -> None:
    """Raise if the alignment model for ``language`` is not available; load nothing."""
    name = resolve_align_model(spec, language)
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise MissingModelError(
                f"{local} is not a wav2vec2 model folder (no config.json).",
                "Point asr.align_model at a folder saved with save_pretrained.",
            )
        return
    if not offline:
        return  # downloaded on first use
    if _is_torchaudio_bundle(name):
        cached = bundle_checkpoint(name).exists()
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(
            try_to_load_from_cache(name, "config.json", cache_dir=str(cache_dir)), str
        )
    if not cached:
        raise MissingModelError(
            f"The alignment model {name} for {language_name(language)} is not in the local "
            "cache and downloads are off (offline).",
            "Run the same command once with network access, or use --engine faster-whisper.",
        )


def _is_torchaudio_bundle(name: str) -> bool:
    return name.isupper() and "/" not in name


def bundle_checkpoint(name: str) -> Path:
    """Where torchaudio keeps (or would download) the weights of the bundle ``name``."""
    import torchaudio

    bundle = getattr(torchaudio.pipelines, name, None)
    if bundle is None or not hasattr(bundle, "_path"):
        raise InputError(
            f"torchaudio has no pipeline called {name}.",
            "Set asr.align_model to a torchaudio wav2vec2 ASR bundle or a Hugging Face model.",
        )
    return torch_hub_dir() / "checkpoints" / Path(bundle._path).name


def load_align_model(
    spec: str, language: str, device: str, cache_dir: Path, offline: bool
) -> AlignModel:
    """Load the CTC model for ``language`` (``spec`` overrides whisperx's default)."""
    import whisperx

    name = resolve_align_model(spec, language)
    model_dir = cache_dir
    if _is_torchaudio_bundle(name):
        # torchaudio downloads whatever is missing, offline or not: check first.
        checkpoint = bundle_checkpoint(name)
        if offline and not checkpoint.exists():
            raise MissingModelError(
                f"The alignment model {name} for {language_name(language)} is not in "
                f"{checkpoint.parent} and downloads are off (offline).",
                f"Fetch it where there is network: octavia models pull align-{language}"
                if not spec
                else "Run the same command once with network access.",
            )
        model_dir = checkpoint.parent
    try:
        model, metadata = whisperx.load_align_model(
            language,
            device,
            model_name=name,
            model_dir=str(model_dir),
            model_cache_only=offline,
        )
    except Exception as exc:
        raise MissingModelError(
            f"The alignment model {name} could not be loaded: {exc}.",
            "Check the name in asr.align_model and the network, or use --engine faster-whisper.",
        ) from None
    dictionary: dict[str, int] = metadata["dictionary"]
    blank_id = next(
        (dictionary[key] for key in ("[pad]", "<pad>") if key in dictionary),
        0,
    )
    return AlignModel(name, model.eval(), metadata["type"], dictionary, blank_id, language)


def _is_spoken(char: str) -> bool:
    """Letters, digits and symbols are aligned; punctuation and spaces are not."""
    return not unicodedata.category(char).startswith(("P", "Z", "C"))


def align_words(
    text: str,
    emission: Any,
    dictionary: dict[str, int],
    blank_id: int,
    start_s: float,
    end_s: float,
    language: str,
) -> list[Word]:
    """Words of ``text`` with times from ``emission`` (log-probabilities of the segment
    ``start_s``..``end_s``, one row per frame). Every word gets a time; a word without
    aligned characters, or all of them if alignment fails, is interpolated."""
    import torch
    from whisperx.alignment import backtrack, get_trellis, merge_repeats

    no_spaces = language in LANGUAGES_WITHOUT_SPACES
    words = [c for c in text if not c.isspace()] if no_spaces else text.split()
    if not words:
        return []
    separator = dictionary.get(WORD_SEPARATOR)
    wildcard = emission.shape[1]  # a column added below: the best non-blank score
    tokens: list[int] = []
    owners: list[int] = []  # word index of each token (-1 for a separator)
    for index, word in enumerate(words):
        spoken = [c.lower() for c in word if _is_spoken(c)]
        if not spoken:
            continue
        if tokens and separator is not None and not no_spaces:
            tokens.append(separator)
            owners.append(-1)
        for char in spoken:
            tokens.append(dictionary.get(char, wildcard))
            owners.append(index)
    times: list[tuple[float, float, float] | None] = [None] * len(words)
    frames = emission.shape[0]
    if tokens and frames >= len(tokens):
        if wildcard in tokens:
            mask = torch.ones(emission.shape[1], dtype=torch.bool)
            mask[blank_id] = False
            best = emission[:, mask].max(dim=1).values.unsqueeze(1)
            emission = torch.cat([emission, best], dim=1)
        trellis = get_trellis(emission, tokens, blank_id)
        path = backtrack(trellis, emission, tokens, blank_id)
        if path is not None:
            seconds_per_frame = (end_s - start_s) / frames
            labels = "".join(chr(0xE000 + i) for i in range(len(tokens)))  # one per token
            spans: dict[int, list[tuple[int, int, float]]] = {}
            for piece in merge_repeats(path, labels):
                owner = owners[ord(piece.label) - 0xE000]
                if owner >= 0:
                    spans.setdefault(owner, []).append((piece.start, piece.end, piece.score))
            for owner, pieces in spans.items():
                first = min(p[0] for p in pieces)
                last = max(p[1] for p in pieces)
                score = sum(p[2] for p in pieces) / len(pieces)
                times[owner] = (
                    start_s + first * seconds_per_frame,
                    start_s + last * seconds_per_frame,
                    score,
                )
    # Words carry their leading space, as faster-whisper's do, so text is their concatenation.
    shown = words if no_spaces else [" " + word for word in words]
    return _interpolate(shown, times, start_s, end_s)


def _interpolate(
    words: list[str],
    times: list[tuple[float, float, float] | None],
    start_s: float,
    end_s: float,
) -> list[Word]:
    """Fill each run of words without times into the gap between its aligned neighbours
    (or the segment's edges), shared out by length; their probability is 0."""
    result: list[Word] = []
    index = 0
    while index < len(words):
        known = times[index]
        if known is not None:
            result.append(Word(words[index], round(known[0], 3), round(known[1], 3), known[2]))
            index += 1
            continue
        run_end = index
        while run_end < len(words) and times[run_end] is None:
            run_end += 1
        gap_start = result[-1].end_s if result else start_s
        following = times[run_end] if run_end < len(words) else None
        gap_end = following[0] if following is not None else end_s
        gap_end = max(gap_end, gap_start)
        lengths = [max(len(w), 1) for w in words[index:run_end]]
        at = gap_start
        for offset, length in enumerate(lengths):
            span = (gap_end - gap_start) * length / sum(lengths)
            result.append(Word(words[index + offset], round(at, 3), round(at + span, 3), 0.0))
            at += span
        index = run_end
    return [
        Word(
            w.text,
            round(max(w.start_s, start_s), 3),
            round(min(w.end_s, end_s), 3),
            round(float(w.probability), 3),
        )
        for w in result
    ]
