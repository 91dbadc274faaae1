"""``octavia translate``: translate a transcript, a project, subtitles, or text on stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import (
    ForceOption,
    GlossaryOption,
    JsonOption,
    PresetOption,
    load_settings_for,
    print_json,
    state,
    write_text_output,
)
from octavia_cli.errors import InputError


def translate_command(
    ctx: typer.Context,
    input: Annotated[
        str | None,
        typer.Argument(
            help="A transcript JSON (from `octavia transcribe --json`), a project folder, "
            "subtitles (.srt, .vtt, .ass: timing kept), or - (the default) for plain text "
            "on stdin.",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str, typer.Option("--to", "-t", help="Target language (ISO 639-1).", show_default=False)
    ] = ...,  # type: ignore[assignment]
    source_language: Annotated[
        str | None,
        typer.Option("--from", "-f", help="Source language; read from the transcript if omitted."),
    ] = None,
    engine_name: Annotated[
        str | None,
        typer.Option(
            "--engine", help="Translation engine: apertium or transformers.", show_default=False
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="transformers model: auto, a catalog name (opus-mt-en-es, nllb-600m, ...), "
            "a hub id or a local folder.",
            show_default=False,
        ),
    ] = None,
    glossary: GlossaryOption = None,
    json_output: JsonOption = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the result to this file.", dir_okay=False),
    ] = None,
    preset: PresetOption = None,
    force: ForceOption = False,
) -> None:
    """Translate text into another language: by sentence, with a glossary, and (for a
    transcript or project) with a length that can be spoken in each line's slot."""
    from octavia_cli.files import check_output_path
    from octavia_cli.languages import normalize_language
    from octavia_cli.pipeline.translation import translate_input

    settings = load_settings_for(
        preset=preset, mt_engine=engine_name, mt_model=model, glossary=glossary
    )
    target = normalize_language(to)
    source = normalize_language(source_language) if source_language else None
    if output is not None:
        check_output_path(output, force=force)
    if input in (None, "-") and source is not None and sys.stdin.isatty():
        raise InputError(
            "No input: give a transcript JSON or pipe text on stdin.",
            "For example: echo 'Hello' | octavia translate --from en --to es",
        )
    given = None if input in (None, "-") else Path(input)
    with state(ctx).renderer() as hook:
        result, text = translate_input(
            given, sys.stdin if given is None else None, source, target, settings, hook
        )

    if output is not None:
        body = (
            json.dumps(result, indent=2, ensure_ascii=False)
            if json_output or output.suffix.lower() == ".json"
            else text
        )
        write_text_output(output, body.rstrip("\n") + "\n", force=force)
    if json_output:
        print_json(result)
    elif output is None:
        typer.echo(text.rstrip("\n"))
