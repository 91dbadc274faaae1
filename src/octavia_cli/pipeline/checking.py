"""Fit a language's lines, hear each, and speak again those that fail: best of N takes.

The loop around the fit, check and synthesize stages (which do not know each other):
every line is fitted and heard; each line whose take fails is spoken again as its next
take (the engine's own other way of saying it), fitted in place and heard, until every
line passes or has had ``tts.max_attempts`` takes; then each line keeps its best take.
The speech engine and the recogniser are both alive while it runs (on a GPU, XTTS and
Whisper together: about 5 GB with large-v3).
"""

from __future__ import annotations

from pathlib import Path

from octavia_cli.config import Settings
from octavia_cli.engines.tts.base import SpeechEngine
from octavia_cli.errors import InputError
from octavia_cli.pipeline.runner import Runner, runner_for
from octavia_cli.pipeline.steps import fit_options
from octavia_cli.progress import ProgressHook
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import CheckInfo
from octavia_cli.project.report import write_report
from octavia_cli.stages.check import CheckOptions, check, keep_best_takes, lines_to_retake
from octavia_cli.stages.fit import fit
from octavia_cli.stages.synthesize import retake


def fit_and_check(
    project: Project, target: str, settings: Settings, hook: ProgressHook, runner: Runner,
    engine: SpeechEngine,
) -> CheckInfo | None:  # fmt: skip
    """Fit ``target``'s lines; with ``qa.mode = all``, check them and retake the failing
    ones with ``engine``. Returns what the last check found (None with checks off)."""
    options = fit_options(settings)
    if settings.qa.mode == "off":
        fit(project, target, options, hook)
        return None
    recogniser = runner.checker(settings)
    checking = CheckOptions.from_settings(settings)
    try:
        while True:
            fit(project, target, options, hook)
            info = check(project, target, recogniser, checking, hook)
            wanted = lines_to_retake(project, target, settings.tts.max_attempts)
            if not wanted:
                break
            retake(project, target, engine, settings, hook, wanted)
        if keep_best_takes(project, target):
            fit(project, target, options, hook)
            info = check(project, target, recogniser, checking, hook)
    finally:
        if recogniser is not runner.alive().get("asr"):  # a held one: its holder releases it
            runner.release(recogniser)
    return info


def check_again(
    project: Project, target: str, settings: Settings, hook: ProgressHook, runner: Runner
) -> CheckInfo:
    """Hear every fitted line of ``target`` again and record what was heard, speaking
    nothing again (``octavia check``)."""
    recogniser = runner.checker(settings)
    try:
        return check(project, target, recogniser, CheckOptions.from_settings(settings, True),
                     hook)  # fmt: skip
    finally:
        runner.release(recogniser)


def check_project(
    folder: Path, settings: Settings, hook: ProgressHook, runner: Runner | None = None
) -> dict[str, CheckInfo]:
    """Hear every dubbed line of a finished project again, in each language it was dubbed
    into, and update its timing reports and ``report.html`` (``octavia check``).

    Raises:
        InputError: ``folder`` is not a project, or nothing in it was dubbed yet.
    """
    project = Project.load(folder)
    targets = sorted(name.removeprefix("fit:") for name in project.stages
                     if name.startswith("fit:"))  # fmt: skip
    if not targets:
        raise InputError(
            f"{folder} has no dubbed lines to check yet.",
            "Dub its source first: octavia dub SOURCE --to LANG",
        )
    found = {}
    with runner_for(runner) as run, project.locked():
        for target in targets:
            found[target] = check_again(project, target, settings, hook, run)
        write_report(project)
    return found
