"""The voice library at rest: sealed files (the test reads them), the key's three sources,
a wrong key in one sentence, plain voices of before sealed on first use, exports sealed
with a passphrase; on serve, one key never sees another's voices; and matching a speaker
to a stored voice on the shared LibriSpeech speakers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from octavia_cli.models import vault  # noqa: E402
from octavia_cli.models.voices import VoiceLibrary, VoiceProfile, key_file  # noqa: E402

LIBRISPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech"


def _reference(path: Path) -> Path:
    subprocess.run(["espeak-ng", "-w", str(path), "This is the voice of the reference."],
                   check=True, capture_output=True)  # fmt: skip
    return path


def _conditioning() -> dict:
    generator = torch.Generator().manual_seed(3)
    return {"gpt_cond_latent": torch.randn(1, 32, 64, generator=generator),
            "speaker_embedding": torch.randn(1, 512, 1, generator=generator)}  # fmt: skip


def _store(library: VoiceLibrary, name: str, tmp_path: Path) -> dict:
    conditioning = _conditioning()
    library.save(VoiceProfile(name, "xtts", "tiny"), conditioning,
                 reference=_reference(tmp_path / f"{name}.wav"),
                 embedding=np.linspace(-1, 1, 256, dtype=np.float32))  # fmt: skip
    return conditioning


def test_voices_at_rest_hold_no_plain_latents_audio_or_profile(tmp_path: Path) -> None:
    library = VoiceLibrary(tmp_path / "voices")
    conditioning = _store(library, "anna", tmp_path)
    files = {p.name: p.read_bytes() for p in (tmp_path / "voices" / "anna").iterdir()}
    assert sorted(files) == ["conditioning.pt.enc", "embedding.npy.enc", "profile.json.enc",
                             "reference.wav.enc"]  # fmt: skip
    latent = conditioning["gpt_cond_latent"].numpy().tobytes()
    embedding = np.linspace(-1, 1, 256, dtype=np.float32).tobytes()
    for data in files.values():
        assert data.startswith(b"OCTV1")
        for plain in (latent[:32], latent[-32:], embedding[:32], b"RIFF", b"WAVE", b"anna",
                      b"xtts", b"PK\x03\x04"):  # fmt: skip
            assert plain not in data
    # Read back whole, and the key file is the owner's only.
    back = library.conditioning("anna")
    assert torch.equal(back["gpt_cond_latent"], conditioning["gpt_cond_latent"])
    assert np.allclose(library.embedding("anna"), np.linspace(-1, 1, 256))
    assert (library.reference_audio("anna") or b"").startswith(b"RIFF")
    assert oct(key_file().stat().st_mode & 0o777) == "0o600"
    # A file cannot be passed off as another (its role is bound to it).
    folder = tmp_path / "voices" / "anna"
    (folder / "embedding.npy.enc").write_bytes(files["reference.wav.enc"])
    with pytest.raises(vault.VoiceKeyError, match="does not decrypt"):
        library.embedding("anna")


def test_a_wrong_voice_key_is_one_sentence(cli, tmp_path: Path, monkeypatch) -> None:
    _store(VoiceLibrary(), "anna", tmp_path)
    monkeypatch.setenv("OCTAVIA_VOICE_KEY", vault.new_key_text())
    code, out, err = cli("voices", "show", "anna")
    assert code == 1 and out == "" and "Traceback" not in err
    assert "encrypted with another key" in err and "OCTAVIA_VOICE_KEY" in err
    monkeypatch.setenv("OCTAVIA_VOICE_KEY", "not a key")
    code, _, err = cli("voices", "list")
    assert code == 1 and "OCTAVIA_VOICE_KEY is not a voice key" in err


def test_the_key_comes_from_the_environment_the_keyring_or_a_file(tmp_path, monkeypatch) -> None:
    import keyring
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            self.secrets: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.secrets.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.secrets[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.secrets.pop((service, username), None)

    memory = Memory()
    previous = keyring.get_keyring()
    keyring.set_keyring(memory)
    try:
        first = vault.load_key(tmp_path / "voice.key")
        assert memory.secrets and not (tmp_path / "voice.key").exists()
        assert vault.load_key(tmp_path / "voice.key") == first
        given = vault.new_key_text()
        monkeypatch.setenv("OCTAVIA_VOICE_KEY", given)
        assert vault.load_key(tmp_path / "voice.key") == vault._decode(given, "x")
    finally:
        keyring.set_keyring(previous)
    monkeypatch.delenv("OCTAVIA_VOICE_KEY")
    from_file = vault.load_key(tmp_path / "voice.key")  # no keyring here: a 0600 file
    assert (tmp_path / "voice.key").stat().st_mode & 0o777 == 0o600
    assert vault.load_key(tmp_path / "voice.key") == from_file != first


def test_plain_voices_of_before_are_sealed_on_first_use(cli, tmp_path: Path) -> None:
    folder = VoiceLibrary().root / "old"
    folder.mkdir(parents=True)
    conditioning = _conditioning()
    torch.save(conditioning, folder / "conditioning.pt")
    (folder / "reference.wav").write_bytes(_reference(tmp_path / "r.wav").read_bytes())
    (folder / "profile.json").write_text(json.dumps(
        {"name": "old", "engine": "xtts", "model": "coqui/XTTS-v2", "references": [],
         "created_at": "2026-01-01T00:00:00Z", "schema": 1}))  # fmt: skip
    (folder / "reference.embedding.npy").write_bytes(b"cache")
    code, out, err = cli("voices", "list")
    assert code == 0 and out.startswith("old\txtts"), err
    assert sorted(p.name for p in folder.iterdir()) == [
        "conditioning.pt.enc", "profile.json.enc", "reference.wav.enc"]  # fmt: skip
    back = VoiceLibrary().conditioning("old")
    assert torch.equal(back["gpt_cond_latent"], conditioning["gpt_cond_latent"])


def test_exports_are_sealed_with_a_passphrase(cli, tmp_path: Path, monkeypatch) -> None:
    _store(VoiceLibrary(), "anna", tmp_path)
    archive = tmp_path / "anna.octavia-voice"
    monkeypatch.setenv("OCTAVIA_VOICE_PASSPHRASE", "correct horse")
    code, _, err = cli("voices", "export", "anna", str(archive))
    assert code == 0, err
    data = archive.read_bytes()
    assert data.startswith(b"OCTVX1") and b"anna" not in data and b"\x1f\x8b" not in data[:8]
    assert cli("voices", "rename", "anna", "maria")[0] == 0
    monkeypatch.setenv("OCTAVIA_VOICE_PASSPHRASE", "wrong")
    code, _, err = cli("voices", "import", str(archive))
    assert code == 1 and "The passphrase does not open" in err and "Traceback" not in err
    # On another machine (another key), with the passphrase: sealed with that machine's key.
    monkeypatch.setenv("OCTAVIA_VOICE_KEY", vault.new_key_text())
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("OCTAVIA_VOICE_PASSPHRASE", "correct horse")
    code, out, err = cli("voices", "import", str(archive))
    assert code == 0 and out.strip() == "anna", err
    assert VoiceLibrary().load("anna").name == "anna"
    # An unsealed export of an Octavia of before still imports.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as old:
        for name, payload in (("profile.json", json.dumps({"name": "bob", "engine": "xtts",
                              "model": "m", "schema": 1}).encode()),
                              ("conditioning.pt", _pt(_conditioning()))):  # fmt: skip
            info = tarfile.TarInfo(f"bob/{name}")
            info.size = len(payload)
            old.addfile(info, io.BytesIO(payload))
    (tmp_path / "bob.tar.gz").write_bytes(buffer.getvalue())
    assert cli("voices", "import", str(tmp_path / "bob.tar.gz"))[0] == 0
    assert (VoiceLibrary().root / "bob" / "conditioning.pt.enc").exists()


def test_voice_commands_refuse_in_one_sentence(cli, tmp_path: Path, monkeypatch) -> None:
    """Without a passphrase and no terminal to ask, a missing passphrase file, a name taken:
    exit 1 and a sentence, nothing written."""
    _store(VoiceLibrary(), "anna", tmp_path)
    _store(VoiceLibrary(), "maria", tmp_path)
    out = tmp_path / "anna.octavia-voice"
    code, _, err = cli("voices", "export", "anna", str(out))  # stdin is no terminal here
    assert code == 1 and "no terminal to ask" in err and "--passphrase-file" in err
    code, _, err = cli("voices", "export", "anna", str(out), "--passphrase-file",
                       str(tmp_path / "nope.txt"))  # fmt: skip
    assert code == 1 and "nope.txt does not exist" in err
    assert not out.exists()
    code, _, err = cli("voices", "rename", "anna", "maria")
    assert code == 1 and "A voice called 'maria' exists" in err and "--force" in err
    code, _, err = cli("voices", "rename", "anna", "../x")
    assert code == 1 and "not a usable voice name" in err
    # A sealed export needs its passphrase: with no terminal, said, not asked.
    monkeypatch.setenv("OCTAVIA_VOICE_PASSPHRASE", "pw")
    assert cli("voices", "export", "anna", str(out))[0] == 0
    monkeypatch.delenv("OCTAVIA_VOICE_PASSPHRASE")
    code, _, err = cli("voices", "import", str(out), "--force")
    assert code == 1 and "no terminal to ask" in err
    assert "Traceback" not in err


def _pt(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def test_one_key_cannot_see_or_use_anothers_voices(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("fastapi")
    from octavia_cli.server.jobs import DubOptions, dub_request, key_library
    from server.test_serve import InProcessServer

    archive = tmp_path / "anna.octavia-voice"
    _store(VoiceLibrary(tmp_path / "mine"), "anna", tmp_path)
    VoiceLibrary(tmp_path / "mine").export("anna", archive, "pw")
    server = InProcessServer(tmp_path / "data")
    alice, bob = server.key("alice", 10)[1], server.key("bob", 10)[1]
    as_alice, as_bob = server.http(alice), server.http(bob)
    imported = as_alice.put("/voices", content=archive.read_bytes(),
                            headers={"Octavia-Voice-Passphrase": "pw"})  # fmt: skip
    assert imported.status_code == 201, imported.text
    assert [v["name"] for v in as_alice.get("/voices").json()] == ["anna"]
    assert as_bob.get("/voices").json() == []
    for response in (as_bob.delete("/voices/anna"),
                     as_bob.post("/voices/anna/rename", json={"name": "mine"}),
                     as_bob.delete("/voices/ghost")):  # fmt: skip
        assert response.status_code == 404 and response.json()["detail"] in (
            "anna",
            "ghost",
            "mine",
        )
    wrong = as_bob.put("/voices", content=archive.read_bytes(),
                       headers={"Octavia-Voice-Passphrase": "nope"})  # fmt: skip
    assert wrong.status_code == 422 and "passphrase does not open the file" in wrong.text
    # A job's settings point at its own key's library, never another's.
    folder = tmp_path / "data" / "jobs" / "j1"
    source = tmp_path / "talk.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", str(source)],
                   check=True)  # fmt: skip
    settings, _ = dub_request(DubOptions.model_validate({"to": ["es"]}), source, folder,
                              key_id="bobid")  # fmt: skip
    assert settings.tts.voice_library == key_library(folder, "bobid")
    assert settings.tts.voice_library.endswith(os.path.join("data", "voices", "bobid"))
    with pytest.raises(Exception, match="no voice called 'anna'"):
        VoiceLibrary(Path(settings.tts.voice_library)).load("anna")
    taken = as_alice.put("/voices", content=archive.read_bytes(),
                         headers={"Octavia-Voice-Passphrase": "pw"})  # fmt: skip
    assert taken.status_code == 409 and "A voice called 'anna' exists" in taken.text
    renamed = as_alice.post("/voices/anna/rename", json={"name": "maria"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "maria"
    assert as_alice.delete("/voices/maria").json() == {"deleted": "maria"}


@pytest.mark.slow
@pytest.mark.skipif(not LIBRISPEECH.is_dir(), reason="needs ../shared/data/librispeech")
def test_speaker_matching_error_rates_on_real_speech() -> None:
    """bench/voice_match_bench.py's figures (threshold chosen on five speakers, rates on the
    other five), held within a margin."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from voice_match_bench import measure

    from octavia_cli.config import load_settings

    result = measure(LIBRISPEECH)
    assert result["threshold"] == pytest.approx(load_settings({}).tts.match_threshold, abs=0.03)
    assert result["false_accepts"] <= 0.02
    assert result["false_rejects"] <= 0.05
    assert result["genuine_median"] - result["impostor_p99"] > 0.15
