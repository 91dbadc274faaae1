"""`octavia models`, the missing-model preflight, `--offline`, and `octavia doctor`."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from octavia_cli.config import load_settings
from octavia_cli.models.catalog import all_models, find_model, required_models


def test_every_default_model_is_in_the_catalog_with_a_revision() -> None:
    entries = all_models()
    assert len({e.name for e in entries}) == len(entries)  # names are unique
    assert all(e.revision and e.size_mb >= 0 and e.license for e in entries)
    offline = required_models(load_settings({"general.preset": "offline"}), "en", ("es",))
    assert [e.name for e in offline] == ["bundled:whisper-base"]
    quality = load_settings({"general.preset": "quality", "general.device": "cpu"})
    names = [e.name for e in required_models(quality, "en", ("es", "sw"))]
    assert names == [
        "whisper-small", "align-en", "opus-mt-en-es", "m2m100-418m", "htdemucs",
        "pyannote-community-1", "xtts-v2",
    ]  # fmt: skip
    assert find_model("pyannote-community-1").gated
    one_speaker = load_settings({"general.preset": "quality", "diarization.speakers": 1})
    assert "pyannote-community-1" not in [e.name for e in required_models(one_speaker, "en")]
    gpu_default = load_settings({"general.preset": "quality", "asr.model": "large-v3"})
    assert required_models(gpu_default, None)[0].location == "Systran/faster-whisper-large-v3"
    assert find_model("opus-mt-en-es").pinned  # a verified commit
    assert find_model("align-en").filename.endswith(".pth")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) every attempt to open a connection."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return attempts


def test_preflight_names_every_missing_model_before_any_stage(cli, talk: Path, no_network) -> None:
    code, _, err = cli(
        "dub", str(talk), "--to", "es", "--from", "en", "--preset", "quality", "--device", "cpu"
    )
    assert code == 3, err
    for name in ("whisper-small", "align-en", "opus-mt-en-es"):
        assert name in err
    assert "octavia models pull whisper-small align-en opus-mt-en-es" in err
    assert "downloads are off" in err
    assert not talk.with_name("talk.octavia").exists()  # failed before any stage
    assert no_network == []


def test_unreachable_hub_is_told_apart_from_offline(
    cli, talk: Path, no_network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    code, _, err = cli("transcribe", str(talk), "--model", "large-v3")
    assert code == 3 and "the model hub cannot be reached" in err
    assert "octavia models pull whisper-large-v3" in err
    assert len(no_network) == 1  # one quick reachability check, no download


def test_offline_flag_refuses_a_download_without_opening_a_socket(
    cli, no_network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    code, _, err = cli("--offline", "models", "pull", "whisper-small")
    assert code == 3 and "downloads are off" in err
    assert no_network == []
    code, _, err = cli("models", "pull", "no-such-model")
    assert code == 1 and "no model called 'no-such-model'" in err


def _fake_hub_model(hub: Path, hub_id: str, commit: str, files: dict[str, bytes]) -> Path:
    """A model laid out as huggingface_hub lays it out: blobs, refs/main, snapshots."""
    repo = hub / f"models--{hub_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for index, (name, data) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{index}"
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("../../blobs") / blob.name)
    return snapshot


def test_models_list_installed_path_and_rm_on_a_hub_cache(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hub = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    pinned = find_model("whisper-small").revision
    snapshot = _fake_hub_model(
        hub, "Systran/faster-whisper-small", pinned,
        {"model.bin": b"x" * 2_000_000, "config.json": b"{}"},
    )  # fmt: skip
    # A pinned model at another commit is not the model the catalog means.
    _fake_hub_model(hub, "Systran/faster-whisper-large-v3", "b" * 40, {"model.bin": b"x"})
    code, out, err = cli("models", "list", "--installed", "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["whisper-small"]["path"] == str(snapshot)
    assert rows["whisper-small"]["size_on_disk_mb"] == pytest.approx(2.0, abs=0.01)
    assert "whisper-large-v3" not in rows and "bundled:whisper-base" in rows
    code, out, _ = cli("models", "path", "whisper-small")
    assert code == 0 and out.strip() == str(snapshot)
    code, _, err = cli("models", "path", "whisper-medium")
    assert code == 3 and "octavia models pull whisper-medium" in err
    code, out, _ = cli("models", "rm", "whisper-small")
    assert code == 0 and not (hub / "models--Systran--faster-whisper-small").exists()


def test_doctor_on_this_machine(cli) -> None:
    code, out, err = cli("doctor", "--json")
    report = json.loads(out)
    checks = {check["name"]: check for check in report["checks"]}
    assert code == 0 and report["ok"], err  # the offline preset can run here
    for name in ("python", "ffmpeg", "ffmpeg filters", "apertium", "espeak-ng"):
        assert checks[name]["status"] == "ok", checks[name]
    gpu = [c for name, c in checks.items() if name.startswith("gpu")]
    if not any(c["status"] == "ok" for c in gpu):  # no GPU: a warning, never an error
        assert gpu and all(c["status"] == "warning" for c in gpu) and gpu[0]["fix"]
    assert checks["model bundled:whisper-base"]["status"] == "ok"
    # The quality preset offline with nothing cached: errors naming the pull command.
    code, out, _ = cli("doctor", "--json", "--preset", "quality")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    missing = [c for c in report["checks"] if c["name"].startswith("model ")]
    assert missing and all("octavia models pull" in c["fix"] for c in missing)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["separation"]["status"] == "ok" and "demucs" in checks["separation"]["detail"]
    # pyannote's gated pipeline: its conditions, then a hub token to fetch it.
    assert checks["diarization"]["status"] == "error"
    assert "diarization.accept_terms true" in checks["diarization"]["fix"]
    assert cli("config", "set", "diarization.accept_terms", "true")[0] == 0
    checks = {
        c["name"]: c
        for c in json.loads(cli("doctor", "--json", "--preset", "quality")[1])["checks"]
    }
    assert checks["diarization"]["status"] == "ok", checks["diarization"]
    assert checks["hub token"]["status"] == "warning" and "hf_token" in checks["hub token"]["fix"]
    # The offline preset's diarizer is there; no token is needed.
    checks = {c["name"]: c for c in json.loads(cli("doctor", "--json")[1])["checks"]}
    assert checks["diarization"]["status"] == "ok" and "CAM++" in checks["diarization"]["detail"]
    assert checks["hub token"]["status"] == "ok"


def test_account_commands_without_a_backend(cli, talk: Path) -> None:
    code, _, err = cli("account")
    assert code == 1 and "No Octavia backend is configured" in err and "octavia login" in err
    port = _closed_port()
    code, _, err = cli("login", "--url", f"http://127.0.0.1:{port}", "--api-key", "oct_x")
    assert code == 1 and "Cannot reach the Octavia backend" in err and "Traceback" not in err
    code, _, err = cli("login", "--url", f"127.0.0.1:{port}", "--api-key", "oct_x")
    assert code == 1 and "must start with http:// or https://" in err
    assert f"octavia login --url http://127.0.0.1:{port}" in err
    other = talk.with_name("other.mp4")
    other.write_bytes(talk.read_bytes())
    code, _, err = cli("dub", str(talk), str(other), "--to", "es", "--remote")
    assert code == 1 and "No Octavia backend is configured" in err
    code, _, err = cli("models", "rm", "bundled:whisper-base")
    assert code == 1 and "ships in a Python package" in err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
