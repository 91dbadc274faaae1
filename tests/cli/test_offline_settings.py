"""What every command tells the model libraries through the environment before any of them
loads (so do ``serve`` and ``worker``, which run their jobs in their own process): no
download while ``models.offline`` or ``--offline``, no background safetensors conversion,
no pyannote usage metrics unless ``models.telemetry``; and that an offline dub, pull or
doctor opens no connection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub_layout import no_network  # noqa: F401 (a fixture)

NAMES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DISABLE_SAFETENSORS_CONVERSION",
         "PYANNOTE_METRICS_ENABLED")  # fmt: skip


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the variables set (each put back as it was after the test)."""
    for name in NAMES:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def _seen() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in NAMES}


@pytest.mark.usefixtures("unset")
@pytest.mark.parametrize("command", [("config", "path"), ("serve", "--help"),
                                     ("worker", "--help"), ("models", "list")])  # fmt: skip
def test_every_command_sets_the_libraries_environment(cli, command: tuple[str, ...]) -> None:
    code, _, err = cli(*command)
    assert code == 0, err
    assert _seen() == {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None,
                       "DISABLE_SAFETENSORS_CONVERSION": "true",
                       "PYANNOTE_METRICS_ENABLED": "false"}  # fmt: skip


@pytest.mark.usefixtures("unset")
def test_the_config_reaches_the_libraries_as_the_flags_do(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("--offline", "config", "path")[0] == 0
    assert _seen()["HF_HUB_OFFLINE"] == _seen()["TRANSFORMERS_OFFLINE"] == "1"
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name)
    assert cli("config", "set", "models.offline", "true")[0] == 0
    assert cli("config", "path")[0] == 0
    assert _seen()["HF_HUB_OFFLINE"] == _seen()["TRANSFORMERS_OFFLINE"] == "1"
    assert cli("config", "set", "models.telemetry", "true")[0] == 0  # the user opts in
    assert cli("config", "path")[0] == 0
    assert _seen()["PYANNOTE_METRICS_ENABLED"] == "true"
    monkeypatch.setenv("OCTAVIA_MODELS_TELEMETRY", "false")
    assert cli("config", "path")[0] == 0
    assert _seen()["PYANNOTE_METRICS_ENABLED"] == "false"


@pytest.mark.usefixtures("unset")
def test_a_broken_config_file_still_gets_the_defaults_and_is_reported(cli) -> None:
    Path(os.environ["OCTAVIA_CONFIG"]).write_text("[models\noffline = true")
    code, _, err = cli("config", "show")
    assert code == 1 and "not valid TOML" in err
    assert _seen()["PYANNOTE_METRICS_ENABLED"] == "false"
    assert cli("config", "path")[0] == 0  # what fixes it still runs


@pytest.mark.usefixtures("unset", "no_network")
def test_models_offline_in_the_config_opens_no_connection(cli, talk: Path) -> None:
    assert cli("config", "set", "models.offline", "true")[0] == 0
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--preset", "quality",
                       "--device", "cpu")  # fmt: skip
    assert code == 3 and "downloads are off" in err
    assert not talk.with_name("talk.octavia").exists()
    code, _, err = cli("models", "pull", "opus-mt-en-es")
    assert code == 3 and "downloads are off" in err
    code, _, err = cli("doctor", "--json")
    assert code in (0, 1), err


@pytest.mark.slow
@pytest.mark.usefixtures("unset", "no_network")
@pytest.mark.parametrize("how", ["--offline", "models.offline = true"])
def test_offline_dub_pull_and_doctor_open_no_connection(
    cli, talk: Path, fake_engines, how: str
) -> None:
    """Downloads off by the flag or by the config: a whole dub (the cheap engines), a dub of
    the quality preset with nothing cached (refused before any stage), pulls (refused, and
    the licence is not asked for a model that cannot be fetched), and the doctor's checks;
    none opens a connection (the fixture fails the test on any attempt)."""
    flags: tuple[str, ...] = ("--offline",) if how == "--offline" else ()
    if not flags:
        assert cli("config", "set", "models.offline", "true")[0] == 0
    code, out, err = cli(*flags, "dub", str(talk), "--to", "es", "--from", "en")
    assert code == 0, err
    assert Path(out.strip()).exists() and _seen()["HF_HUB_OFFLINE"] == "1"
    code, _, err = cli(*flags, "dub", str(talk), "--to", "fr", "--from", "en",
                       "--preset", "quality", "--device", "cpu")  # fmt: skip
    assert code == 3 and "downloads are off" in err
    for name in ("opus-mt-en-es", "whisper-large-v3", "xtts-v2", "pyannote-community-1"):
        code, _, err = cli(*flags, "models", "pull", name)
        assert code == 3 and "downloads are off" in err, (name, err)
    assert cli(*flags, "models", "pull", "bundled:whisper-base")[0] == 0
    for preset in ("offline", "quality"):
        code, out, err = cli(*flags, "doctor", "--json", "--preset", preset)
        assert code in (0, 1) and out.startswith(("{", "[")), err
