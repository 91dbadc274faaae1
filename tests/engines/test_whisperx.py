"""The whisperx engine: word times from CTC emissions, the engine's real path on CPU with the
bundled Whisper base and a tiny randomly initialised wav2vec2 CTC model built here, and the
checks that run before any model loads."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("whisperx", reason="the whisperx engine needs octavia-cli[quality]")
torch = pytest.importorskip("torch")

from helpers import decode_16k  # noqa: E402
from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.engines.asr import get_asr_engine  # noqa: E402
from octavia_cli.engines.asr.alignment import align_words, check_align_model  # noqa: E402
from octavia_cli.errors import InputError, MissingModelError  # noqa: E402

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
