"""demucs from the hub cache as the hub holds it: a tiny randomly initialised HTDemucs in the
files of ``adefossez/HTDemucs`` as demucs 4.1 exports them (``tools/export_hf.py``: the bag's
``htdemucs.yaml``, ``955717e8.safetensors`` with the class and its arguments as JSON in the
metadata, a ``955717e8.json`` sidecar, the model card), loaded by the separator from the
name ``htdemucs`` with downloads off and every connection refused."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("demucs")
soundfile = pytest.importorskip("soundfile")
torch = pytest.importorskip("torch")

from fake_hub import install_fake_hub  # noqa: E402
from hub_layout import (  # noqa: E402
    assert_blobs_intact,
    no_network,  # noqa: F401 (a fixture)
    tree_state,
    write_hub_repo,
)
from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.engines.separation import get_separation_engine  # noqa: E402
from octavia_cli.errors import MissingModelError  # noqa: E402
from octavia_cli.models.bundled import hub_cache_dir  # noqa: E402
from octavia_cli.models.catalog import DEMUCS_MODELS, find_model, installed_path  # noqa: E402

SIGNATURE = "955717e8"  # htdemucs's one model (demucs/remote/htdemucs.yaml)
SOURCES = ["drums", "bass", "other", "vocals"]


def _json_default(value: object) -> object:
    """How export_hf.py writes a Fraction (HTDemucs's ``segment``) into the metadata."""
    if isinstance(value, Fraction):
        return {"_type": "fraction", "numerator": value.numerator,
                "denominator": value.denominator}  # fmt: skip
    return str(value)


@pytest.fixture(scope="module")
def htdemucs_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    torch.manual_seed(0)
    kwargs = {"sources": SOURCES, "audio_channels": 2, "samplerate": 44100,
              "segment": Fraction(39, 5), "channels": 8, "t_layers": 1, "t_heads": 2,
              "bottom_channels": 0}  # fmt: skip
    model = HTDemucs(**kwargs)
    metadata = {
        "klass": "demucs.htdemucs.HTDemucs",
        "args": json.dumps([]),
        "kwargs": json.dumps(kwargs, default=_json_default),
    }
    folder = tmp_path_factory.mktemp("htdemucs")
    weights = folder / f"{SIGNATURE}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights),
              metadata=metadata)  # fmt: skip
    sidecar = dict(metadata, training_args={"dset": {"name": "tiny"}}, metrics={})
    return {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": b"---\nlicense: mit\ntags:\n- demucs\n---\n\n# htdemucs\n",
        "htdemucs.yaml": f"models: ['{SIGNATURE}']\n".encode(),  # as demucs/remote has it
        f"{SIGNATURE}.json": json.dumps(sidecar, indent=2).encode(),
        f"{SIGNATURE}.safetensors": weights.read_bytes(),
    }


def _mix(path: Path, seconds: float = 4.0) -> Path:
    speech = path.with_suffix(".speech.wav")
    subprocess.run(["espeak-ng", "-w", str(speech), "The music room opens next week."],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=220:d={seconds}",
         "-i", str(speech), "-filter_complex", f"[0:a][1:a]amix=inputs=2,atrim=0:{seconds}",
         "-ar", "48000", "-ac", "2", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.usefixtures("no_network")
def test_htdemucs_separates_from_its_hub_layout(
    htdemucs_files: dict[str, bytes], tmp_path: Path
) -> None:
    from demucs.apply import BagOfModels

    settings = load_settings({"separation.engine": "demucs", "general.device": "cpu"})
    assert settings.offline and settings.separation.model == "htdemucs"
    with pytest.raises(MissingModelError, match="octavia models pull htdemucs"):
        get_separation_engine(settings).model()  # nothing cached yet: no download tried
    repo_id, _ = DEMUCS_MODELS["htdemucs"]
    snapshot = write_hub_repo(hub_cache_dir(), repo_id, htdemucs_files)
    assert installed_path(find_model("htdemucs"), settings) == snapshot
    before = tree_state(hub_cache_dir())
    separator = get_separation_engine(settings)
    model = separator.model()
    assert isinstance(model, BagOfModels) and list(model.sources) == SOURCES
    assert model.samplerate == 44100 and model.models[0].segment == Fraction(39, 5)
    source = _mix(tmp_path / "mix.wav")
    progress: list[float] = []
    separator.separate(source, tmp_path / "v.wav", tmp_path / "b.wav",
                       lambda done, total: progress.append(done))  # fmt: skip
    frames = soundfile.info(str(source)).frames
    for name in ("v.wav", "b.wav"):
        audio, rate = soundfile.read(str(tmp_path / name))
        assert rate == 48_000 and audio.shape == (frames, 2)
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert progress == pytest.approx([frames / 48_000])
    separator.close()
    assert_blobs_intact(hub_cache_dir())
    assert tree_state(hub_cache_dir()) == before  # nothing added, removed or rewritten


@pytest.mark.usefixtures("no_network")
def test_what_models_pull_fetches_is_what_the_engine_loads(
    cli, htdemucs_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id, _ = DEMUCS_MODELS["htdemucs"]
    hub = install_fake_hub(monkeypatch, {repo_id: htdemucs_files})
    code, _, err = cli("models", "pull", "htdemucs")
    assert code == 0, err
    assert hub.fetched(repo_id) == ["955717e8.safetensors", "htdemucs.yaml"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = load_settings({"separation.engine": "demucs", "general.device": "cpu"})
    assert list(get_separation_engine(settings).model().sources) == SOURCES
