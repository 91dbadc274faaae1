"""``octavia config`` and the settings precedence."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from octavia_cli.config import load_settings, resolve, set_config_value
from octavia_cli.errors import ConfigError


def test_path_is_the_configured_file(cli) -> None:
    code, out, _ = cli("config", "path")
    assert code == 0
    assert out.strip() == os.environ["OCTAVIA_CONFIG"]


def test_set_writes_toml_and_show_reports_the_source(cli) -> None:
    code, _, _ = cli("config", "set", "fit.max_speed", "1.2")
    assert code == 0
    data = tomllib.loads(Path(os.environ["OCTAVIA_CONFIG"]).read_text())
    assert data == {"fit": {"max_speed": 1.2}}
    code, out, _ = cli("config", "show", "--json")
    shown = json.loads(out)
    assert shown["fit.max_speed"] == {
        "value": 1.2,
        "source": "file",
        "env": "OCTAVIA_FIT_MAX_SPEED",
    }
    assert shown["general.preset"]["source"] == "env"  # the tests' OCTAVIA_PRESET=offline
    assert shown["asr.model"]["source"] == "preset"
    code, _, _ = cli("config", "unset", "fit.max_speed")
    assert code == 0 and "fit.max_speed" not in Path(os.environ["OCTAVIA_CONFIG"]).read_text()


def test_precedence_flags_over_env_over_file(monkeypatch: pytest.MonkeyPatch) -> None:
    set_config_value("fit.max_speed", "1.1")
    set_config_value("tts.engine", "piper")
    assert load_settings().fit.max_speed == 1.1
    monkeypatch.setenv("OCTAVIA_FIT_MAX_SPEED", "1.4")
    settings, resolved = resolve()
    assert settings.fit.max_speed == 1.4 and resolved["fit.max_speed"].source == "env"
    assert settings.tts.engine == "piper" and resolved["tts.engine"].source == "file"
    settings, resolved = resolve({"fit.max_speed": 1.25})
    assert settings.fit.max_speed == 1.25 and resolved["fit.max_speed"].source == "flag"


def test_explicit_setting_beats_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTAVIA_ASR_MODEL", "/models/mine")
    settings, resolved = resolve({"general.preset": "offline"})
    assert settings.asr.model == "/models/mine" and resolved["asr.model"].source == "env"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("asr.nope", "1", "Unknown setting 'asr.nope'"),
        ("fit.max_speed", "fast", "Setting 'fit.max_speed' must be a float"),
        ("fit.max_speed", "9", "Setting 'fit.max_speed' must be at most 3.0"),
        ("general.device", "tpu", "Setting 'general.device' must be one of auto, cpu, cuda"),
        ("asr.vad_filter", "maybe", "Setting 'asr.vad_filter' must be a bool"),
    ],
)
def test_bad_keys_and_values_name_the_key(cli, key: str, value: str, message: str) -> None:
    code, _, err = cli("config", "set", key, value)
    assert code == 1
    assert message in " ".join(err.split())
    assert not Path(os.environ["OCTAVIA_CONFIG"]).exists()


def test_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTAVIA_BEAM_SIZE", "3")  # not a setting: ignored
    monkeypatch.setenv("OCTAVIA_ASR_BEAM_SIZE", "zero")
    with pytest.raises(ConfigError, match=r"asr\.beam_size"):
        load_settings()


def test_unknown_key_in_file_is_an_error(cli) -> None:
    Path(os.environ["OCTAVIA_CONFIG"]).write_text('[asr]\nmodle = "small"\n')
    code, _, err = cli("config", "show")
    assert code == 1 and "Unknown setting 'asr.modle'" in err


def test_broken_toml_is_an_error(cli) -> None:
    Path(os.environ["OCTAVIA_CONFIG"]).write_text("[asr\n")
    code, _, err = cli("config", "show")
    assert code == 1 and "is not valid TOML" in err


def test_auto_preset_picks_quality_only_with_a_gpu_and_the_engines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    import octavia_cli.devices as devices

    monkeypatch.delenv("OCTAVIA_PRESET")
    installed = importlib.util.find_spec("whisperx") is not None
    monkeypatch.setattr(devices, "cuda_available", lambda: False)  # no GPU here
    settings, resolved = resolve()
    assert settings.general.preset == "offline" and resolved["general.preset"].source == "default"
    monkeypatch.setattr(devices, "cuda_available", lambda: True)  # as on a GPU machine
    settings, _ = resolve()
    assert settings.general.preset == ("quality" if installed else "offline")
    if installed:
        assert settings.asr.engine == "whisperx" and settings.mt.engine == "transformers"
