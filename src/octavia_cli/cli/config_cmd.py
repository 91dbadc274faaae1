"""``octavia config``: where the config file is, what is in force, and setting a key."""

from __future__ import annotations

from typing import Annotated

import typer

from octavia_cli.cli.common import JsonOption, print_json

app = typer.Typer(help="Show and change settings.", no_args_is_help=True)


@app.command("path")
def path_command() -> None:
    """Print the path of the config file."""
    from octavia_cli.config import config_path

    typer.echo(str(config_path()))


@app.command("show")
def show_command(json_output: JsonOption = False) -> None:
    """Show every setting in force, where it comes from, and its environment variable."""
    from rich.console import Console
    from rich.table import Table

    from octavia_cli.config import KEYS, masked, resolve

    _, resolved = resolve()
    if json_output:
        print_json(
            {
                key: {
                    "value": masked(key, item.value),
                    "source": item.source,
                    "env": KEYS[key].env_var,
                }
                for key, item in resolved.items()
            }
        )
        return
    table = Table("key", "value", "from", "environment", "meaning", box=None)
    for key, item in resolved.items():
        value = repr(masked(key, item.value))
        table.add_row(key, value, item.source, KEYS[key].env_var, KEYS[key].help)
    Console(soft_wrap=False).print(table)


@app.command("set")
def set_command(
    key: Annotated[str, typer.Argument(help="Setting, e.g. asr.model.", show_default=False)],
    value: Annotated[str, typer.Argument(help="New value.", show_default=False)],
) -> None:
    """Store a setting in the config file."""
    from octavia_cli.config import config_path, masked, set_config_value

    stored = set_config_value(key, value)
    typer.echo(f"{key} = {masked(key, stored)!r} (in {config_path()})", err=True)


@app.command("unset")
def unset_command(
    key: Annotated[str, typer.Argument(help="Setting to remove.", show_default=False)],
) -> None:
    """Remove a setting from the config file (back to its default)."""
    from octavia_cli.config import unset_config_value

    unset_config_value(key)
