"""``octavia translate``: translate a transcript, a project, subtitles, or text on stdin."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

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

logger = logging.getLogger(__name__)
SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")


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
    from octavia_cli.engines.mt import get_translation_engine
    from octavia_cli.files import check_output_path
    from octavia_cli.languages import normalize_language

    settings = load_settings_for(
        preset=preset, mt_engine=engine_name, mt_model=model, glossary=glossary
    )
    target = normalize_language(to)
    source = normalize_language(source_language) if source_language else None
    if output is not None:
        check_output_path(output, force=force)
    engine = get_translation_engine(settings)
    try:
        if input in (None, "-"):
            result, text = _translate_stdin(settings, engine, source, target)
        else:
            path = Path(input)
            if path.is_dir():
                result = _translate_project(ctx, settings, path, engine, source, target)
            elif path.suffix.lower() in SUBTITLE_SUFFIXES:
                result, text = _translate_subtitles(settings, path, engine, source, target)
            else:
                result = _translate_transcript_file(settings, path, engine, source, target)
            if path.suffix.lower() not in SUBTITLE_SUFFIXES:
                text = "\n".join(s["translation"] for s in result["segments"])
    finally:
        engine.close()

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


def _glossary(settings: Any) -> Any:
    from octavia_cli.text.glossary import Glossary, load_glossary

    return load_glossary(Path(settings.mt.glossary)) if settings.mt.glossary else Glossary()


def _translate_stdin(
    settings: Any, engine: Any, source: str | None, target: str
) -> tuple[dict[str, Any], str]:
    from octavia_cli.stages.translate import translate_texts

    if source is None:
        raise InputError("Plain text needs its language.", "Add --from, e.g. --from en.")
    if sys.stdin.isatty():
        raise InputError(
            "No input: give a transcript JSON or pipe text on stdin.",
            "For example: echo 'Hello' | octavia translate --from en --to es",
        )
    lines = sys.stdin.read().splitlines()
    present = [line for line in lines if line.strip()]
    translated_present, missing = translate_texts(
        engine, present, source, target, _glossary(settings)
    )
    translated = iter(translated_present)
    out = [next(translated) if line.strip() else "" for line in lines]
    _warn_missing(missing, engine.name)
    result = {
        "source_language": source,
        "target_language": target,
        "engine": engine.describe(),
        "lines": [{"text": a, "translation": b} for a, b in zip(lines, out, strict=True)],
        "glossary_misses": missing,
    }
    return result, "\n".join(out)


def _warn_missing(missing: dict[str, int], engine: str) -> None:
    if missing:
        listed = ", ".join(f"'{term}' ({count}x)" for term, count in missing.items())
        logger.warning("glossary terms the %s engine would not keep: %s", engine, listed)


def _translate_subtitles(
    settings: Any, path: Path, engine: Any, source: str | None, target: str
) -> tuple[dict[str, Any], str]:
    """Subtitle events become lines (sentences split over several cues are translated
    together); the file comes back in its own format with its own timing."""
    import pysubs2

    from octavia_cli.project.records import Segment
    from octavia_cli.stages.translate import TranslateOptions, translate_segments

    if source is None:
        raise InputError("Subtitles need their language.", "Add --from, e.g. --from en.")
    if not path.exists():
        raise InputError(f"{path} does not exist.", "Check the file name.")
    try:
        subs = pysubs2.load(str(path), encoding="utf-8")
    except Exception as exc:
        raise InputError(f"{path} is not a subtitle file pysubs2 can read: {exc}.") from None
    events = [e for e in subs if not e.is_comment and e.plaintext.strip()]
    segments = [
        Segment(str(i), e.start / 1000, e.end / 1000, " ".join(e.plaintext.split()))
        for i, e in enumerate(events)
    ]
    report = translate_segments(
        segments, source, target, engine, TranslateOptions(glossary=_glossary(settings))
    )
    for event, segment in zip(events, segments, strict=True):
        event.text = segment.translations[target].text
    fmt = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa"}[path.suffix.lower()]
    result = {
        "language": source,
        "target_language": target,
        "engine": engine.describe(),
        "segments": [
            {
                "id": s.id,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "text": s.text,
                "translation": s.translations[target].text,
            }
            for s in segments
        ],
        "glossary_misses": report.missing_terms,
    }
    return result, subs.to_string(fmt)


def _translate_transcript_file(
    settings: Any, path: Path, engine: Any, source: str | None, target: str
) -> dict[str, Any]:
    from octavia_cli.languages import normalize_language
    from octavia_cli.pipeline import translate_options
    from octavia_cli.project.records import Segment
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
    report = translate_segments(
        segments, normalize_language(language), target, engine,
        translate_options(settings, target),
    )  # fmt: skip
    return _result(data | {"language": language}, segments, target, engine, report)


def _translate_project(
    ctx: typer.Context, settings: Any, folder: Path, engine: Any, source: str | None, target: str
) -> dict[str, Any]:
    from octavia_cli.pipeline import translate_options
    from octavia_cli.project.manifest import Project
    from octavia_cli.stages.translate import translate

    project = Project.load(folder)
    transcript = project.require_transcript()
    if source is not None and source != transcript.language:
        raise InputError(
            f"The project's transcript is in '{transcript.language}', not '{source}'.",
            "Leave out --from.",
        )
    options = translate_options(settings, target)
    with state(ctx).renderer() as hook, project.locked():
        report = translate(project, target, engine, hook, options)
    return _result(transcript.to_public_dict(), transcript.segments, target, engine, report)


def _result(
    data: dict[str, Any], segments: list[Any], target: str, engine: Any, report: Any
) -> dict[str, Any]:
    return {
        "language": data.get("language"),
        "target_language": target,
        "engine": engine.describe(),
        "chars_per_s": report.chars_per_s,
        "glossary_misses": report.missing_terms,
        "segments": [
            {
                "id": s.id,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "speaker": s.speaker,
                "text": s.text,
                "translation": s.translations[target].text,
                "estimated_s": s.translations[target].estimated_s,
                "ratio": s.translations[target].ratio,
                "candidate": s.translations[target].candidate,
            }
            for s in segments
        ],
    }
