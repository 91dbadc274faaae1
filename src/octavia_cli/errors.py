"""The one place where failures get a message, a hint and an exit code.

Library code raises these; the CLI's single error boundary (``cli.main``) turns them into
one sentence on stderr and the exit code below. Nothing else in the package prints or exits.

Exit codes (DESIGN.md): 0 done; 1 bad input or usage the user can fix; 2 command-line
usage (Typer/Click's own); 3 missing model or dependency; 4 a stage failed, with the
project left resumable.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    BAD_INPUT = 1
    USAGE = 2
    MISSING = 3
    STAGE_FAILED = 4


class OctaviaError(Exception):
    """Base of every error Octavia reports to a user.

    Args:
        message: One sentence saying what is wrong.
        hint: One sentence saying what to do about it, or None.
    """

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} {self.hint}"


class InputError(OctaviaError):
    """The input (a file, a language, an option value) is wrong in a way the user can fix."""


class ConfigError(OctaviaError):
    """The configuration names an unknown key or holds a bad value."""


class OutputExistsError(OctaviaError):
    """An output path exists and was not written by this project; ``--force`` replaces it."""


class MissingDependencyError(OctaviaError):
    """A program or Python package that the chosen engine needs is not installed."""

    exit_code = ExitCode.MISSING


class MissingModelError(OctaviaError):
    """A model is not available locally and cannot be fetched now."""

    exit_code = ExitCode.MISSING


class StageError(OctaviaError):
    """A stage failed for a reason other than bad input; the project stays resumable."""

    exit_code = ExitCode.STAGE_FAILED


class NoSpeechError(InputError):
    """The input has audio but no speech was found in it."""
