"""Translation of what ``octavia translate`` is given: a transcript JSON, a project
folder, a subtitle file (timing kept) or plain text, with the engine of the settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, TextIO

from octavia_cli.config import Settings
from octavia_cli.errors import InputError
from octavia_cli.languages import normalize_language
from octavia_cli.pipeline.runner import Runner, runner_for
from octavia_cli.pipeline.steps import translate_options
from octavia_cli.progress import ProgressHook
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import Segment
from octavia_cli.stages.translate import (
    TranslateOptions,
    translate,
    translate_segments,
    translate_texts,
)
from octavia_cli.text.glossary import Glossary, load_glossary

logger = logging.getLogger(__name__)
SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")


def translate_input(
    path: Path | None, stdin: TextIO | None, source: str | None, target: str,
    settings: Settings, hook: ProgressHook, runner: Runner | None = None,
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Translate ``path`` (or the text of ``stdin``): the result as a JSON-ready dict, and
    as text (the translation alone; a subtitle file in its own format)."""
    with runner_for(runner) as run:
        engine = run.translator(settings)
        try:
            if path is None:
                assert stdin is not None
                return _translate_text(settings, engine, stdin.read(), source, target)
            if path.is_dir():
                result = _translate_project(settings, path, engine, source, target, run, hook)
            elif path.suffix.lower() in SUBTITLE_SUFFIXES:
                return _translate_subtitles(settings, path, engine, source, target)
            else:
                result = _translate_transcript_file(settings, path, engine, source, target, run)
            return result, "\n".join(s["translation"] for s in result["segments"])
        finally:
            run.release(engine)


def _glossary(settings: Settings) -> Glossary:
    return load_glossary(Path(settings.mt.glossary)) if settings.mt.glossary else Glossary()


def _translate_text(
    settings: Settings, engine: Any, text: str, source: str | None, target: str
) -> tuple[dict[str, Any], str]:
    if source is None:
        raise InputError("Plain text needs its language.", "Add --from, e.g. --from en.")
    lines = text.splitlines()
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
    settings: Settings, path: Path, engine: Any, source: str | None, target: str
) -> tuple[dict[str, Any], str]:
    """Subtitle events become lines (sentences split over several cues are translated
    together); the file comes back in its own format with its own timing."""
    import pysubs2

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
    settings: Settings, path: Path, engine: Any, source: str | None, target: str,
    runner: Runner,
) -> dict[str, Any]:  # fmt: skip
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
        translate_options(runner, settings, target),
    )  # fmt: skip
    return _result(data | {"language": language}, segments, target, engine, report)


def _translate_project(
    settings: Settings, folder: Path, engine: Any, source: str | None, target: str,
    runner: Runner, hook: ProgressHook,
) -> dict[str, Any]:  # fmt: skip
    project = Project.load(folder)
    transcript = project.require_transcript()
    if source is not None and source != transcript.language:
        raise InputError(
            f"The project's transcript is in '{transcript.language}', not '{source}'.",
            "Leave out --from.",
        )
    options = translate_options(runner, settings, target)
    with project.locked():
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
