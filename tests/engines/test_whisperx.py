"""The whisperx engine: word times from CTC emissions, the engine's real path on CPU with the
bundled Whisper base and a tiny randomly initialised wav2vec2 CTC model built here, the
checks that run before any model loads, and the alignment models loaded from where their
real files live (torchaudio's bundles in torch's hub folder, the others in the hub cache)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("whisperx", reason="the whisperx engine needs octavia-cli[quality]")
torch = pytest.importorskip("torch")

from helpers import decode_16k  # noqa: E402
from hub_layout import no_network, write_folder  # noqa: E402, F401 (a fixture)
from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.engines.asr import get_asr_engine  # noqa: E402
from octavia_cli.engines.asr.alignment import (  # noqa: E402
    align_words,
    check_align_model,
    load_align_model,
)
from octavia_cli.errors import InputError, MissingModelError  # noqa: E402
from octavia_cli.models.bundled import hub_cache_dir  # noqa: E402
from octavia_cli.models.catalog import TORCHAUDIO_ALIGN, find_model, torch_hub_dir  # noqa: E402

DICTIONARY = {"<pad>": 0, "|": 1, "h": 2, "e": 3, "l": 4, "o": 5, "w": 6, "r": 7, "d": 8, "n": 9}


def _emission(peaks: dict[int, int], frames: int = 100) -> torch.Tensor:
    """Log-probabilities where each frame in ``peaks`` emits that token and every other
    frame is blank."""
    logits = torch.full((frames, len(DICTIONARY)), -8.0)
    logits[:, 0] = 0.0
    for frame, token in peaks.items():
        logits[frame, 0] = -8.0
        logits[frame, token] = 0.0
    return torch.log_softmax(logits, dim=-1)


def test_word_times_come_from_the_emissions() -> None:
    d = DICTIONARY
    peaks = {10: d["h"], 11: d["e"], 12: d["l"], 14: d["l"], 15: d["o"]}  # blank splits "ll"
    peaks |= {20: d["|"], 30: d["w"], 31: d["o"], 32: d["r"], 33: d["l"], 34: d["d"]}
    peaks |= {40: d["|"], 45: d["r"], 46: d["e"]}  # "42": digits match any character
    peaks |= {55: d["|"], 60: d["e"], 61: d["n"], 62: d["d"]}
    text = " Hello, world 42 — end!"
    words = align_words(text, _emission(peaks), DICTIONARY, 0, 1.0, 3.0, "en")
    assert [w.text for w in words] == [" Hello,", " world", " 42", " —", " end!"]
    frame_s = 0.02
    starts = {w.text.strip(): w.start_s for w in words}
    assert starts["Hello,"] == pytest.approx(1.0 + 10 * frame_s)
    assert starts["world"] == pytest.approx(1.0 + 30 * frame_s)
    assert starts["42"] == pytest.approx(1.0 + 45 * frame_s)
    assert starts["end!"] == pytest.approx(1.0 + 60 * frame_s)
    hello, world, number, dash, end = words
    assert 1.0 + 16 * frame_s <= hello.end_s <= world.start_s
    assert number.probability > 0.5  # aligned, not interpolated
    # "—" is not spoken: it gets the time between its neighbours, and probability 0.
    assert number.end_s <= dash.start_s <= dash.end_s <= end.start_s
    assert dash.probability == 0.0
    assert all(1.0 <= w.start_s <= w.end_s <= 3.0 for w in words)


def test_words_are_interpolated_when_alignment_fails() -> None:
    # Fewer frames than characters: no path exists, every word is spread over the segment.
    words = align_words(" one two three", _emission({}, frames=4), DICTIONARY, 0, 2.0, 4.0, "en")
    assert [w.text for w in words] == [" one", " two", " three"]
    assert words[0].start_s == 2.0 and words[-1].end_s == pytest.approx(4.0)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in itertools.pairwise(words))
    assert words[2].end_s - words[2].start_s > words[0].end_s - words[0].start_s  # by length
    assert all(w.probability == 0.0 for w in words)


def test_languages_without_spaces_align_per_character() -> None:
    words = align_words("你好", _emission({10: 2, 20: 3}), {"<pad>": 0, "你": 2, "好": 3}, 0,
                        0.0, 2.0, "zh")  # fmt: skip
    assert [w.text for w in words] == ["你", "好"]
    assert words[0].start_s == pytest.approx(0.2) and words[1].start_s == pytest.approx(0.4)


@pytest.fixture(scope="module")
def tiny_align_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised wav2vec2 CTC model with a character vocabulary, saved as a
    Hugging Face folder (what ``asr.align_model`` accepts)."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    for char in "abcdefghijklmnopqrstuvwxyz'":
        vocab[char] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


def _settings(align_model: Path | str, **extra: str):
    return load_settings(
        {
            "asr.engine": "whisperx",
            "asr.model": "bundled:whisper-base",
            "asr.align_model": str(align_model),
            "asr.batch_size": 4,
            "general.device": "cpu",
            **extra,
        }
    )


@pytest.mark.slow
def test_engine_recognises_and_aligns_every_word(tiny_align_model: Path, talk: Path) -> None:
    engine = get_asr_engine(_settings(tiny_align_model))
    engine.check("en")
    audio = decode_16k(talk)
    assert engine.detect_language(audio)[0] == "en"
    progress: list[float] = []
    recognition = engine.recognize(audio, "en", progress.append)
    engine.close()
    text = "".join(w.text for w in recognition.words).lower()
    assert "library" in text and "watching" in text
    duration = len(audio) / 16_000
    for word in recognition.words:  # every word has a time inside the audio
        assert 0.0 <= word.start_s <= word.end_s <= duration + 1e-3
    starts = [w.start_s for w in recognition.words]
    assert starts == sorted(starts)
    assert progress and progress[-1] == pytest.approx(duration, abs=0.01)
    assert engine.describe().startswith("whisperx:bundled:whisper-base+align:")


@pytest.mark.slow
def test_transcribe_command_with_whisperx(
    cli, tiny_align_model: Path, talk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = cli(
        "transcribe", str(talk), "--engine", "whisperx", "--model", "bundled:whisper-base",
        "--batch-size", "2", "--device", "cpu", "--json",
    )  # fmt: skip
    # No alignment model for English is cached (and none may be downloaded): one sentence.
    assert code == 3 and "not in the local cache" in err and "Traceback" not in err
    monkeypatch.setenv("OCTAVIA_ASR_ALIGN_MODEL", str(tiny_align_model))
    code, out, err = cli(
        "transcribe", str(talk), "--engine", "whisperx", "--model", "bundled:whisper-base",
        "--device", "cpu", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["engine"].startswith("whisperx:") and data["language"] == "en"
    assert all(s["words"] and s["start_s"] < s["end_s"] for s in data["segments"])


def test_checks_name_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingModelError, match="WAV2VEC2_ASR_BASE_960H"):
        check_align_model("", "en", tmp_path / "hub", offline=True)
    with pytest.raises(MissingModelError, match="jonatasgrosman/wav2vec2-large-xlsr-53-dutch"):
        check_align_model("", "nl", tmp_path / "hub", offline=True)
    with pytest.raises(InputError, match="no alignment model for Swahili"):
        check_align_model("", "sw", tmp_path / "hub", offline=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingModelError, match="not a wav2vec2 model folder"):
        check_align_model(str(tmp_path / "empty"), "en", tmp_path / "hub", offline=True)


@pytest.mark.gpu
def test_engine_on_cuda_gives_the_memory_back(tiny_align_model: Path, talk: Path) -> None:
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    engine = get_asr_engine(_settings(tiny_align_model, **{"general.device": "cuda"}))
    recognition = engine.recognize(decode_16k(talk), "en", lambda _: None)
    assert recognition.words
    assert torch.cuda.memory_allocated() > before
    engine.close()
    assert torch.cuda.memory_allocated() <= before
    assert np.isfinite([w.start_s for w in recognition.words]).all()


# A wav2vec2 of a torchaudio bundle's kind, small enough to build in a moment (the bundles fix
# their architecture in ``_params``; the tests shrink it and keep everything else).
TINY_WAV2VEC2 = {
    "extractor_conv_layer_config": [(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2,
    "encoder_embed_dim": 32,
    "encoder_pos_conv_kernel": 16,
    "encoder_pos_conv_groups": 2,
    "encoder_num_layers": 1,
    "encoder_num_heads": 2,
    "encoder_ff_interm_features": 37,
}


def _tiny_bundle(language: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path, dict]:
    """whisperx's bundle for ``language`` (shrunk), the checkpoint the catalog and
    ``octavia models pull`` name for it, and weights in the real file's format: a bare state
    dict whose ``aux`` layer still has the rows torchaudio drops on loading (fairseq's
    unused symbols)."""
    import torchaudio
    from torchaudio.models import wav2vec2_model

    name, filename, _ = TORCHAUDIO_ALIGN[language]
    bundle = getattr(torchaudio.pipelines, name)
    assert Path(bundle._path).name == filename  # the catalog names the file torchaudio reads
    assert find_model(f"align-{language}").filename == filename
    monkeypatch.setattr(bundle, "_params", {**bundle._params, **TINY_WAV2VEC2})
    torch.manual_seed(0)
    removed = len(bundle._remove_aux_axis or ())
    params = {**bundle._params, "aux_num_out": bundle._params["aux_num_out"] + removed}
    return bundle, torch_hub_dir() / "checkpoints" / filename, wav2vec2_model(**params).state_dict()


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("language", ["en", "de"])  # de: torchaudio drops a fourth aux row
def test_torchaudio_bundles_load_from_the_torch_hub_checkpoints(
    language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle is read from ``<torch hub>/checkpoints``, where ``models pull`` and the
    catalog put it, offline and online alike; never fetched again, nothing in the hub cache;
    offline and missing, it is named without any download being tried."""
    bundle, checkpoint, weights = _tiny_bundle(language, monkeypatch)
    name = TORCHAUDIO_ALIGN[language][0]
    with pytest.raises(MissingModelError, match=name):
        check_align_model("", language, hub_cache_dir(), offline=True)
    with pytest.raises(MissingModelError, match=f"octavia models pull align-{language}"):
        load_align_model("", language, "cpu", hub_cache_dir(), offline=True)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save(weights, checkpoint)
    check_align_model("", language, hub_cache_dir(), offline=True)
    for offline in (True, False):
        aligner = load_align_model("", language, "cpu", hub_cache_dir(), offline=offline)
        assert aligner.kind == "torchaudio" and aligner.name == name
        labels = bundle.get_labels()
        assert len(aligner.dictionary) == len(labels)
        emission = aligner.emissions(torch.zeros(1, 16_000))
        assert emission.shape == (49, len(labels))  # 20 ms frames, one column per label
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == [checkpoint.name]
    assert not hub_cache_dir().exists() or not any(hub_cache_dir().iterdir())


@pytest.mark.usefixtures("no_network")
def test_a_hub_alignment_model_loads_from_its_hub_layout(
    tiny_align_model: Path, tmp_path: Path
) -> None:
    """whisperx's Dutch model, as its hub repository holds it (``pytorch_model.bin``, the
    processor's files), from a hub cache with downloads off."""
    from transformers import Wav2Vec2ForCTC

    folder = tmp_path / "repo"
    for item in tiny_align_model.iterdir():
        if item.suffix != ".safetensors":
            (folder / item.name).parent.mkdir(exist_ok=True)
            (folder / item.name).write_bytes(item.read_bytes())
    Wav2Vec2ForCTC.from_pretrained(tiny_align_model).save_pretrained(
        folder, safe_serialization=False
    )
    write_folder(hub_cache_dir(), "jonatasgrosman/wav2vec2-large-xlsr-53-dutch", folder)
    check_align_model("", "nl", hub_cache_dir(), offline=True)
    aligner = load_align_model("", "nl", "cpu", hub_cache_dir(), offline=True)
    assert aligner.kind == "huggingface" and aligner.dictionary["|"] == 4
    assert aligner.emissions(torch.zeros(1, 16_000)).shape[1] == len(aligner.dictionary)
