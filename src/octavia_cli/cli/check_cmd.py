"""``octavia check``: hear every dubbed line of a finished project again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import JsonOption, PresetOption, flags, print_json, state
from octavia_cli.errors import ExitCode


def check_command(
    ctx: typer.Context,
    project: Annotated[
        Path,
        typer.Argument(
            help="A project folder (talk.octavia), or the source it was made for (talk.mp4).",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The Whisper model that hears the lines (qa.model).",
            show_default=False,
        ),
    ] = None,
    preset: PresetOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check each dubbed line of a project again: what it says (heard by a recogniser, its
    character error rate against its text), its length and its voice; the timing reports
    and report.html are updated. Speaks nothing again (a dub does that). Exits 1 when a
    line is still unclear."""
    from octavia_cli.config import load_settings
    from octavia_cli.pipeline import check_project
    from octavia_cli.project.manifest import PROJECT_SUFFIX, default_project_folder
    from octavia_cli.project.report import check_summary

    settings = load_settings(flags(preset=preset) | ({"qa.model": model} if model else {}))
    folder = project
    if not (project / "project.json").exists() and project.suffix != PROJECT_SUFFIX:
        folder = default_project_folder(project, None)
    with state(ctx).renderer() as hook:
        found = check_project(folder, settings, hook)
    import json

    from octavia_cli.project.layout import timing_report_path

    flagged = 0
    summaries = {}
    for target, info in found.items():
        report = json.loads((folder / timing_report_path(target)).read_text(encoding="utf-8"))
        flagged += len(info.flagged)
        summaries[target] = {
            "checked": info.lines, "heard": info.checked, "retaken": info.retaken,
            "flagged": len(info.flagged), "flagged_lines": info.flagged,
            "limits": info.limits, "recogniser": info.recogniser,
            "lines": [
                {"id": line["id"], "text": line["text"]} | (line.get("check") or {})
                for line in report["lines"]
            ],
        }  # fmt: skip
        if not state(ctx).quiet:
            state(ctx).stderr.print(check_summary(report), highlight=False, soft_wrap=True,
                                    style="bold red" if info.flagged else None)  # fmt: skip
    if json_output:
        print_json({"project": str(folder), "languages": summaries})
    if flagged:
        raise typer.Exit(int(ExitCode.BAD_INPUT))
