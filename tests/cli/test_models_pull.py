"""`octavia models pull` fetches of a hub repository only what the model's loader reads
(issue 16, defect 9): the hub is faked (``tests/fake_hub.py``), with repositories listing
their files side by side as the hub shows them (the other frameworks' copies, samples,
training files, cards). That the files fetched are enough is proven by the real-layout
tests in ``tests/engines/test_*_hub.py``, which load each engine from what a pull leaves."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from fake_hub import install_fake_hub
from hub_layout import no_network  # noqa: F401 (a fixture)
from octavia_cli.models.bundled import hub_cache_dir
from octavia_cli.models.catalog import (
    XTTS_REVISION,
    all_models,
    download_patterns,
    find_model,
    installed_path,
)

CARDS = [".gitattributes", "README.md"]
OTHER_FRAMEWORKS = ["tf_model.h5", "flax_model.msgpack", "rust_model.ot", "onnx/encoder_model.onnx"]
# name in the catalog -> (the repository's files, those a pull fetches)
REPOSITORIES: dict[str, tuple[list[str], list[str]]] = {
    "whisper-large-v3": (
        [*CARDS, "config.json", "model.bin", "preprocessor_config.json", "tokenizer.json",
         "vocabulary.json"],
        ["config.json", "model.bin", "preprocessor_config.json", "tokenizer.json",
         "vocabulary.json"],
    ),
    "whisper-small": (  # an older conversion: the vocabulary as text
        [*CARDS, "config.json", "model.bin", "tokenizer.json", "vocabulary.txt"],
        ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"],
    ),
    "xtts-v2": (
        [*CARDS, "LICENSE.txt", "config.json", "dvae.pth", "hash.md5", "mel_stats.pth",
         "model.pth", "samples/en_sample.wav", "samples/es_sample.wav", "speakers_xtts.pth",
         "vocab.json"],
        ["config.json", "model.pth", "speakers_xtts.pth", "vocab.json"],
    ),
    "opus-mt-en-es": (  # the pinned 2020 commit: no safetensors
        [*CARDS, "config.json", "pytorch_model.bin", "source.spm", "target.spm",
         "tokenizer_config.json", "vocab.json", "tf_model.h5", "rust_model.ot",
         "flax_model.msgpack"],
        ["config.json", "pytorch_model.bin", "source.spm", "target.spm",
         "tokenizer_config.json", "vocab.json"],
    ),
    "opus-mt-en-de": (  # a later one, both copies of the weights: only the safetensors
        [*CARDS, "config.json", "generation_config.json", "model.safetensors",
         "pytorch_model.bin", "source.spm", "target.spm", "tokenizer_config.json",
         "vocab.json", *OTHER_FRAMEWORKS],
        ["config.json", "generation_config.json", "model.safetensors", "source.spm",
         "target.spm", "tokenizer_config.json", "vocab.json"],
    ),
    "m2m100-418m": (
        [*CARDS, "config.json", "generation_config.json", "pytorch_model.bin",
         "rust_model.ot", "sentencepiece.bpe.model", "special_tokens_map.json",
         "tokenizer_config.json", "vocab.json"],
        ["config.json", "generation_config.json", "pytorch_model.bin",
         "sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer_config.json",
         "vocab.json"],
    ),
    "nllb-600m": (
        [*CARDS, "config.json", "generation_config.json", "pytorch_model.bin",
         "sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer.json",
         "tokenizer_config.json"],
        ["config.json", "generation_config.json", "pytorch_model.bin",
         "sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer.json",
         "tokenizer_config.json"],
    ),
    "htdemucs": (
        [*CARDS, "htdemucs.yaml", "955717e8.json", "955717e8.safetensors"],
        ["955717e8.safetensors", "htdemucs.yaml"],
    ),
    "htdemucs_ft": (
        [*CARDS, "htdemucs_ft.yaml", *(f"{s}.{x}" for s in ("f7e0c4bc", "d12395a8", "92cfc3b6",
                                       "04573f0d") for x in ("json", "safetensors"))],
        ["04573f0d.safetensors", "92cfc3b6.safetensors", "d12395a8.safetensors",
         "f7e0c4bc.safetensors", "htdemucs_ft.yaml"],
    ),
    "pyannote-community-1": (
        [*CARDS, "config.yaml", "diarization.gif", "embedding/README.md",
         "embedding/pytorch_model.bin", "plda/README.md", "plda/plda.npz",
         "plda/xvec_transform.npz", "segmentation/pytorch_model.bin"],
        ["config.yaml", "embedding/pytorch_model.bin", "plda/plda.npz",
         "plda/xvec_transform.npz", "segmentation/pytorch_model.bin"],
    ),
}  # fmt: skip
# whisperx's Dutch alignment model: its processor and weights, not the n-gram model beside.
ALIGN_NL = (
    [*CARDS, "config.json", "preprocessor_config.json", "pytorch_model.bin",
     "special_tokens_map.json", "vocab.json", "flax_model.msgpack", "language_model/attrs.json",
     "language_model/lm.binary", "language_model/unigrams.txt", "eval.py"],
    ["config.json", "preprocessor_config.json", "pytorch_model.bin", "special_tokens_map.json",
     "vocab.json"],
)  # fmt: skip


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("name", sorted(REPOSITORIES))
def test_pull_fetches_only_what_the_loader_reads(
    cli, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository, fetched = REPOSITORIES[name]
    entry = find_model(name)
    hub = install_fake_hub(monkeypatch, {entry.location: {f: b"x" for f in repository}})
    code, out, err = cli("models", "pull", name, "--yes")  # xtts-v2: its licence accepted
    assert code == 0, err
    assert hub.fetched(entry.location) == sorted(fetched)
    (call,) = hub.downloads
    assert call["revision"] == entry.revision
    path = installed_path(entry, _settings())
    assert path is not None and out == f"{name}\t{path}\n"
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == (
        sorted(fetched)
    )
    # Only the transformers families ask which copy of the weights there is.
    assert hub.listings == ([entry.location] if entry.kind == "mt" else [])


@pytest.mark.usefixtures("no_network")
def test_pull_of_an_alignment_model_leaves_its_language_model(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = find_model("align-nl")
    if entry is None:
        pytest.skip("whisperx (its table of alignment models) is not installed")
    repository, fetched = ALIGN_NL
    hub = install_fake_hub(monkeypatch, {entry.location: {f: b"x" for f in repository}})
    assert cli("models", "pull", "align-nl")[0] == 0
    assert hub.fetched(entry.location) == sorted(fetched)


def test_every_hub_family_has_its_files() -> None:
    """No hub model is pulled whole: each kind has its patterns."""
    for entry in all_models():
        if entry.source == "hub":
            allow, _ = download_patterns(entry, ["pytorch_model.bin"])
            assert allow, entry.name
    assert find_model("xtts-v2").revision == XTTS_REVISION and find_model("xtts-v2").pinned


def _settings():
    from octavia_cli.config import load_settings

    return load_settings({})


def test_the_fake_hub_writes_the_cache_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = install_fake_hub(monkeypatch, {"org/model": {"a.json": b"{}", "b/c.bin": b"1"}})
    import huggingface_hub

    path = Path(huggingface_hub.snapshot_download("org/model", cache_dir=hub_cache_dir(),
                                                  allow_patterns=["*.bin"]))  # fmt: skip
    assert (path / "b" / "c.bin").is_symlink() and not (path / "a.json").exists()
    assert hub.fetched("org/model") == ["b/c.bin"]


# -- licences ---------------------------------------------------------------------------

XTTS_REPOSITORY = {name: b"x" for name in REPOSITORIES["xtts-v2"][0]}


class Terminal(io.StringIO):
    """A keyboard at a terminal, typing ``answer``."""

    def isatty(self) -> bool:
        return True


def _accepted() -> object:
    from octavia_cli.config import read_config_file

    return read_config_file(Path(os.environ["OCTAVIA_CONFIG"])).get("tts.accept_license")


@pytest.mark.usefixtures("no_network")
def test_xtts_is_fetched_only_once_its_licence_is_accepted(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = install_fake_hub(monkeypatch, {"coqui/XTTS-v2": XTTS_REPOSITORY})
    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    code, _, err = cli("models", "pull", "xtts-v2")  # no terminal to ask on
    assert code == 1 and "CPML (non-commercial)" in err and "https://coqui.ai/cpml" in err
    assert "--yes" in err and "COQUI_TOS_AGREED=1" in err and "tts.accept_license" in err
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, _, err = cli("models", "pull", "xtts-v2")
    assert code == 1 and "not accepted" in err and "Do you accept its terms? [y/N]" in err
    # A licence asked for comes before any other model is fetched.
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, _, _ = cli("models", "pull", "whisper-small", "xtts-v2")
    assert code == 1 and hub.downloads == [] and _accepted() is None
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, err = cli("models", "pull", "xtts-v2")
    assert code == 0, err
    assert hub.fetched("coqui/XTTS-v2") and out.startswith("xtts-v2\t")
    assert _accepted() is True and "tts.accept_license = true" in err  # recorded


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("how", ["--yes", "COQUI_TOS_AGREED=1", "accepted before"])
def test_the_licence_can_be_accepted_without_a_prompt(
    cli, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = install_fake_hub(monkeypatch, {"coqui/XTTS-v2": XTTS_REPOSITORY})
    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    arguments = ["models", "pull", "xtts-v2"]
    if how == "--yes":
        arguments.append("--yes")
    elif how == "COQUI_TOS_AGREED=1":  # coqui-tts's own variable
        monkeypatch.setenv("COQUI_TOS_AGREED", "1")
    else:
        assert cli("config", "set", "tts.accept_license", "true")[0] == 0
    code, _, err = cli(*arguments)
    assert code == 0, err
    assert hub.fetched("coqui/XTTS-v2") == ["config.json", "model.pth", "speakers_xtts.pth",
                                            "vocab.json"]  # fmt: skip
    assert _accepted() is (None if how == "COQUI_TOS_AGREED=1" else True)


def test_opus_mt_licences_follow_their_model_cards() -> None:
    """Most OPUS-MT cards on the hub say Apache-2.0, some CC-BY-4.0; the project itself
    releases its models under CC-BY-4.0, which a pair whose card was not checked gets."""
    from octavia_cli.models.translation import OPUS_MT_CARD_LICENSES, OPUS_MT_PAIRS

    assert set(OPUS_MT_CARD_LICENSES) <= OPUS_MT_PAIRS
    licences = {entry.name: entry.license for entry in all_models() if entry.kind == "mt"}
    assert licences["opus-mt-en-es"] == "Apache-2.0 (card) / CC-BY-4.0 (OPUS-MT)"
    assert licences["opus-mt-en-zh"].startswith("Apache-2.0")
    assert licences["opus-mt-en-de"] == licences["opus-mt-zh-en"] == "CC-BY-4.0"
    assert licences["opus-mt-en-sv"] == "CC-BY-4.0 (OPUS-MT; card not checked)"
    assert licences["nllb-600m"] == "CC-BY-NC-4.0" and licences["m2m100-418m"] == "MIT"
    apache = [name for name, licence in licences.items() if licence.startswith("Apache-2.0")]
    assert len(apache) == 14
