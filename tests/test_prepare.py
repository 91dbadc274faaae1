"""One set of checks before any work (``pipeline.prepare``): ``--dry-run`` reports exactly
what the run refuses, and the option vocabulary gives a flag, a config key and a job option
the same rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CASES = [
    (["--loudness", "loud"], "Setting 'mix.loudness' cannot be 'loud'"),
    (["--min-speakers", "4", "--max-speakers", "2"], "--min-speakers 4 is more than"),
    (["--to", "en"], "The source is already in 'en'."),
    (["--to", "ja"], "Apertium has no English→Japanese"),
    (["--max-speed", "9"], "Setting 'fit.max_speed' must be at most 3.0"),
]


@pytest.mark.parametrize(("args", "said"), CASES)
def test_the_dry_run_reports_what_the_run_refuses(cli, talk: Path, args: list[str], said: str):
    to = [] if "--to" in args else ["--to", "es"]
    base = ["dub", str(talk), *to, "--from", "en", *args]
    code, out, err = cli(*base, "--dry-run")
    planned = json.loads(out)[0]["problems"] if code == 0 else [" ".join(err.split())]
    assert any(said in problem for problem in planned), (code, out, err)
    assert "apertium-eng-eng" not in out + err  # not a missing pair: the same language
    code, _, err = cli(*base)
    assert code == 1 and said in " ".join(err.split())
    assert not (talk.parent / "talk.octavia" / "audio").exists()  # refused before any work


@pytest.mark.slow
def test_a_plan_without_problems_is_a_run_that_works(cli, talk: Path) -> None:
    code, out, _ = cli("dub", str(talk), "--to", "es", "--from", "en", "--dry-run")
    plan = json.loads(out)[0]
    assert code == 0 and plan["problems"] == []
    code, out, err = cli("dub", str(talk), "--to", "es", "--from", "en")
    assert code == 0, err
    assert out.split() == list(plan["outputs"].values())


BAD = {"loudness": "loud", "ducking": "deep", "diarization": "magic", "tts_engine": "say",
       "max_line_chars": 3, "max_cps": 1}  # fmt: skip


def test_an_option_is_defined_once() -> None:
    """Flag, environment variable, config key and job option come from the setting."""
    from pydantic import ValidationError

    from octavia_cli.config import OPTIONS, ConfigError, parse_value
    from octavia_cli.server.jobs import DubOptions, SubtitleOptions

    info = OPTIONS["max_speed"]
    assert (info.key, info.flag, info.env_var) == ("fit.max_speed", "--max-speed",
                                                   "OCTAVIA_FIT_MAX_SPEED")  # fmt: skip
    assert OPTIONS["min_duration"].key == "subtitles.min_duration_s"
    for model in (DubOptions, SubtitleOptions):
        for name in model.model_fields:
            if name not in OPTIONS or name in ("glossary", "voice"):
                continue
            bad = BAD.get(name, 1e9)
            with pytest.raises(ConfigError) as from_setting:
                parse_value(OPTIONS[name].key, bad)
            extra = {"to": ["es"]} if model is DubOptions else {}
            with pytest.raises(ValidationError) as from_job:
                model.model_validate(extra | {name: bad})
            reason = from_setting.value.message.replace(f"Setting '{OPTIONS[name].key}'", name)
            assert reason in str(from_job.value), (name, str(from_job.value))


def test_parallel_refuses_a_bad_pair_before_the_first_chunk(talk: Path, tmp_path: Path) -> None:
    """The first phase of a --parallel dub runs every check of a dub before it extracts
    anything (so before a chunk could be queued)."""
    from octavia_cli.config import load_settings
    from octavia_cli.errors import InputError
    from octavia_cli.pipeline import DubRequest, Runner
    from octavia_cli.pipeline.parallel import transcribe_windows

    request = DubRequest(talk, ("ja",), "en", workdir=tmp_path / "job")
    with Runner() as runner, pytest.raises(InputError, match="Apertium has no English→Japanese"):
        transcribe_windows(request, load_settings({}), runner, lambda event: None, 300.0)
    assert not (tmp_path / "job").exists()
    good = DubRequest(talk, ("es",), "en", workdir=tmp_path / "job")
    with Runner() as runner:
        spans = transcribe_windows(good, load_settings({}), runner, lambda event: None, 300.0)
    assert spans and spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(10.0, abs=0.1)
