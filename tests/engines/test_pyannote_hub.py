"""pyannote's community-1 pipeline from the hub cache as the hub holds it: the files of
``pyannote/speaker-diarization-community-1`` (``config.yaml`` naming its own subfolders as
``$model/segmentation``, ``$model/embedding`` and ``$model/plda``; a pyannote checkpoint in
each model folder; the PLDA's two ``.npz``; the cards and the gif), with a tiny random
PyanNet segmentation, a random WeSpeaker ResNet34 (the embedding's real architecture,
saved as pyannote's conversion script saves it) and a random PLDA, loaded by the
diarizer with its token, downloads off and every connection refused."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pyannote.audio", reason="the pyannote engine needs octavia-cli[quality]")
torch = pytest.importorskip("torch")

from test_diarization import tiny_segmentation  # noqa: E402

from fake_hub import install_fake_hub  # noqa: E402
from hub_layout import (  # noqa: E402
    assert_blobs_intact,
    no_network,  # noqa: F401 (a fixture)
    tree_state,
    write_hub_repo,
)
from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.engines.diarization import get_diarization_engine  # noqa: E402
from octavia_cli.engines.diarization.base import SpeakerCount  # noqa: E402
from octavia_cli.errors import MissingModelError  # noqa: E402
from octavia_cli.models.bundled import hub_cache_dir  # noqa: E402
from octavia_cli.models.catalog import PYANNOTE_PIPELINE, find_model, installed_path  # noqa: E402

# The repository's config.yaml (as two independent projects quote it from their caches).
CONFIG = b"""pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    clustering: VBxClustering
    segmentation: $model/segmentation
    segmentation_batch_size: 32
    embedding: $model/embedding
    embedding_batch_size: 32
    embedding_exclude_overlap: true
    plda: $model/plda

params:
  clustering:
    threshold: 0.6
    Fa: 0.07
    Fb: 0.8
  segmentation:
    min_duration_off: 0.0
"""
# What pyannote.audio 4.0.7 reads of it: the config, each model's checkpoint, the PLDA's
# transform and model.
READ = ["config.yaml", "segmentation/pytorch_model.bin", "embedding/pytorch_model.bin",
        "plda/xvec_transform.npz", "plda/plda.npz"]  # fmt: skip
TOKEN = "hf_octavia_test_token"


def _checkpoint(model: Any, hyper_parameters: bool) -> bytes:
    """A pyannote checkpoint as Lightning and ``Model.on_save_checkpoint`` write it."""
    import lightning

    checkpoint: dict[str, Any] = {"state_dict": model.state_dict()}
    if hyper_parameters:  # a trained model's; the converted WeSpeaker has none
        checkpoint["hyper_parameters"] = dict(model.hparams)
    model.on_save_checkpoint(checkpoint)
    checkpoint["pytorch-lightning_version"] = lightning.__version__
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def community_files() -> dict[str, bytes]:
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    segmentation = tiny_segmentation(duration_s=10.0)
    embedding = WeSpeakerResNet34()
    embedding.specifications = Specifications(  # pyannote's convert.py: "whatever"
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0
    )
    # A PLDA of the real one's shape: 256-dimensional x-vectors, 128 LDA dimensions.
    rng, dim, lda = np.random.default_rng(0), 256, 128
    rotation, _ = np.linalg.qr(rng.normal(size=(lda, lda)))
    transform = _npz(mean1=rng.normal(size=dim) * 0.01, mean2=rng.normal(size=lda) * 0.01,
                     lda=rng.normal(size=(dim, lda)))  # fmt: skip
    return {
        ".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.npz filter=lfs -text\n",
        "README.md": b"---\nlicense: cc-by-4.0\nextra_gated_prompt: ...\n---\n",
        "config.yaml": CONFIG,
        "diarization.gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        "embedding/README.md": b"WeSpeaker ResNet34 (pyannote/wespeaker-voxceleb-resnet34-LM)\n",
        "embedding/pytorch_model.bin": _checkpoint(embedding, hyper_parameters=False),
        "plda/README.md": b"PLDA trained by BUT Speech@FIT\n",
        "plda/plda.npz": _npz(mu=np.zeros(lda), tr=rotation, psi=np.linspace(2, 0.5, lda)),
        "plda/xvec_transform.npz": transform,
        "segmentation/pytorch_model.bin": _checkpoint(segmentation, hyper_parameters=True),
    }


@pytest.fixture
def speech_16k(tmp_path: Path) -> Path:
    from conftest import make_dialogue

    clip, _ = make_dialogue(tmp_path / "dialogue.wav", 8.0, video=False)
    target = tmp_path / "dialogue-16k.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-ar", "16000", "-ac", "1",
                    str(target)], check=True)  # fmt: skip
    return target


@pytest.mark.usefixtures("no_network")
def test_community_1_diarizes_from_its_hub_layout(
    community_files: dict[str, bytes], speech_16k: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyannote.audio.utils.hf_hub as pyannote_hub

    settings = load_settings({"diarization.engine": "pyannote", "diarization.accept_terms": True,
                              "diarization.hf_token": TOKEN, "general.device": "cpu"})  # fmt: skip
    assert settings.offline and settings.diarization.model == PYANNOTE_PIPELINE
    with pytest.raises(MissingModelError, match="octavia models pull"):
        get_diarization_engine(settings).pipeline()  # nothing cached: no download tried
    snapshot = write_hub_repo(hub_cache_dir(), PYANNOTE_PIPELINE, community_files)
    assert installed_path(find_model("pyannote-community-1"), settings) == snapshot
    before = tree_state(hub_cache_dir())
    asked: list[tuple[str, str | None, object, object]] = []
    download = pyannote_hub.hf_hub_download

    def recording(repo_id: str, filename: str, **options: Any) -> str:
        subfolder = options.get("subfolder")
        asked.append((f"{subfolder}/{filename}" if subfolder else filename, repo_id,
                      options.get("token"), options.get("cache_dir")))  # fmt: skip
        return download(repo_id, filename, **options)

    monkeypatch.setattr(pyannote_hub, "hf_hub_download", recording)
    engine = get_diarization_engine(settings)
    engine.check()
    progress: list[float] = []
    turns = engine.diarize(speech_16k, SpeakerCount(exactly=2), lambda d, t: progress.append(d))
    assert turns, "random weights still give turns"
    assert all(0 <= t.start_s < t.end_s <= 8.01 for t in turns), turns
    assert turns == sorted(turns, key=lambda t: (t.start_s, t.end_s))
    assert progress[-1] == pytest.approx(8.0, abs=0.1)
    # Each file from the repository, with the user's token, from the catalog's cache.
    assert sorted(name for name, *_ in asked) == sorted(READ)
    assert {(repo, token, cache) for _, repo, token, cache in asked} == {
        (PYANNOTE_PIPELINE, TOKEN, str(hub_cache_dir()))
    }
    engine.close()
    assert_blobs_intact(hub_cache_dir())
    assert tree_state(hub_cache_dir()) == before  # nothing added, removed or rewritten


@pytest.mark.usefixtures("no_network")
def test_what_models_pull_fetches_is_what_the_engine_loads(
    cli, community_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = install_fake_hub(monkeypatch, {PYANNOTE_PIPELINE: community_files})
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the gated repository wants the user's token
    code, _, err = cli("models", "pull", "pyannote-community-1")
    assert code == 0, err
    assert hub.fetched(PYANNOTE_PIPELINE) == sorted(READ)
    assert hub.downloads[0]["token"] == TOKEN
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = load_settings({"diarization.engine": "pyannote", "diarization.accept_terms": True,
                              "general.device": "cpu"})  # fmt: skip
    pipeline = get_diarization_engine(settings).pipeline()
    assert type(pipeline).__name__ == "SpeakerDiarization"
