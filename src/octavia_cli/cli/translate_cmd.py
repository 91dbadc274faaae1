"""``octavia translate``: translate a transcript, a project, or plain text from stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from octavia_cli.cli.common import (
    ForceOption,
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
            help="A transcript JSON (from `octavia transcribe --json`), a project folder, or - "
            "(the default) for plain text on stdin.",
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
    json_output: JsonOption = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the result to this file.", dir_okay=False),
    ] = None,
    preset: PresetOption = None,
    force: ForceOption = False,
) -> None:
    """Translate text into another language, keeping each line's timing."""
    from octavia_cli.engines.mt import get_translation_engine
    from octavia_cli.files import check_output_path
    from octavia_cli.languages import normalize_language

    settings = load_settings_for(preset=preset)
    target = normalize_language(to)
    source = normalize_language(source_language) if source_language else None
    if output is not None:
        check_output_path(output, force=force)
    engine = get_translation_engine(settings)

    if input in (None, "-"):
        result, text = _translate_stdin(engine, source, target)
    else:
        path = Path(input)
        if path.is_dir():
            result = _translate_project(ctx, path, engine, source, target)
        else:
            result = _translate_transcript_file(path, engine, source, target)
        text = "\n".join(s["translation"] for s in result["segments"])

    if output is not None:
        body = (
            json.dumps(result, indent=2, ensure_ascii=False)
            if json_output or output.suffix.lower() == ".json"
            else text
        )
        write_text_output(output, body + "\n", force=force)
    if json_output:
        print_json(result)
    elif output is None:
        typer.echo(text)


def _translate_stdin(engine: Any, source: str | None, target: str) -> tuple[dict[str, Any], str]:
    if source is None:
        raise InputError("Plain text needs its language.", "Add --from, e.g. --from en.")
    if sys.stdin.isatty():
        raise InputError(
            "No input: give a transcript JSON or pipe text on stdin.",
            "For example: echo 'Hello' | octavia translate --from en --to es",
        )
    lines = sys.stdin.read().splitlines()
    from octavia_cli.languages import language_name

    if source == target:
        raise InputError(f"The text is already in {language_name(source)}.", "Choose another --to.")
    engine.check_pair(source, target)
    present = [line for line in lines if line.strip()]
    translated = iter(engine.translate(present, source, target))
    out = [next(translated) if line.strip() else "" for line in lines]
    result = {
        "source_language": source,
        "target_language": target,
        "engine": engine.name,
        "lines": [{"text": a, "translation": b} for a, b in zip(lines, out, strict=True)],
    }
    return result, "\n".join(out)


def _translate_transcript_file(
    path: Path, engine: Any, source: str | None, target: str
) -> dict[str, Any]:
    from octavia_cli.model import Segment
    from octavia_cli.stages.translate import translate_segments

    if not path.exists():
        raise InputError(f"{path} does not exist.", "Check the file name.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        segments = [Segment.from_dict(s) for s in data["segments"]]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(
            f"{path} is not a transcript JSON.",
            "Make one with: octavia transcribe INPUT -o transcript.json",
        ) from None
    language = source or data.get("language")
    if not language:
        raise InputError(f"{path} does not say its language.", "Add --from.")
    from octavia_cli.languages import normalize_language

    translate_segments(segments, normalize_language(language), target, engine)
    return _result(data | {"language": language}, segments, target, engine.name)


def _translate_project(
    ctx: typer.Context, folder: Path, engine: Any, source: str | None, target: str
) -> dict[str, Any]:
    from octavia_cli.project import Project
    from octavia_cli.stages.translate import translate

    project = Project.load(folder)
    transcript = project.require_transcript()
    if source is not None and source != transcript.language:
        raise InputError(
            f"The project's transcript is in '{transcript.language}', not '{source}'.",
            "Leave out --from.",
        )
    with state(ctx).renderer() as hook, project.locked():
        translate(project, target, engine, hook)
    return _result(transcript.to_public_dict(), transcript.segments, target, engine.name)


def _result(data: dict[str, Any], segments: list[Any], target: str, engine: str) -> dict[str, Any]:
    return {
        "language": data.get("language"),
        "target_language": target,
        "engine": engine,
        "segments": [
            {
                "id": s.id,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "speaker": s.speaker,
                "text": s.text,
                "translation": s.translations[target].text,
            }
            for s in segments
        ],
    }
