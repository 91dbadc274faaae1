"""The transformers translation engine on tiny randomly initialised models laid out as their
hub repositories hold them (OPUS-MT's 2020 files: ``pytorch_model.bin`` and no safetensors,
two sentencepiece models, a 40-byte ``tokenizer_config.json``), loaded through the engine
from a hub cache with downloads off and every connection refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")
torch = pytest.importorskip("torch")

from test_mt_transformers import ENGLISH  # noqa: E402

from fake_hub import install_fake_hub  # noqa: E402
from hub_layout import no_network, write_folder  # noqa: E402, F401 (a fixture)
from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.engines.mt import get_translation_engine  # noqa: E402
from octavia_cli.errors import InputError  # noqa: E402
from octavia_cli.models.bundled import hub_cache_dir  # noqa: E402
from octavia_cli.models.translation import marian_target_label  # noqa: E402

CHINESE = ["欢迎来到城市图书馆。", "今天我们谈谈旧书。", "新房间下周开放。", "谢谢收看。"]
# Some of opus-mt-en-zh's target labels (its vocabulary has them as ordinary pieces).
EN_ZH_LABELS = [">>cmn<<", ">>cmn_Hans<<", ">>cmn_Hant<<", ">>yue<<", ">>yue_Hant<<", ">>zho<<"]


def _train_spm(folder: Path, name: str, lines: list[str]) -> Path:
    import sentencepiece

    (folder / f"{name}.txt").write_text("\n".join(lines))
    sentencepiece.SentencePieceTrainer.train(
        input=str(folder / f"{name}.txt"), model_prefix=str(folder / name), vocab_size=60,
        hard_vocab_limit=False, character_coverage=1.0, minloglevel=2,
    )  # fmt: skip
    (folder / f"{name}.txt").unlink()
    (folder / f"{name}.vocab").unlink()
    return folder / f"{name}.model"


def tiny_opus_mt(
    folder: Path, source: str, target: str, targets: list[str], labels: list[str] | None = None
) -> Path:
    """The files of Helsinki-NLP/opus-mt-{source}-{target}, tiny: ``source.spm`` and
    ``target.spm``, a shared ``vocab.json`` (with ``labels`` where the model has several
    targets), ``config.json``, ``pytorch_model.bin`` and the 2020 ``tokenizer_config.json``."""
    import sentencepiece
    from transformers import MarianConfig, MarianMTModel

    folder.mkdir(parents=True)
    models = [_train_spm(folder, "source", ENGLISH), _train_spm(folder, "target", targets)]
    vocab = {"</s>": 0, "<unk>": 1, **{label: 2 + i for i, label in enumerate(labels or [])}}
    for model in models:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
        for index in range(processor.get_piece_size()):
            vocab.setdefault(processor.id_to_piece(index), len(vocab))
    vocab["<pad>"] = len(vocab)  # last, as in the real vocabularies
    for model, name in zip(models, ("source.spm", "target.spm"), strict=True):
        model.rename(folder / name)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"target_lang": target, "source_lang": source})
    )
    torch.manual_seed(0)
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=pad, eos_token_id=0,
        decoder_start_token_id=pad,
    )  # fmt: skip
    MarianMTModel(config).save_pretrained(folder, safe_serialization=False)
    (folder / "generation_config.json").unlink()  # the 2020 repositories have none
    return folder


def _first_tokens(engine: Any, source: str, target: str, monkeypatch: pytest.MonkeyPatch):
    """The engine's model for the pair, loaded, with a record of the first input token of
    every text it is given to translate."""
    network, tokenizer, _ = engine._load(engine._model_for(source, target))
    seen: list[int] = []
    generate = network.generate

    def recording(**inputs: Any) -> Any:
        seen.extend(int(row[0]) for row in inputs["input_ids"])
        return generate(**inputs)

    monkeypatch.setattr(network, "generate", recording)
    return tokenizer, seen


@pytest.mark.usefixtures("no_network")
def test_opus_mt_en_zh_is_given_its_target_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model card: "a sentence initial language token is required" (>>cmn_Hans<< for
    simplified Mandarin); without one the model picks a variety itself."""
    folder = tiny_opus_mt(tmp_path / "en-zh", "en", "zh", CHINESE, EN_ZH_LABELS)
    snapshot = write_folder(hub_cache_dir(), "Helsinki-NLP/opus-mt-en-zh", folder)
    engine = get_translation_engine(load_settings({"mt.engine": "transformers"}))
    engine.check_pair("en", "zh")
    tokenizer, seen = _first_tokens(engine, "en", "zh", monkeypatch)
    assert tokenizer.supported_language_codes == EN_ZH_LABELS
    groups = engine.candidates(ENGLISH, "en", "zh", 2)
    assert len(groups) == 4 and all(len(group) == 2 for group in groups)
    assert seen == [tokenizer.convert_tokens_to_ids(">>cmn_Hans<<")] * 4
    assert not any(">>" in text for group in groups for text in group)
    engine.close()
    # The same files as a local model: a target it has no label for is refused by name.
    local = get_translation_engine(
        load_settings({"mt.engine": "transformers", "mt.model": str(snapshot)})
    )
    with pytest.raises(InputError, match=r"several languages \(>>cmn<< .*no label for Spanish"):
        local.translate(ENGLISH, "en", "es")


@pytest.mark.usefixtures("no_network")
def test_a_one_target_opus_mt_model_gets_no_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from octavia_cli.models.translation import OPUS_MT_REVISIONS

    spanish = ["Bienvenidos a la biblioteca.", "Hoy hablamos de libros.", "Gracias."]
    folder = tiny_opus_mt(tmp_path / "en-es", "en", "es", spanish)
    write_folder(hub_cache_dir(), "Helsinki-NLP/opus-mt-en-es", folder,
                 commit=OPUS_MT_REVISIONS[("en", "es")])  # the catalog's pin  # fmt: skip
    engine = get_translation_engine(load_settings({"mt.engine": "transformers"}))
    engine.check_pair("en", "es")
    tokenizer, seen = _first_tokens(engine, "en", "es", monkeypatch)
    assert tokenizer.supported_language_codes == []
    assert len(engine.translate(ENGLISH, "en", "es")) == 4
    assert seen == [tokenizer(text)["input_ids"][0] for text in ENGLISH]  # the text's own
    engine.close()


def test_target_labels() -> None:
    arabic = [">>afb<<", ">>apc<<", ">>ara<<", ">>arq<<", ">>arz<<"]  # opus-mt-en-ar's
    assert marian_target_label(arabic, "ar") == ">>ara<<"
    assert marian_target_label(EN_ZH_LABELS, "zh") == ">>cmn_Hans<<"
    assert marian_target_label([">>vie<<", ">>vie_Hani<<"], "vi") == ">>vie<<"  # ISO 639-3
    assert marian_target_label([">>es<<", ">>fr<<"], "fr") == ">>fr<<"
    assert marian_target_label([">>es<<"], "es") == ">>es<<"
    assert marian_target_label([], "es") == ""
    assert marian_target_label(arabic, "es") is None


@pytest.fixture
def conversion_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Online as far as transformers can tell (huggingface_hub stays offline underneath, so
    its lookups end in the cache, not on a socket), none of the variables set, and the
    threads transformers' loading starts recorded instead of run."""
    import transformers.modeling_utils

    started: list[str] = []

    class RecordedThread:
        def __init__(self, *args: Any, name: str = "", **kwargs: Any) -> None:
            started.append(name)

        def start(self) -> None:
            pass

    monkeypatch.setattr(transformers.modeling_utils, "is_offline_mode", lambda: False)
    monkeypatch.setattr(transformers.modeling_utils, "Thread", RecordedThread)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DISABLE_SAFETENSORS_CONVERSION"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return started


@pytest.mark.usefixtures("no_network")
def test_a_pytorch_model_bin_starts_no_safetensors_conversion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversion_threads: list[str]
) -> None:
    """Online, transformers meets a model with only ``pytorch_model.bin`` (m2m100, the
    2020 OPUS-MT repositories) by starting a thread that fetches a converted
    ``model.safetensors`` from a pull request (or asks the conversion service for one),
    which the process then waits for at exit. The engine loads with
    DISABLE_SAFETENSORS_CONVERSION=true, whichever entry point built it."""
    from octavia_cli.models.translation import OPUS_MT_REVISIONS

    spanish = ["Bienvenidos a la biblioteca.", "Hoy hablamos de libros.", "Gracias."]
    folder = tiny_opus_mt(tmp_path / "en-es", "en", "es", spanish)
    snapshot = write_folder(hub_cache_dir(), "Helsinki-NLP/opus-mt-en-es", folder,
                            commit=OPUS_MT_REVISIONS[("en", "es")])  # fmt: skip
    assert sorted(p.name for p in snapshot.iterdir()) == [
        "config.json", "pytorch_model.bin", "source.spm", "target.spm", "tokenizer_config.json",
        "vocab.json",
    ]  # fmt: skip
    started = conversion_threads
    settings = load_settings({"mt.engine": "transformers"})
    assert not settings.offline
    engine = get_translation_engine(settings)
    assert len(engine.translate(ENGLISH, "en", "es")) == 4
    assert started == [] and os.environ["DISABLE_SAFETENSORS_CONVERSION"] == "true"
    engine.close()
    # The gate this depends on: without the variable, the same load starts the thread.
    monkeypatch.delenv("DISABLE_SAFETENSORS_CONVERSION")
    from transformers import AutoModelForSeq2SeqLM

    AutoModelForSeq2SeqLM.from_pretrained(
        "Helsinki-NLP/opus-mt-en-es", revision=OPUS_MT_REVISIONS[("en", "es")],
        cache_dir=str(hub_cache_dir()),
    )  # fmt: skip
    assert started == ["Thread-auto_conversion"]


@pytest.mark.usefixtures("no_network")
def test_m2m100_loads_from_its_hub_layout(tmp_path: Path) -> None:
    """facebook/m2m100_418M as its repository holds it (``pytorch_model.bin``,
    ``sentencepiece.bpe.model``, ``vocab.json``): the default for a pair OPUS-MT lacks."""
    import sentencepiece
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    work = tmp_path / "build"
    work.mkdir()
    model = _train_spm(work, "spm", [*ENGLISH, "Karibu kwenye maktaba.", "Asante sana."])
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for index in range(processor.get_piece_size()):
        vocab.setdefault(processor.id_to_piece(index), len(vocab))
    (work / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = M2M100Tokenizer(vocab_file=str(work / "vocab.json"), spm_file=str(model))
    folder = tmp_path / "m2m100"
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = M2M100Config(
        vocab_size=max(tokenizer.lang_code_to_id.values()) + 1 + 8, d_model=32,
        encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=128, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2,
    )  # fmt: skip
    M2M100ForConditionalGeneration(config).save_pretrained(folder, safe_serialization=False)
    snapshot = write_folder(hub_cache_dir(), "facebook/m2m100_418M", folder)
    assert {"pytorch_model.bin", "sentencepiece.bpe.model", "vocab.json"} <= {
        p.name for p in snapshot.iterdir()
    }
    engine = get_translation_engine(load_settings({"mt.engine": "transformers"}))
    engine.check_pair("en", "sw")  # no OPUS-MT model: M2M100
    assert len(engine.translate(ENGLISH[:2], "en", "sw")) == 2
    engine.close()


@pytest.mark.usefixtures("no_network")
def test_nllb_loads_from_its_hub_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversion_threads: list[str]
) -> None:
    """facebook/nllb-200-distilled-600M as its repository holds it (``pytorch_model.bin``
    and no safetensors, ``sentencepiece.bpe.model`` and ``tokenizer.json``, the 202
    language codes as added tokens, ``generation_config.json``), chosen by its catalog
    name: the source language set on the tokenizer, the target's code forced as the
    first token, and no conversion thread started."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizerFast

    from octavia_cli.models.translation import MANY_TO_MANY

    work = tmp_path / "build"
    work.mkdir()
    spanish = ["Bienvenidos a la biblioteca.", "Hoy hablamos de libros viejos."]
    model = _train_spm(work, "spm", [*ENGLISH, *spanish])
    tokenizer = NllbTokenizerFast(vocab_file=str(model))
    folder = tmp_path / "nllb"
    tokenizer.save_pretrained(folder)
    (folder / "added_tokens.json").unlink()  # the repository has them in tokenizer.json only
    torch.manual_seed(0)
    config = M2M100Config(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, scale_embedding=True,
    )  # fmt: skip
    M2M100ForConditionalGeneration(config).save_pretrained(folder, safe_serialization=False)
    nllb = MANY_TO_MANY["nllb-600m"]
    snapshot = write_folder(hub_cache_dir(), nllb.hub_id, folder)
    assert sorted(p.name for p in snapshot.iterdir()) == [
        "config.json", "generation_config.json", "pytorch_model.bin", "sentencepiece.bpe.model",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    engine = get_translation_engine(load_settings({"mt.engine": "transformers",
                                                   "mt.model": "nllb-600m"}))  # fmt: skip
    engine.check_pair("en", "es")
    network, loaded, family = engine._load(engine._model_for("en", "es"))
    assert family == "nllb" and type(loaded).__name__ == "NllbTokenizerFast"
    outputs: list[Any] = []
    generate = network.generate

    def recording(**inputs: Any) -> Any:
        outputs.append((inputs["input_ids"], generate(**inputs)))
        return outputs[-1][1]

    monkeypatch.setattr(network, "generate", recording)
    assert len(engine.translate(ENGLISH[:2], "en", "es")) == 2
    [(inputs, generated)] = outputs
    english, spanish_code = loaded.convert_tokens_to_ids(["eng_Latn", "spa_Latn"])
    assert (inputs[:, 0] == english).all()  # the source's code starts every text
    assert (generated[:, 1] == spanish_code).all()  # after </s>, the target's code
    assert conversion_threads == []
    engine.close()


@pytest.mark.usefixtures("no_network")
def test_what_models_pull_fetches_is_what_the_engine_loads(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pinned opus-mt-en-es, its repository also holding the TensorFlow and Rust copies
    of the weights: the pull takes the PyTorch weights, the tokenizer's files and config."""
    spanish = ["Bienvenidos a la biblioteca.", "Hoy hablamos de libros.", "Gracias."]
    folder = tiny_opus_mt(tmp_path / "en-es", "en", "es", spanish)
    repository = {p.name: p.read_bytes() for p in folder.iterdir()}
    repository |= {"tf_model.h5": b"tf", "rust_model.ot": b"rust", "README.md": b"cc-by-4.0"}
    hub = install_fake_hub(monkeypatch, {"Helsinki-NLP/opus-mt-en-es": repository})
    code, _, err = cli("models", "pull", "opus-mt-en-es")
    assert code == 0, err
    assert hub.fetched("Helsinki-NLP/opus-mt-en-es") == sorted(folder_files(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    engine = get_translation_engine(load_settings({"mt.engine": "transformers"}))
    engine.check_pair("en", "es")
    assert len(engine.translate(ENGLISH, "en", "es")) == 4
    engine.close()


def folder_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()]
