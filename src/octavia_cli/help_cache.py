"""``octavia ... --help`` from a cache of its own earlier output.

Typer builds a command's help from its signature (through pydantic) and Rich draws it:
0.45 s of a 2-core machine for ``octavia dub --help``, where a person typing it expects an
answer at once. The help of a given Octavia, for a given terminal width and colour setting,
is always the same text, so the first run renders it and keeps it; later runs print it
without importing Typer. The key holds everything the text depends on: Octavia's version
and the size and modification time of every module the command line is built from, Typer's
and Rich's versions, the width, and whether colour is on. Any error here means no cache:
the help is rendered as before.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

HELP_FLAGS = ("--help", "-h")
PACKAGE = Path(__file__).resolve().parent


def help_request(args: Sequence[str]) -> bool:
    """``args`` asks only for help: ``--help``, ``dub --help``, ``models pull -h``."""
    if not args or args[-1] not in HELP_FLAGS or len(args) > 3:
        return False
    return all(arg.replace("-", "").isalnum() and not arg.startswith("-") for arg in args[:-1])


def cache_path(args: Sequence[str]) -> Path | None:
    try:
        from importlib.metadata import version

        key = hashlib.sha256()
        key.update(repr((list(args), version("typer"), version("rich"))).encode())
        for path in sorted([*PACKAGE.glob("*.py"), *PACKAGE.joinpath("cli").glob("*.py")]):
            stat = path.stat()
            key.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        key.update(repr(_terminal()).encode())
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "octavia" / "help" / f"{key.hexdigest()[:32]}.txt"
    except (OSError, ValueError, ImportError):
        return None


def _terminal() -> tuple:
    """What Rich's rendering depends on: width, whether stdout is a terminal, colour."""
    import shutil

    width = shutil.get_terminal_size(fallback=(80, 24)).columns
    names = ("COLUMNS", "NO_COLOR", "FORCE_COLOR", "TERM", "TTY_COMPATIBLE", "TYPER_USE_RICH")
    return width, sys.stdout.isatty(), tuple(os.environ.get(name) for name in names)


def print_cached(args: Sequence[str]) -> bool:
    """Print the kept help for ``args``; False if there is none (render it then)."""
    if not help_request(args):
        return False
    path = cache_path(args)
    try:
        text = path.read_bytes() if path is not None else None
    except OSError:
        return False
    if not text:
        return False
    try:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `octavia dub --help | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush does not fail too
    return True


def keep(args: Sequence[str], text: bytes) -> None:
    """Keep ``text``, the help just printed for ``args`` (atomically; quietly not at all
    when the cache folder cannot be written)."""
    path = cache_path(args)
    if path is None or not text:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(text)
        os.replace(partial, path)
    except OSError:
        pass
