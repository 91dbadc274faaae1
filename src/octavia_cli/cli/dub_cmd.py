"""``octavia dub``: the whole pipeline, from a video or audio file to its dubbed copy."""

from __future__ import annotations

from dataclasses import replace
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
from octavia_cli.files import check_output_path


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
    remote: Annotated[
        bool,
        typer.Option("--remote", help="Run on the configured backend (octavia login)."),
    ] = False,
    estimate: Annotated[
        bool,
        typer.Option("--estimate", help="Print the backend's cost and your balance; no run."),
    ] = False,
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
    if remote or estimate:
        _dub_remote(ctx, request, settings, estimate, max_speed, preset)
        return
    with state(ctx).renderer() as hook:
        result = dub(request, settings, hook)
    for path in result.outputs.values():
        typer.echo(str(path))


def _dub_remote(
    ctx: typer.Context,
    request,
    settings,
    estimate_only: bool,
    max_speed,
    preset,
) -> None:
    """The same dub on the backend; results land where a local run would put them."""
    from octavia_cli.client import Client
    from octavia_cli.languages import normalize_language
    from octavia_cli.media import probe
    from octavia_cli.pipeline import output_paths
    from octavia_cli.remote import estimate, run_remote
    from octavia_cli.stages.mux import default_output

    media = probe(request.source)
    targets = tuple(dict.fromkeys(normalize_language(t) for t in request.targets))
    request = replace(request, targets=targets)
    options: dict = {"to": list(targets)}
    if request.source_language:
        options["from"] = normalize_language(request.source_language)
    if max_speed is not None:
        options["max_speed"] = max_speed
    if preset is not None:
        options["preset"] = preset.value
    client = Client.from_settings(settings)
    try:
        if estimate_only:
            quote = estimate(client, "dub", request.source, options)
            balance = quote["balance_minutes"]
            typer.echo(
                f"cost: {quote['cost_minutes']:.2f} min; balance: "
                + ("unlimited (local server)" if balance is None else f"{balance:.2f} min")
            )
            if not quote["enough"]:
                raise typer.Exit(1)
            return
        destinations = output_paths(request, media.has_video)
        for path in destinations.values():
            check_output_path(path, force=request.force)
        by_name = {
            default_output(request.source, target, media.has_video).name: path
            for target, path in destinations.items()
        }
        with state(ctx).renderer() as hook:
            written = run_remote(client, "dub", request.source, options, by_name.get, hook)
    finally:
        client.close()
    for path in written.values():
        typer.echo(str(path))
