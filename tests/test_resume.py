"""Killing `octavia dub` at any point and running it again finishes the job without redoing
finished work. These run the console program in a subprocess and SIGKILL it; its engines
are the cheap fakes of ``fakes.py`` (what is tested is what the pipeline writes, not what
the engines say)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import FAKE_OCTAVIA, stream_md5


def _command(talk: Path) -> list[str]:
    return [*FAKE_OCTAVIA, "--quiet", "dub", str(talk), "--to", "es"]


def _stages(manifest: Path) -> dict:
    try:
        return json.loads(manifest.read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return {}


def _kill_when(talk: Path, stage: str, timeout_s: float = 60.0) -> dict:
    """Start a dub, SIGKILL it as soon as ``stage`` is recorded as finished."""
    manifest = talk.parent / "talk.octavia" / "project.json"
    process = subprocess.Popen(
        _command(talk), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if stage in _stages(manifest):
                break
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    stages = _stages(manifest)
    assert stage in stages, f"the dub never finished {stage}"
    return stages


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", ["transcribe", "synthesize:es", "mix:es"])
def test_killed_dub_resumes_without_redoing_finished_stages(talk: Path, kill_after: str) -> None:
    finished = _kill_when(talk, kill_after)
    # Files are only ever complete under their real names; a killed write leaves at most a
    # hidden temporary, which the next run removes.
    assert not talk.with_name("talk.es.mp4").exists() or kill_after == "mux:es"
    result = subprocess.run(_command(talk), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert [p for p in talk.parent.rglob("*") if ".tmp" in p.name] == []
    stages = _stages(talk.parent / "talk.octavia" / "project.json")
    for name, record in finished.items():
        assert stages[name]["finished_at"] == record["finished_at"], name
    output = talk.with_name("talk.es.mp4")
    assert stream_md5(output, "0:v") == stream_md5(talk, "0:v")


@pytest.mark.slow
def test_kill_at_random_moments_always_resumes(talk: Path) -> None:
    """Kill several times at arbitrary points (mid-stage included), then finish. Each kill
    is checked to have landed on a running dub, and several after some stage had finished
    and before the last: mid-run, not before it started or after it ended. The kills follow
    the dub's own pace (a moment after each further stage is recorded), not the clock: with
    fixed delays, a dub that got faster finished before the later ones."""
    manifest = talk.parent / "talk.octavia" / "project.json"
    mid_run, finished = 0, 0
    for extra in (0.0, 0.05, 0.15, 0.3, 0.02, 0.1, 0.25, 0.4):  # into the next stage
        process = subprocess.Popen(
            _command(talk), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and len(_stages(manifest)) <= finished:
            assert time.monotonic() < deadline, "no stage finished in a minute"
            time.sleep(0.005)
        time.sleep(extra)
        if process.poll() is not None:  # it finished before this kill: nothing to interrupt
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        stages = _stages(manifest)
        finished = len(stages)
        if stages and "mux:es" not in stages:
            mid_run += 1
    assert mid_run >= 2, f"only {mid_run} kill(s) landed mid-run"
    result = subprocess.run(_command(talk), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert stream_md5(talk.with_name("talk.es.mp4"), "0:v") == stream_md5(talk, "0:v")


@pytest.mark.slow
def test_a_second_run_on_the_same_project_is_refused_while_one_runs(talk: Path) -> None:
    process = subprocess.Popen(_command(talk), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = talk.parent / "talk.octavia" / ".lock"
        deadline = time.monotonic() + 20
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert process.poll() is None
        second = subprocess.run(_command(talk), capture_output=True, text=True, check=False)
        assert second.returncode == 1
        assert "Another Octavia run is using" in second.stderr
    finally:
        process.wait(timeout=120)
    assert process.returncode == 0


@pytest.mark.slow
def test_killed_between_writing_the_output_and_recording_the_stage(
    cli, talk: Path, fake_engines
) -> None:
    """The output is claimed in the manifest before it is renamed into place, so a run
    killed right after the rename re-runs without --force."""
    assert cli("dub", str(talk), "--to", "es")[0] == 0
    manifest = talk.parent / "talk.octavia" / "project.json"
    data = json.loads(manifest.read_text())
    del data["stages"]["mux:es"]
    manifest.write_text(json.dumps(data))
    code, _, err = cli("dub", str(talk), "--to", "es")
    assert code == 0, err
    assert "mux:es: done" in err


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume(talk: Path) -> None:
    """Ctrl-C (SIGINT) mid-dub: exit 130 with one sentence saying how to resume, no
    traceback; the next run keeps the stages that had finished."""
    manifest = talk.parent / "talk.octavia" / "project.json"
    command = [*FAKE_OCTAVIA, "dub", str(talk), "--to", "es"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while "extract" not in _stages(manifest) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Interrupted. Run the same command again to resume." in err
    assert "Traceback" not in err
    finished = _stages(manifest)
    result = subprocess.run(_command(talk), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr  # libraries' warnings are not the user's business
    stages = _stages(manifest)
    assert all(stages[name]["finished_at"] == r["finished_at"] for name, r in finished.items())
