"""``octavia doctor``: check this machine for everything a run needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import PresetOption, load_settings_for, print_json


def doctor_command(
    preset: PresetOption = None,
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Where projects will be written.", file_okay=False)
    ] = Path("."),
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Check Python, packages, GPU and CUDA, ffmpeg, the offline engines, disk space and
    models; exit 1 if a default run (or --preset P) would fail."""
    from rich.console import Console
    from rich.markup import escape

    from octavia_cli.pipeline.doctor import Status, run_checks

    checks = run_checks(load_settings_for(preset=preset), workdir)
    failed = any(check.status is Status.ERROR for check in checks)
    if json_output:
        print_json({"ok": not failed, "checks": [check.to_dict() for check in checks]})
    else:
        console = Console()
        style = {Status.OK: "green", Status.WARNING: "yellow", Status.ERROR: "bold red"}
        for check in checks:
            console.print(
                f"[{style[check.status]}]{check.status.value.upper():<7}[/] "
                f"{escape(check.name)}: {escape(check.detail)}",
                highlight=False,
            )
            if check.fix:
                console.print(f"        fix: {escape(check.fix)}", highlight=False)
    if failed:
        raise typer.Exit(1)
