"""The speaker encoder without resemblyzer's module or torch: the same weights, spectrogram
and embeddings as resemblyzer's own, and neither torch, librosa nor webrtcvad imported for
them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from octavia_cli.engines.speaker_encoder import (
    mel_spectrogram,
    partial_slices,
    read_checkpoint,
    speaker_encoder,
    weights_path,
)


def _speech_like(seconds: float = 7.3) -> np.ndarray:
    """A voiced-sounding signal (a gliding harmonic tone with noise bursts): the encoder's
    arithmetic, not its judgement, is under test."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * 16_000)) / 16_000
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 16_000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 2.1 * t) > -0.3).astype(float)
    return (0.1 * voiced * envelope + 0.01 * rng.normal(size=len(t))).astype(np.float32)


def test_the_spectrogram_and_embeddings_are_resemblyzers() -> None:
    resemblyzer = pytest.importorskip("resemblyzer")
    from resemblyzer import audio

    wav = _speech_like()
    ours, theirs = mel_spectrogram(wav), audio.wav_to_mel_spectrogram(wav)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(theirs.max()))
    for length, rate, coverage in ((len(wav), 2.5, 0.5), (9_000, 2.5, 0.5), (40_000, 1.3, 0.75)):
        expected = resemblyzer.VoiceEncoder.compute_partial_slices(length, rate, coverage)
        assert partial_slices(length, rate, coverage) == expected
    reference = resemblyzer.VoiceEncoder("cpu", verbose=False)
    _, expected, expected_slices = reference.embed_utterance(
        wav, return_partials=True, rate=2.5, min_coverage=0.5
    )
    embeddings, slices = speaker_encoder().embed_partials(wav, rate=2.5, min_coverage=0.5)
    assert slices == expected_slices
    assert np.allclose(embeddings, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_the_checkpoint_reads_as_torch_reads_it() -> None:
    torch = pytest.importorskip("torch")
    ours = read_checkpoint(weights_path())
    theirs = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert ours["step"] == theirs["step"]
    assert ours["model_state"].keys() == theirs["model_state"].keys()
    for name, tensor in theirs["model_state"].items():
        assert ours["model_state"][name].dtype == np.float32
        assert np.array_equal(ours["model_state"][name], tensor.numpy()), name


def test_embedding_imports_neither_torch_librosa_nor_webrtcvad() -> None:
    pytest.importorskip("resemblyzer")
    program = (
        "import sys, numpy as np\n"
        "from octavia_cli.engines.speaker_encoder import speaker_encoder\n"
        "e, _ = speaker_encoder().embed_partials(np.zeros(32000, np.float32) + 0.01, 2.5, 0.5)\n"
        "assert e.shape == (3, 256), e.shape\n"
        "heavy = ('torch', 'librosa', 'webrtcvad', 'resemblyzer')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_a_resemblyzer_without_its_weights_is_said(tmp_path, monkeypatch) -> None:
    from octavia_cli.errors import MissingDependencyError
    from octavia_cli.models import bundled

    package_dir = bundled.package_dir  # resemblyzer's folder, without pretrained.pt
    monkeypatch.setattr(
        bundled, "package_dir",
        lambda name: tmp_path if name == "resemblyzer" else package_dir(name),
    )  # fmt: skip

    with pytest.raises(MissingDependencyError, match="without its weights") as raised:
        weights_path()
    assert raised.value.hint == "Reinstall it with: pip install --force-reinstall resemblyzer"


def test_a_checkpoint_holding_anything_but_tensors_is_refused(tmp_path) -> None:
    """The restricted unpickler loads tensors, dicts and storages, nothing else: a pickled
    call (what a tampered file would carry) is refused, not made."""
    import os
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "tampered.pt"
    with open(path, "wb") as file:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001}):
            pickle.dump(header, file, protocol=2)
        pickle.dump({"model_state": Payload()}, file, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="unexpected"):
        read_checkpoint(path)
    assert not marker.exists()
