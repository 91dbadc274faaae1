"""The transformers translation engine for real, with tiny randomly initialised MarianMT and
M2M100 models built here (sentencepiece trained on a few sentences), and its checks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")
torch = pytest.importorskip("torch")

from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.engines.mt import get_translation_engine  # noqa: E402
from octavia_cli.errors import InputError, MissingModelError  # noqa: E402
from octavia_cli.project.records import Segment  # noqa: E402
from octavia_cli.stages.translate import TranslateOptions, translate_segments  # noqa: E402
from octavia_cli.text.glossary import Glossary, Term  # noqa: E402
from octavia_cli.text.length import estimate_s  # noqa: E402

ENGLISH = [
    "Welcome to the city library.",
    "Today we talk about old books.",
    "The new room opens next week.",
    "Thank you for watching.",
]
SPANISH = [
    "Bienvenidos a la biblioteca de la ciudad.",
    "Hoy hablamos de libros viejos.",
    "La sala nueva abre la semana que viene.",
    "Gracias por mirar.",
]


def _train_spm(folder: Path, name: str, lines: list[str]) -> Path:
    import sentencepiece

    (folder / f"{name}.txt").write_text("\n".join(lines))
    sentencepiece.SentencePieceTrainer.train(
        input=str(folder / f"{name}.txt"),
        model_prefix=str(folder / name),
        vocab_size=60,
        hard_vocab_limit=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    return folder / f"{name}.model"


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sentencepiece
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder = tmp_path_factory.mktemp("tiny-marian")
    source = _train_spm(folder, "source", ENGLISH)
    target = _train_spm(folder, "target", SPANISH)
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for model in (source, target):
        processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
        for index in range(processor.get_piece_size()):
            vocab.setdefault(processor.id_to_piece(index), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(
        source_spm=str(source), target_spm=str(target), vocab=str(folder / "vocab.json")
    )
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=2, eos_token_id=0,
        decoder_start_token_id=2,
    )  # fmt: skip
    network = MarianMTModel(config)
    # A slight pull towards ending, and a generation config that favours longer beams (as
    # real OPUS-MT n-best lists often rank), so the beams differ in length and the best is
    # not always the shortest.
    network.final_logits_bias[0, 0] = 0.2
    network.generation_config.num_beams = 4
    network.generation_config.length_penalty = 2.0
    tokenizer.save_pretrained(folder)
    network.save_pretrained(folder)
    return folder


def _engine(model: Path | str, **extra: object):
    return get_translation_engine(
        load_settings({"mt.engine": "transformers", "mt.model": str(model), **extra})
    )


def test_marian_translates_in_batches_with_n_best(tiny_marian: Path) -> None:
    engine = _engine(tiny_marian, **{"mt.batch_size": 3})
    engine.check_pair("en", "es")
    best = engine.translate(ENGLISH, "en", "es")
    assert len(best) == 4 and all(isinstance(text, str) and text for text in best)
    groups = engine.candidates(ENGLISH, "en", "es", 4)
    assert [len(group) for group in groups] == [4, 4, 4, 4]
    assert [group[0] for group in engine.candidates(ENGLISH, "en", "es", 1)] == best
    assert len({len(text) for group in groups for text in group}) > 1  # lengths differ
    engine.close()


def test_a_parked_translator_translates_the_same(tiny_marian: Path) -> None:
    """Parked in CPU memory between stages (a kept engine on a GPU; on a CPU the move is to
    the same place), the models come back when it next translates, with the same result."""
    engine = _engine(tiny_marian)
    before = engine.translate(ENGLISH, "en", "es")
    engine.to_cpu()
    assert engine._parked is True
    assert engine.translate(ENGLISH, "en", "es") == before
    assert engine._parked is False
    engine.close()


def test_length_control_keeps_the_best_candidate_that_fits(tiny_marian: Path) -> None:
    engine = _engine(tiny_marian)
    rate, max_speed = 10.0, 1.3
    # A line whose best beam is not its shortest (the tiny model's beams differ in length).
    text, candidates, lengths = next(
        (text, group, lengths)
        for text, group in zip(ENGLISH, engine.candidates(ENGLISH, "en", "es", 6), strict=True)
        if (lengths := [estimate_s(c, rate) for c in group])[0] > min(lengths)
    )
    # A slot in which the best beam is too long but a later one fits.
    slot = (min(lengths) / max_speed + lengths[0] / max_speed) / 2
    expected = next(i for i, length in enumerate(lengths) if length / slot <= max_speed)
    segments = [Segment("0", 0.0, slot, text)]
    options = TranslateOptions(max_speed=max_speed, candidates=6, rate=lambda _: rate)
    report = translate_segments(segments, "en", "es", engine, options)
    chosen = segments[0].translations["es"]
    assert chosen.text == candidates[expected] and chosen.candidate == expected > 0
    assert chosen.ratio <= max_speed and chosen.estimated_s == pytest.approx(
        lengths[expected], abs=1e-3
    )
    assert report.shortened == 1


def test_glossary_is_verified_on_the_neural_engine(
    tiny_marian: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A random model cannot produce "Octavia": the miss is found and reported by name.
    engine = _engine(tiny_marian)
    segments = [Segment("0", 0.0, 2.0, "Octavia opens the library.")]
    glossary = Glossary((Term("Octavia", ""),))
    with caplog.at_level(logging.WARNING, logger="octavia_cli"):
        report = translate_segments(segments, "en", "es", engine, TranslateOptions(glossary))
    text = segments[0].translations["es"].text
    assert ("Octavia" in text) == (report.missing_terms == {})
    if report.missing_terms:
        assert "'Octavia' (1x)" in caplog.text


@pytest.fixture(scope="module")
def tiny_m2m100(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sentencepiece
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    folder = tmp_path_factory.mktemp("tiny-m2m100")
    model = _train_spm(folder, "spm", ENGLISH + SPANISH)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for index in range(processor.get_piece_size()):
        vocab.setdefault(processor.id_to_piece(index), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = M2M100Tokenizer(vocab_file=str(folder / "vocab.json"), spm_file=str(model))
    torch.manual_seed(0)
    config = M2M100Config(
        # the language tokens and 8 "madeup words" come after the sentencepiece vocabulary
        vocab_size=max(tokenizer.lang_code_to_id.values()) + 1 + 8, d_model=32,
        encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2,
    )  # fmt: skip
    tokenizer.save_pretrained(folder)
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    return folder


def test_m2m100_is_told_the_target_language(tiny_m2m100: Path) -> None:
    from transformers import AutoTokenizer

    engine = _engine(tiny_m2m100)
    engine.check_pair("en", "es")
    with pytest.raises(InputError, match="has no English→Esperanto"):
        engine.check_pair("en", "eo")
    tokenizer = AutoTokenizer.from_pretrained(tiny_m2m100)
    network, _, family = engine._load(engine._model_for("en", "es"))
    assert family == "m2m100"
    encoded = tokenizer(["Hello."], return_tensors="pt")
    tokenizer.src_lang = "en"
    output = network.generate(
        **tokenizer(["Hello."], return_tensors="pt"),
        forced_bos_token_id=tokenizer.get_lang_id("es"),
        max_new_tokens=5,
    )
    assert int(output[0, 1]) == tokenizer.get_lang_id("es")  # the path the engine takes
    assert encoded["input_ids"].shape[0] == 1
    assert len(engine.translate(["Hello.", "Good night."], "en", "es")) == 2


def test_checks_before_loading(tmp_path: Path) -> None:
    # Offline and nothing cached: the model is named, with its licence and size.
    with pytest.raises(MissingModelError, match="Helsinki-NLP/opus-mt-en-es"):
        _engine("auto").check_pair("en", "es")
    with pytest.raises(MissingModelError, match="facebook/m2m100_418M"):
        _engine("auto").check_pair("en", "sw")
    with pytest.raises(MissingModelError, match="CC-BY-NC"):
        _engine("nllb-600m").check_pair("en", "sw")
    with pytest.raises(InputError, match="has no French→German"):
        _engine("opus-mt-en-es").check_pair("fr", "de")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(MissingModelError, match="'bert' model"):
        _engine(tmp_path).check_pair("en", "es")


@pytest.mark.slow
def test_two_languages_in_one_run_share_everything_up_to_translation(
    cli, tiny_marian: Path, talk: Path, monkeypatch: pytest.MonkeyPatch, fake_engines
) -> None:
    fake_engines.real.update({"translator", "speech"})  # heard by the fakes, the rest real
    code, out, err = cli(
        "dub", str(talk), "--to", "es", "--to", "fr", "--from", "en",
        "-o", str(talk.with_name("talk.{lang}.mp4")),
    )  # fmt: skip
    assert code == 1 and "Apertium has no English→French" in err  # checked before any stage
    monkeypatch.setenv("OCTAVIA_MT_ENGINE", "transformers")
    monkeypatch.setenv("OCTAVIA_MT_MODEL", str(tiny_marian))
    code, out, err = cli("dub", str(talk), "--to", "es", "--to", "fr", "--from", "en")
    assert code == 0, err
    assert out.split() == [str(talk.with_name("talk.es.mp4")), str(talk.with_name("talk.fr.mp4"))]
    assert err.count("extract: done") == 1 and err.count("transcribe: done") == 1
    assert err.count("mux:es: done") == 1 and err.count("mux:fr: done") == 1


def test_marian_normalises_punctuation_as_opus_mt_was_trained(tiny_marian: Path) -> None:
    """OPUS-MT's training text went through Moses' punctuation normaliser; without
    sacremoses (issue 16, defect 12) the tokenizer passes typographic quotes and dashes on
    unchanged, which the model rarely saw."""
    engine = _engine(tiny_marian)
    _, tokenizer, family = engine._load(engine._model_for("en", "es"))
    assert family == "marian"
    assert tokenizer.punc_normalizer("«Hello» – „world“") == '"Hello" - "world"'
    engine.close()
