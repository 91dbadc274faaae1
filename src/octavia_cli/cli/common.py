"""Options shared by the commands, the state the root callback sets, and helpers that turn
options into settings.

Options carry no ``envvar`` of their own: ``config.resolve`` reads every ``OCTAVIA_*``
variable, so the precedence (flags > env > file > preset > defaults) lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from octavia_cli.config import Preset
from octavia_cli.devices import Device


@dataclass
class State:
    debug: bool = False
    quiet: bool = False
    progress: str = "auto"

    @property
    def stderr(self) -> Console:
        return Console(stderr=True)

    def renderer(self) -> Any:
        """The progress hook for this invocation (a context manager)."""
        from octavia_cli.cli.render import ProgressRenderer
        from octavia_cli.progress import ProgressMode

        mode = ProgressMode.NONE if self.quiet else ProgressMode(self.progress)
        return ProgressRenderer(self.stderr, mode)


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def setting_option(name: str, *aliases: str, help: str | None = None, **kwargs: Any) -> Any:
    """The option of the setting that commands call ``name`` (``config.OPTIONS``): its flag
    and help come from the setting, and its value is checked by the setting's own bounds
    when the settings load (one sentence, exit 1), as the config file's and a job's are."""
    from octavia_cli.config import OPTIONS

    info = OPTIONS[name]
    assert info.flag is not None
    return typer.Option(info.flag, *aliases, help=help or info.help, show_default=False, **kwargs)


PresetOption = Annotated[
    Preset | None,
    typer.Option(
        "--preset", help="Engine set; offline needs no model download.", show_default=False
    ),
]
DeviceOption = Annotated[
    Device | None,
    typer.Option("--device", help="Where models run.", show_default=False),
]
WorkdirOption = Annotated[
    Path | None,
    typer.Option(
        "--workdir", help="Folder for the project (default: beside the input).", file_okay=False
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace existing outputs.")]
AsrModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Whisper model: a size name, a local folder, or bundled:NAME.",
        show_default=False,
    ),
]
AsrEngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine", help="Speech recognition: faster-whisper or whisperx.", show_default=False
    ),
]
BatchSizeOption = Annotated[
    int | None,
    typer.Option("--batch-size", help="whisperx: chunks decoded at once.", show_default=False),
]
ComputeTypeOption = Annotated[
    str | None,
    typer.Option(
        "--compute-type",
        help="CTranslate2 compute type: auto, int8, int8_float16, float16, float32.",
        show_default=False,
    ),
]
TtsEngineOption = Annotated[
    str | None,
    typer.Option(
        "--tts-engine", help="Speech engine: auto, espeak-ng, piper or xtts.", show_default=False
    ),
]
VoiceOption = Annotated[
    str | None,
    typer.Option(
        "--voice",
        help="An espeak-ng voice name, a Piper .onnx voice file, or a cloned voice (xtts).",
        show_default=False,
    ),
]
GlossaryOption = Annotated[
    Path | None,
    typer.Option(
        "--glossary",
        help="Terms to translate a fixed way: CSV (source,target) or TOML ([terms]); an "
        "empty target keeps the term (names).",
        dir_okay=False,
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def flags(**values: Any) -> dict[str, Any]:
    """Options by name as settings (the names are the settings' own: ``config.OPTIONS``),
    leaving out those not given."""
    from octavia_cli.config import option_flags

    return option_flags(values)


def write_text_output(path: Path, text: str, *, force: bool) -> None:
    """Write a text result the user asked for with -o: never over their file without --force."""
    from octavia_cli.files import atomic_write_bytes, check_output_path

    check_output_path(path, force=force)
    atomic_write_bytes(path, text.encode("utf-8"))


def print_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def glossary_terms(settings: Any) -> dict[str, str] | None:
    """The settings' glossary as terms to send to a server (read and checked here)."""
    from octavia_cli.text.glossary import load_glossary

    return load_glossary(Path(settings.mt.glossary)).to_dict() if settings.mt.glossary else None


def load_settings_for(**values: Any) -> Any:
    from octavia_cli.config import load_settings

    return load_settings(flags(**values))
