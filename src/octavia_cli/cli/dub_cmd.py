"""``octavia dub``: the whole pipeline, from a video or audio file to its dubbed copy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import (
    AsrModelOption,
    DeviceOption,
    ForceOption,
    GlossaryOption,
    PresetOption,
    TtsEngineOption,
    VoiceOption,
    WorkdirOption,
    load_settings_for,
    state,
)


def dub_command(
    ctx: typer.Context,
    input: Annotated[
        Path,
        typer.Argument(help="Video or audio file to dub.", metavar="INPUT", show_default=False),
    ],
    to: Annotated[
        list[str],
        typer.Option(
            "--to",
            "-t",
            help="Target language (ISO 639-1); repeat for several.",
            show_default=False,
        ),
    ] = ...,  # type: ignore[assignment]
    source_language: Annotated[
        str | None,
        typer.Option("--from", "-f", help="Spoken language of the input; detected if omitted."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Output file (default: <stem>.<lang>.<ext> beside the input); with several "
            "--to, include {lang} in it.",
        ),
    ] = None,
    preset: PresetOption = None,
    device: DeviceOption = None,
    workdir: WorkdirOption = None,
    force: ForceOption = False,
    model: AsrModelOption = None,
    tts_engine: TtsEngineOption = None,
    voice: VoiceOption = None,
    max_speed: Annotated[
        float | None,
        typer.Option(
            "--max-speed", help="Largest speed-up to fit a line into its slot (default 1.3)."
        ),
    ] = None,
    glossary: GlossaryOption = None,
) -> None:
    """Dub a video or audio file into another language."""
    from octavia_cli.pipeline import DubRequest, dub

    settings = load_settings_for(
        glossary=glossary,
        preset=preset,
        device=device,
        model=model,
        tts_engine=tts_engine,
        voice=voice,
        max_speed=max_speed,
    )
    request = DubRequest(
        source=input,
        targets=tuple(to),
        source_language=source_language,
        output=output,
        workdir=workdir,
        force=force,
    )
    with state(ctx).renderer() as hook:
        result = dub(request, settings, hook)
    for path in result.outputs.values():
        typer.echo(str(path))
