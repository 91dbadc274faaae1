"""XTTS v2 from the hub cache as the hub holds it: a tiny randomly initialised model whose
``model.pth`` is in the original format (the trainer's pickled ``XttsConfig`` beside the
weights, its classes under their 2023 module path), in the hub cache's exact layout, loaded
by the engine with downloads off: it speaks, and the cache is left exactly as it was."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("TTS", reason="the xtts engine needs octavia-cli[quality]")
torch = pytest.importorskip("torch")

from test_xtts import build_tiny_xtts  # noqa: E402

from fake_hub import install_fake_hub  # noqa: E402
from hub_layout import (  # noqa: E402
    assert_blobs_intact,
    no_network,  # noqa: F401 (a fixture)
    tree_state,
)
from octavia_cli.models.bundled import hub_cache_dir  # noqa: E402

LEGACY_MODULE = "TTS.tts.models.xtts"  # where XttsArgs and XttsAudioConfig were defined


def _save_original_checkpoint(config: object, weights: dict, path: Path) -> None:
    """``torch.save`` as coqui's trainer wrote the hub's file: the config object itself, its
    ``XttsArgs`` and ``XttsAudioConfig`` pickled under the module they lived in then."""
    from TTS.tts.configs.xtts_config import XttsArgs, XttsAudioConfig

    modules = {cls: cls.__module__ for cls in (XttsArgs, XttsAudioConfig)}
    try:
        for cls in modules:
            cls.__module__ = LEGACY_MODULE
        torch.save({"config": config, "model": weights}, path)
    finally:
        for cls, module in modules.items():
            cls.__module__ = module
    assert f"{LEGACY_MODULE}\nXttsArgs".encode() in path.read_bytes()


@pytest.fixture(scope="module")
def original_xtts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The files of a 2-layer XTTS with a character vocabulary (see test_xtts.py), named as
    in the hub repository coqui/XTTS-v2 (``dvae.pth``, ``mel_stats.pth`` and the samples,
    which inference never reads, left out)."""
    folder = tmp_path_factory.mktemp("original-xtts")
    config, model = build_tiny_xtts(folder)
    config.model_args.tokenizer_file = ""  # as in the hub's config.json: vocab.json sits beside it
    _save_original_checkpoint(config, model.state_dict(), folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    speakers = {"Ana Florence": {"gpt_cond_latent": torch.zeros(1, 32, 64),
                                 "speaker_embedding": torch.zeros(1, 512, 1)}}  # fmt: skip
    torch.save(speakers, folder / "speakers_xtts.pth")
    files = {name: (folder / name).read_bytes() for name in
             ("config.json", "model.pth", "vocab.json", "speakers_xtts.pth")}  # fmt: skip
    files["hash.md5"] = b"10f92b55c512af7a8d39d650547a15a7"
    files["README.md"] = b"---\nlicense: other\nlicense_name: coqui-public-model-license\n---\n"
    shutil.rmtree(folder)  # nothing may be read from where it was built
    return files


@pytest.mark.slow
@pytest.mark.usefixtures("no_network")
def test_the_original_checkpoint_loads_from_the_hub_cache_without_writing_to_it(
    cli, original_xtts: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache as ``octavia models pull xtts-v2`` leaves it (the repository's training
    files and samples left on the hub), at the catalog's pinned commit."""
    from octavia_cli.config import load_settings
    from octavia_cli.engines.tts.xtts import HUB_ID, XttsEngine
    from octavia_cli.models.catalog import XTTS_FILES, XTTS_REVISION

    repository = {**original_xtts, "dvae.pth": b"training only", "mel_stats.pth": b"training",
                  "samples/en_sample.wav": b"RIFF"}  # fmt: skip
    hub = install_fake_hub(monkeypatch, {HUB_ID: repository})
    monkeypatch.setenv("OCTAVIA_TTS_ACCEPT_LICENSE", "true")
    code, out, err = cli("models", "pull", "xtts-v2")
    assert code == 0, err
    assert hub.fetched(HUB_ID) == sorted(XTTS_FILES)
    snapshot = hub_cache_dir() / "models--coqui--XTTS-v2" / "snapshots" / XTTS_REVISION
    assert out == f"xtts-v2\t{snapshot}\n" and (snapshot / "model.pth").is_symlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = tree_state(hub_cache_dir())
    monkeypatch.setenv("OCTAVIA_DEVICE", "cpu")
    settings = load_settings({})
    assert settings.offline and settings.tts.model == ""  # the catalog's coqui/XTTS-v2
    engine = XttsEngine(settings)
    reference = tmp_path / "reference.wav"
    subprocess.run(["espeak-ng", "-w", str(reference), "Hello, this is my voice, speaking "
                    "clearly for the recording."], check=True, capture_output=True)  # fmt: skip
    voice = tmp_path / "voice.pt"
    torch.save(engine.clone([reference]), voice)
    spoken = engine.synthesize("hola a todos", "es", str(voice), tmp_path / "hola.wav")
    assert spoken.duration_s > 0.1 and spoken.sample_rate_hz == 24_000
    assert engine._model.speaker_manager.speaker_names == ["Ana Florence"]
    engine.close()
    assert_blobs_intact(hub_cache_dir())
    assert tree_state(hub_cache_dir()) == before  # nothing added, removed or rewritten


def test_a_converted_checkpoint_reads_the_same(
    original_xtts: dict[str, bytes], tmp_path: Path
) -> None:
    """What coqui's loader used to leave behind (the config as a dict) reads too."""
    from octavia_cli.engines.tts.xtts import read_weights

    original = tmp_path / "original.pth"
    original.write_bytes(original_xtts["model.pth"])
    weights = read_weights(original)
    converted = tmp_path / "converted.pth"
    torch.save({"config": {"model": "xtts"}, "model": weights}, converted)
    again = read_weights(converted)
    assert weights.keys() == again.keys()
    assert all(torch.equal(weights[key], again[key]) for key in weights)
    assert original.read_bytes() == original_xtts["model.pth"]
