"""``octavia models list|pull|path|rm``: see, fetch ahead of time, and remove models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import PresetOption, load_settings_for, print_json, state
from octavia_cli.errors import InputError

app = typer.Typer(help="List, fetch and remove the models the engines use.", no_args_is_help=True)

LanguagesOption = Annotated[
    list[str] | None,
    typer.Option("--to", "-t", help="Target languages to plan for (repeat).", show_default=False),
]
SourceOption = Annotated[
    str | None, typer.Option("--from", "-f", help="Spoken language to plan for.")
]
YesOption = Annotated[
    bool,
    typer.Option(
        "--yes", "-y",
        help="Accept the licences of the models fetched (XTTS v2's CPML) without asking.",
    ),
]  # fmt: skip


def _entries(names: list[str]):  # -> list[ModelEntry]
    """The catalog entries of ``names``; ``musetalk`` brings its VAE and Whisper-tiny, which
    lip-sync cannot run without."""
    from octavia_cli.models.catalog import LIPSYNC_NAMES, find_model

    entries = []
    if "musetalk" in names:
        names = list(dict.fromkeys([*names, *LIPSYNC_NAMES.values()]))
    for name in names:
        entry = find_model(name)
        if entry is None:
            raise InputError(
                f"There is no model called '{name}' in the catalog.",
                "Run `octavia models list` to see the names.",
            )
        entries.append(entry)
    return entries


@app.command("list")
def list_command(
    ctx: typer.Context,
    installed: Annotated[
        bool, typer.Option("--installed", help="Only the models on this machine.")
    ] = False,
    preset: PresetOption = None,
    to: LanguagesOption = None,
    source: SourceOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Every model in the catalog (or those a preset uses with --preset), with where it is
    cached and its size on disk."""
    from rich.table import Table

    from octavia_cli.languages import normalize_language
    from octavia_cli.models.catalog import all_models, installed_path, preset_models, size_on_disk

    settings = load_settings_for(preset=preset)
    if preset is not None:
        languages = tuple(
            dict.fromkeys(normalize_language(x) for x in ([source] if source else []) + (to or []))
        )
        entries = preset_models(settings, languages)
    else:
        entries = all_models()
    rows = []
    for entry in entries:
        path = installed_path(entry, settings)
        if installed and path is None:
            continue
        rows.append(
            entry.to_dict()
            | {
                "installed": path is not None,
                "path": str(path) if path else None,
                "size_on_disk_mb": round(size_on_disk(path) / 1e6, 1) if path else 0.0,
            }
        )
    if json_output:
        print_json(rows)
        return
    table = Table("name", "kind", "source", "size", "licence", "revision", "on disk")
    for row in rows:
        table.add_row(
            row["name"],
            row["kind"],
            row["location"],
            f"{row['size_mb']} MB",
            row["license"] + (" (gated)" if row["gated"] else ""),
            row["revision"][:12],
            f"{row['size_on_disk_mb']:.0f} MB" if row["installed"] else "-",
        )
    from rich.console import Console

    Console().print(table)
    del ctx


@app.command("pull")
def pull_command(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Model names (see `models list`).")
    ] = None,
    preset: PresetOption = None,
    to: LanguagesOption = None,
    source: SourceOption = None,
    yes: YesOption = False,
) -> None:
    """Fetch models ahead of time: by name, or all a preset needs for --from/--to. A model
    whose licence must be accepted (XTTS v2) is fetched once you have accepted it: at the
    prompt, with --yes, COQUI_TOS_AGREED=1, or tts.accept_license."""
    from octavia_cli.languages import normalize_language
    from octavia_cli.models.catalog import installed_path, preset_models, pull

    settings = load_settings_for(preset=preset)
    if names:
        entries = _entries(names)
    elif preset is not None:
        languages = tuple(
            dict.fromkeys(normalize_language(x) for x in ([source] if source else []) + (to or []))
        )
        entries = preset_models(settings, languages)
    else:
        raise InputError(
            "Name the models to pull, or give --preset.",
            "E.g. octavia models pull whisper-large-v3, or --preset quality --from en --to es.",
        )
    console = state(ctx).stderr
    for entry in entries:  # every licence asked for before anything is fetched
        if entry.terms and not settings.offline and installed_path(entry, settings) is None:
            _accept_terms(entry, settings.tts.accept_license, yes, console)
    for entry in entries:
        path = pull(entry, settings, console)
        typer.echo(f"{entry.name}\t{path}")


def _accept_terms(entry, accepted: bool, yes: bool, console) -> None:  # entry: ModelEntry
    """Go ahead once the user accepts ``entry``'s licence: accepted before
    (``tts.accept_license``), with ``--yes``, with coqui-tts's own ``COQUI_TOS_AGREED=1``, or
    at a prompt on a terminal. ``--yes`` and the prompt's yes are recorded as
    ``tts.accept_license``, which the engine asks for.

    Raises:
        ConfigError: not accepted (declined, or no terminal to ask on).
    """
    import os
    import sys

    from octavia_cli.config import set_config_value
    from octavia_cli.errors import ConfigError

    if accepted or os.environ.get("COQUI_TOS_AGREED") == "1":
        return
    terms = (f"{entry.name} ({entry.location}) is under the {entry.license} licence: "
             f"{entry.terms}")  # fmt: skip
    how = ("Accept it with --yes, COQUI_TOS_AGREED=1, or: octavia config set "
           "tts.accept_license true")  # fmt: skip
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"{terms}; it is fetched only once you accept it.", how)
        console.print(terms)
        # Asked on stderr and read from stdin here (typer's prompt writes to stdout, which
        # holds the command's output).
        console.print("Do you accept its terms? [y/N] ", end="", markup=False)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            raise ConfigError(f"{entry.name} was not fetched: its licence was not accepted.", how)
    set_config_value("tts.accept_license", "true")
    console.print(f"licence accepted: tts.accept_license = true (for {entry.name})")


@app.command("path")
def path_command(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Print where a model is on this machine."""
    from octavia_cli.errors import MissingModelError
    from octavia_cli.models.catalog import installed_path

    (entry,) = _entries([name])
    path = installed_path(entry, load_settings_for())
    if path is None:
        raise MissingModelError(
            f"The model {entry.name} is not on this machine.",
            f"Fetch it with: octavia models pull {entry.name}",
        )
    typer.echo(str(path))


@app.command("rm")
def rm_command(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Remove a downloaded model from its cache."""
    import shutil

    from octavia_cli.models.catalog import BUNDLED, HUB, hub_repo_dir, installed_path

    (entry,) = _entries([name])
    path = installed_path(entry, load_settings_for())
    if path is None:
        raise InputError(f"The model {entry.name} is not on this machine.")
    if entry.source == BUNDLED:
        raise InputError(
            f"{entry.name} ships in a Python package.", "pip uninstall it to remove it."
        )
    target = hub_repo_dir(entry.location) if entry.source == HUB else Path(path)
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    typer.echo(f"removed {target}")
