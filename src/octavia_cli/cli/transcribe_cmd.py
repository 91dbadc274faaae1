"""``octavia transcribe``: speech to timed lines (the first stages of a dub project)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import (
    AsrEngineOption,
    AsrModelOption,
    BatchSizeOption,
    ComputeTypeOption,
    DeviceOption,
    ForceOption,
    JsonOption,
    PresetOption,
    WorkdirOption,
    load_settings_for,
    print_json,
    state,
    write_text_output,
)


def transcribe_command(
    ctx: typer.Context,
    input: Annotated[
        Path, typer.Argument(help="Video or audio file.", metavar="INPUT", show_default=False)
    ],
    language: Annotated[
        str | None,
        typer.Option("--language", "-l", help="Spoken language (ISO 639-1); detected if omitted."),
    ] = None,
    json_output: JsonOption = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the transcript JSON to this file.", dir_okay=False
        ),
    ] = None,
    workdir: WorkdirOption = None,
    preset: PresetOption = None,
    device: DeviceOption = None,
    model: AsrModelOption = None,
    asr_engine: AsrEngineOption = None,
    batch_size: BatchSizeOption = None,
    compute_type: ComputeTypeOption = None,
    force: ForceOption = False,
    remote: Annotated[
        bool, typer.Option("--remote", help="Run on the configured backend (octavia login).")
    ] = False,
) -> None:
    """Transcribe speech into timed lines with word timestamps."""
    import json

    from octavia_cli.files import check_output_path
    from octavia_cli.languages import normalize_language
    from octavia_cli.pipeline import Runner, open_project, prepare_transcript
    from octavia_cli.project.records import format_timestamp

    settings = load_settings_for(
        preset=preset,
        device=device,
        model=model,
        asr_engine=asr_engine,
        batch_size=batch_size,
        compute_type=compute_type,
    )
    language = normalize_language(language) if language else None
    if output is not None:
        check_output_path(output, force=force)
    if remote:
        data = _transcribe_remote(ctx, input, settings, language, preset)
    else:
        from octavia_cli.models.catalog import preflight

        preflight(settings, language)
        project = open_project(input, workdir)
        with state(ctx).renderer() as hook, project.locked(), Runner() as runner:
            transcript = prepare_transcript(project, input, settings, language, hook, runner)
        data = transcript.to_public_dict()
    if output is not None:
        write_text_output(
            output, json.dumps(data, indent=2, ensure_ascii=False) + "\n", force=force
        )
    if json_output:
        print_json(data)
    elif output is None:
        for segment in data["segments"]:
            typer.echo(
                f"[{format_timestamp(segment['start_s'])} --> "
                f"{format_timestamp(segment['end_s'])}] {segment['text']}"
            )


def _transcribe_remote(
    ctx: typer.Context, source: Path, settings: object, language: str | None, preset: object
) -> dict:
    """The transcript made on the backend (the same JSON a local run gives)."""
    import json
    import tempfile

    from octavia_cli.media.ffmpeg import probe
    from octavia_cli.remote.client import Client
    from octavia_cli.remote.jobs import run_remote

    probe(source)
    options: dict = {"from": language} if language else {}
    if preset is not None:
        options["preset"] = preset.value  # type: ignore[attr-defined]
    client = Client.from_settings(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="octavia-remote-") as scratch:
            target = Path(scratch) / "transcript.json"
            with state(ctx).renderer() as hook:
                run_remote(client, "transcribe", source, options, lambda _result: target, hook)
            return json.loads(target.read_text(encoding="utf-8"))
    finally:
        client.close()
