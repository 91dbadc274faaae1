"""Every dubbed line checked: the real offline engines (Whisper base hearing espeak-ng's
Spanish), with faults injected into the first take of some lines by a wrapper around the
real speech engine; the retake loop, the flagged line that no take saves, the reports, and
``octavia check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from conftest import make_media
from octavia_cli.engines.tts.base import SynthesisResult
from octavia_cli.text.scoring import character_error_rate, normalize

LINES = (
    (0.5, "Welcome to the city library."),
    (3.0, "Today we talk about old books."),
    (5.5, "The new room opens next week."),
    (8.0, "Thank you for watching."),
    (10.5, "The garden closes at night."),
)
# A word of each line's Spanish translation (Apertium) -> what goes wrong with its first
# take; "always": every take of that line says another text.
FAULTS = {"biblioteca": "cut", "libros": "extra", "sala": "silent", "Gracias": "wrong",
          "jardín": "always"}  # fmt: skip
OTHER_TEXT = "Mañana por la mañana llueve mucho en las montañas del norte."


class FaultyVoice:
    """The real engine, whose output is spoilt for the lines of :data:`FAULTS`: cut in half,
    with another sentence appended, silent, or another text altogether (first take only;
    "always": another text, every take)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.faults: list[tuple[str, int]] = []  # (fault, take) as injected

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def synthesize(self, text: str, language: str, voice: str, destination: Path,
                   speed: float = 1.0, take: int = 0) -> SynthesisResult:  # fmt: skip
        fault = next((f for word, f in FAULTS.items() if word in text), None)
        if (fault == "wrong" and take == 0) or fault == "always":
            self.faults.append((fault, take))
            text = OTHER_TEXT
        result = self.engine.synthesize(text, language, voice, destination, speed=speed,
                                        take=take)  # fmt: skip
        if fault in (None, "wrong", "always") or take:
            return result
        audio, rate = soundfile.read(str(destination), dtype="float32")
        if fault == "cut":
            audio = audio[: len(audio) // 2]
        elif fault == "extra":
            extra = destination.with_name(destination.stem + ".extra.wav")
            self.engine.synthesize(OTHER_TEXT, language, voice, extra, speed=speed)
            audio = np.concatenate([audio, soundfile.read(str(extra), dtype="float32")[0]])
            extra.unlink()
        else:  # silent
            audio = np.zeros_like(audio)
        soundfile.write(str(destination), audio, rate, subtype="PCM_16", format="WAV")
        self.faults.append((fault, take))
        return SynthesisResult(len(audio) / rate, rate)


@pytest.fixture
def faulty_voice(monkeypatch: pytest.MonkeyPatch) -> dict[str, FaultyVoice]:
    """Every runner's speech engine is the real one, wrapped in :class:`FaultyVoice`."""
    import dataclasses

    from octavia_cli.engines.tts import get_speech_engine
    from octavia_cli.pipeline import runner

    made: dict[str, FaultyVoice] = {}

    def speech(settings: Any, language: str) -> FaultyVoice:
        made[language] = FaultyVoice(get_speech_engine(settings, language))
        return made[language]

    monkeypatch.setattr(runner, "FACTORIES",
                        dataclasses.replace(runner.FACTORIES, speech=speech))  # fmt: skip
    return made


def test_normalisation_and_character_error_rate() -> None:
    assert normalize("¿Qué tal? Tengo 21 años.", "es") == "qué tal tengo veintiuno años"
    assert normalize("L'homme a 2 chats!", "fr") == "l homme a deux chats"
    assert normalize("1.000 veces", "es") == "mil veces"
    assert character_error_rate("Hola, ¿qué tal?", "hola que tal", "es") == pytest.approx(1 / 12)
    assert character_error_rate("Hola.", "", "es") == 1.0
    assert character_error_rate("", "", "es") == 0.0
    # Speech appended counts: the rate goes past 1.
    assert character_error_rate("Hola", "hola y buenas noches a todos", "es") > 1.0
    assert normalize("你好，世界。", "zh") == "你好世界"


def test_limits_are_per_engine_and_stricter_with_less_tolerance() -> None:
    from octavia_cli.stages.check import MAX_LIMIT, baseline, cer_limit

    assert cer_limit("espeak-ng", "es", 1.0) > cer_limit("xtts", "es", 1.0)
    assert cer_limit("espeak-ng", "es", 0.5) < cer_limit("espeak-ng", "es", 1.0)
    assert cer_limit("espeak-ng", "xx", 5.0) <= MAX_LIMIT
    assert baseline("espeak-ng", "es").lines > 0  # measured, not a prior


@pytest.mark.slow
def test_faulty_takes_are_caught_and_spoken_again(
    cli, tmp_path: Path, faulty_voice: dict[str, FaultyVoice]
) -> None:
    media = make_media(tmp_path / "talk.mp4", LINES, duration_s=13.0)
    code, out, err = cli("dub", str(media), "--to", "es", "--from", "en", "--json",
                         "--max-attempts", "3")  # fmt: skip
    assert code == 0, err
    folder = tmp_path / "talk.octavia"
    project = json.loads((folder / "project.json").read_text())
    segments = project["transcript"]["segments"]
    assert len(segments) == len(LINES)
    by_fault = {}
    for segment in segments:
        check = segment["checks"]["es"]  # every line has a recorded check
        assert check["takes"], segment["id"]
        fault = next((f for w, f in FAULTS.items() if w in segment["translations"]["es"]["text"]),
                     None)  # fmt: skip
        by_fault[fault] = (segment, check)
    assert set(FAULTS.values()) <= set(by_fault)
    for fault in ("cut", "extra", "silent", "wrong"):
        segment, check = by_fault[fault]
        first, second = check["takes"][0], check["takes"][1]
        assert not first["passed"] and first["problems"], (fault, first)
        assert second["passed"], (fault, second)
        assert len(check["takes"]) == 2 and check["chosen"] == 1 and not check["flagged"]
        assert segment["clips"]["es"]["take"] == 1
        assert segment["clips"]["es"]["path"].endswith(".t1.wav")
    assert by_fault["silent"][1]["takes"][0]["cer"] == 1.0
    assert by_fault["cut"][1]["takes"][0]["duration_ratio"] < 0.75
    assert by_fault["extra"][1]["takes"][0]["cer"] > 0.6
    assert by_fault["wrong"][1]["takes"][0]["cer"] > 0.6
    # The line that fails every take: kept (fitted, mixed), flagged, every take recorded.
    segment, check = by_fault["always"]
    assert check["flagged"] and len(check["takes"]) == 3
    assert all(not take["passed"] for take in check["takes"])
    assert (folder / segment["fits"]["es"]["path"]).exists()
    report = json.loads((folder / "report" / "timing.es.json").read_text())
    assert report["totals"]["flagged_lines"] == [segment["id"]]
    assert report["totals"]["checked"] == len(LINES) and report["totals"]["retaken"] == 5
    (line,) = [x for x in report["lines"] if x["id"] == segment["id"]]
    assert line["dub_s"] > 0 and line["check"]["flagged"]
    page = (folder / "report.html").read_text()
    assert page.count('class="flagged"') == 1 and "still unclear" in page
    assert f"{len(LINES)} lines checked, 5 spoken again, 1 still unclear: {segment['id']}" in err
    (dubbed,) = json.loads(out)["dubbed"]
    assert dubbed["checks"]["es"] == {"checked": len(LINES), "retaken": 5, "flagged": 1,
                                      "flagged_lines": [segment["id"]]}  # fmt: skip

    # `octavia check` hears every line again, speaks nothing, and says what is unclear.
    spoken = len(faulty_voice["es"].faults)
    code, out, err = cli("check", str(folder), "--json")
    assert code == 1 and "1 still unclear" in err
    found = json.loads(out)["languages"]["es"]
    assert found["heard"] == len(LINES) and found["flagged_lines"] == [segment["id"]]
    assert len(faulty_voice["es"].faults) == spoken
    # Resumed: nothing heard or spoken again.
    code, _, err = cli("dub", str(media), "--to", "es", "--from", "en", "--force",
                       "--max-attempts", "3")  # fmt: skip
    assert code == 0 and "check:es" in err and "already done" in err


@pytest.mark.slow
def test_checks_off(cli, tmp_path: Path) -> None:
    media = make_media(tmp_path / "talk.wav", LINES[:2], duration_s=5.0, video=False)
    code, _, err = cli("dub", str(media), "--to", "es", "--from", "en", "--qa", "off")
    assert code == 0, err
    project = json.loads((tmp_path / "talk.octavia" / "project.json").read_text())
    assert "check:es" not in project["stages"]
    assert all(not s["checks"] for s in project["transcript"]["segments"])
    assert "lines checked" not in err


def test_ultra_dry_run_lists_its_models_and_licences(cli, tmp_path: Path) -> None:
    media = make_media(tmp_path / "talk.wav", LINES[:1], duration_s=3.0, video=False)
    code, out, _ = cli("dub", str(media), "--to", "es", "--from", "en", "--preset", "ultra",
                       "--dry-run")  # fmt: skip
    assert code == 0
    (plan,) = json.loads(out)
    names = {m["name"]: m for m in plan["models"]}
    assert {"whisper-large-v3", "nllb-1.3b", "htdemucs_ft", "pyannote-community-1",
            "xtts-v2"} <= set(names)  # fmt: skip
    assert names["nllb-1.3b"]["license"] == "CC-BY-NC-4.0"
    licences = {x["model"]: x for x in plan["licences"]}
    assert set(licences) == {"nllb-1.3b", "xtts-v2"}
    assert not any(x["accepted"] for x in licences.values())
    assert any("non-commercial licences not accepted" in p for p in plan["problems"])
    assert "best of 8 takes" in plan["engines"]["checks"]
    code, out, _ = cli("models", "list", "--preset", "ultra", "--json")
    assert code == 0
    listed = {m["name"]: m for m in json.loads(out)}
    assert "nllb-1.3b" in listed and listed["xtts-v2"]["license"].startswith("CPML")
    # A run is refused until both are accepted (here, before that, for its missing models),
    # naming the setting that accepts what is still pending.
    assert cli("config", "set", "tts.accept_license", "true")[0] == 0
    code, out, _ = cli("dub", str(media), "--to", "es", "--from", "en", "--preset", "ultra",
                       "--dry-run")  # fmt: skip
    (plan,) = json.loads(out)
    (pending,) = [p for p in plan["problems"] if "licences not accepted" in p]
    assert "mt.accept_license" in pending and "tts.accept_license" not in pending
    code, _, err = cli("dub", str(media), "--to", "es", "--from", "en", "--preset", "ultra")
    assert code == 3 and "nllb-1.3b" in err  # not on this machine: fetched first


def test_licences_not_accepted_are_one_sentence_naming_the_settings() -> None:
    from octavia_cli.config import load_settings
    from octavia_cli.errors import ConfigError, ExitCode
    from octavia_cli.models.catalog import check_licences

    with pytest.raises(ConfigError) as caught:
        check_licences(load_settings({"general.preset": "ultra"}), "en", ("es",))
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "nllb-1.3b (CC-BY-NC-4.0" in caught.value.message
    assert "xtts-v2 (CPML" in caught.value.message
    assert caught.value.hint == (
        "Read them; to accept: octavia config set mt.accept_license true && "
        "octavia config set tts.accept_license true"
    )
    accepted = {"general.preset": "ultra", "mt.accept_license": True, "tts.accept_license": True}
    check_licences(load_settings(accepted), "en", ("es",))  # nothing left to accept


def test_a_recogniser_that_cannot_hear_the_lines_is_a_problem_before_any_stage(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = make_media(tmp_path / "talk.wav", LINES[:1], duration_s=3.0, video=False)
    monkeypatch.setenv("OCTAVIA_QA_MODEL", "tiny.en")  # not on this machine, and English only
    code, out, _ = cli("dub", str(media), "--to", "es", "--from", "en", "--dry-run")
    assert code == 0
    (plan,) = json.loads(out)
    (problem,) = [p for p in plan["problems"] if "cannot be checked" in p]
    assert problem.startswith("The dubbed lines cannot be checked: ")
    assert "--qa off" in problem and "qa.model" in problem
    code, _, err = cli("dub", str(media), "--to", "es", "--from", "en")
    assert code == 3 and "whisper-tiny.en" in err and "Traceback" not in err
    code, _, err = cli("dub", str(media), "--to", "es", "--from", "en", "--qa", "off", "--dry-run")
    assert code == 0 and "cannot be checked" not in err


def test_check_needs_a_dubbed_project(cli, tmp_path: Path, fake_engines) -> None:
    code, _, err = cli("check", str(tmp_path / "nothing.octavia"))
    assert code == 1 and "is not an Octavia project" in err and "Traceback" not in err
    media = make_media(tmp_path / "talk.wav", LINES[:1], duration_s=3.0, video=False)
    code, _, err = cli("transcribe", str(media), "--language", "en")
    assert code == 0, err
    code, _, err = cli("check", str(media))  # the source: its project beside it
    assert code == 1 and "has no dubbed lines to check yet" in err
    assert "octavia dub SOURCE --to LANG" in err
