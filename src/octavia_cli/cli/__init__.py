"""The ``octavia`` command line: Typer + Rich, one module per command, one error boundary.

Command modules import the pipeline inside their functions, so ``octavia --help`` and
``octavia --version`` load neither numpy nor any engine.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.exceptions
import typer.main
from typer import _click as click
from typer.core import TyperGroup

from octavia_cli import __version__, help_cache
from octavia_cli.cli.common import State
from octavia_cli.devices import map_large_blocks
from octavia_cli.errors import ExitCode, OctaviaError
from octavia_cli.progress import ProgressMode

# Each command's module and object (a function, or a Typer of subcommands), in the order
# of ``octavia --help``. A module is imported when its command runs, or when the root's
# help lists them all: ``octavia dub`` does not pay for building the other commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "transcribe": ("transcribe_cmd", "transcribe_command"),
    "translate": ("translate_cmd", "translate_command"),
    "synthesize": ("synthesize_cmd", "synthesize_command"),
    "dub": ("dub_cmd", "dub_command"),
    "check": ("check_cmd", "check_command"),
    "review": ("review_cmd", "review_command"),
    "clone-voice": ("voices_cmd", "clone_voice_command"),
    "voices": ("voices_cmd", "app"),
    "subtitles": ("subtitles_cmd", "subtitles_command"),
    "config": ("config_cmd", "app"),
    "models": ("models_cmd", "app"),
    "doctor": ("doctor_cmd", "doctor_command"),
    "serve": ("serve_cmd", "app"),
    "worker": ("serve_cmd", "worker_command"),
    "login": ("account_cmd", "login_command"),
    "logout": ("account_cmd", "logout_command"),
    "account": ("account_cmd", "account_command"),
}


class LazyCommands(TyperGroup):
    """The root group: builds a command (imports its module, lets Typer read its
    signature) the first time it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = _build(cmd_name, *COMMANDS[cmd_name])
        return self.commands.get(cmd_name)


def _build(name: str, module: str, attribute: str) -> click.Command:
    import importlib

    found = getattr(importlib.import_module(f"octavia_cli.cli.{module}"), attribute)
    if not isinstance(found, typer.Typer):
        found, function = typer.Typer(), found
        found.command(name)(function)
    command = typer.main.get_command(found)
    command.name = name
    return command


app = typer.Typer(
    cls=LazyCommands,
    name="octavia",
    help="Dub video and audio into other languages, on your own machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"octavia {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress, warnings only."),
    progress: ProgressMode = typer.Option(
        ProgressMode.AUTO,
        "--progress",
        help="Progress on stderr: auto (a live display when stdout and stderr are terminals, "
        "else none), rich, "
        "plain (a line per finished stage) or none.",
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Never download a model (as models.offline = true)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    ctx.obj = State(debug=debug, quiet=quiet, progress=progress.value)
    _apply_library_environment(offline)
    _configure_logging(debug, quiet)


def _apply_library_environment(offline: bool) -> None:
    """What the model libraries must know (downloads off, no telemetry, no background
    conversions), set before any of them is imported: ``serve`` and ``worker`` run every
    job in this process."""
    import dataclasses

    from octavia_cli.config import ModelSettings, apply_library_environment, model_settings

    try:
        models = model_settings()
    except OctaviaError:  # a broken config file: the command reports it, if it reads it
        models = ModelSettings()
    if offline:  # read by Settings.offline too
        models = dataclasses.replace(models, offline=True)
    apply_library_environment(models)


def _configure_logging(debug: bool, quiet: bool) -> None:
    """Octavia's own messages at INFO (WARNING with --quiet), other libraries' at WARNING;
    everything at DEBUG with --debug. Rich formatting on a terminal, plain lines otherwise."""
    console = State().stderr
    handler: logging.Handler
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(
            console=console, show_path=debug, show_time=debug, rich_tracebacks=debug
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root_level = logging.DEBUG if debug else logging.WARNING
    logging.basicConfig(level=root_level, handlers=[handler], force=True)
    own_level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.getLogger("octavia_cli").setLevel(own_level)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code: the one error boundary of the program."""
    args = list(sys.argv[1:] if argv is None else argv)
    map_large_blocks()
    debug = "--debug" in args or os.environ.get("OCTAVIA_DEBUG", "") in ("1", "true")
    try:
        if help_cache.help_request(args):
            return _help(args)
        result = app(args=args, prog_name="octavia", standalone_mode=False)
    except typer.Abort:
        return _fail("Interrupted. Run the same command again to resume.", INTERRUPTED)
    except typer.exceptions.TyperException as exc:  # Typer's (vendored Click) usage errors
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except OctaviaError as exc:
        if debug:
            logging.getLogger("octavia_cli").exception("failed")
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("Interrupted. Run the same command again to resume.", INTERRUPTED)
    except Exception as exc:
        if debug:  # the traceback, then the same sentence and exit code as without --debug
            import traceback

            traceback.print_exc(file=sys.stderr)
        from octavia_cli.files import disk_full, is_disk_full

        if is_disk_full(f"{exc} {getattr(exc, 'strerror', '')}"):  # a library's failed write
            full = disk_full(None)
            return _fail(str(full), full.exit_code)
        return _fail(
            f"Unexpected error: {type(exc).__name__}: {exc}. "
            "Run again with --debug for the traceback, and please report it.",
            ExitCode.STAGE_FAILED,
        )
    if result == INTERRUPTED:  # Typer turns Ctrl-C into this exit code, silently
        return _fail("Interrupted. Run the same command again to resume.", INTERRUPTED)
    return int(result or 0)


INTERRUPTED = 130  # 128 + SIGINT


class _Tee:
    """stdout, and a copy of what is written to it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, flush...
        return getattr(self._stream, name)


def _help(args: list[str]) -> int:
    """Render the help Typer prints for ``args`` and keep it for next time
    (:mod:`octavia_cli.help_cache`)."""
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        result = app(args=args, prog_name="octavia", standalone_mode=False)
    finally:
        sys.stdout = tee._stream
    if not result:
        help_cache.keep(args, tee.copy.getvalue().encode(getattr(tee, "encoding", None) or "utf-8"))
    return int(result or 0)


def _fail(message: str, code: int) -> int:
    from rich.markup import escape

    State().stderr.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return int(code)


def main() -> None:
    sys.exit(run())
