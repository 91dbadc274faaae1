"""Translate each dubbing line into a target language.

A line is translated when it has no translation yet or its source text changed since (each
translation records the hash of the text and engine it came from). A translation edited by
hand in ``project.json`` is therefore kept on every re-run.
"""

from __future__ import annotations

import time

from octavia_cli.engines.mt import TranslationEngine
from octavia_cli.errors import InputError
from octavia_cli.languages import language_name
from octavia_cli.model import Segment, Translation, stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project


def stage_name(target: str) -> str:
    return f"translate:{target}"


def source_hash(segment: Segment, engine: TranslationEngine) -> str:
    return stable_hash(segment.text, engine.name)


def translate_segments(
    segments: list[Segment], source: str, target: str, engine: TranslationEngine
) -> int:
    """Fill in missing or outdated translations in place; return how many were made."""
    if source == target:
        raise InputError(
            f"The source is already in {language_name(source)}.", "Choose another --to."
        )
    engine.check_pair(source, target)
    todo = [
        s
        for s in segments
        if (t := s.translations.get(target)) is None or t.source_hash != source_hash(s, engine)
    ]
    if todo:
        texts = engine.translate([s.text for s in todo], source, target)
        for segment, text in zip(todo, texts, strict=True):
            segment.translations[target] = Translation(
                text, source_hash(segment, engine), engine.name
            )
    return len(todo)


def translate(project: Project, target: str, engine: TranslationEngine, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    inputs = stable_hash([source_hash(s, engine) for s in transcript.segments], target)
    if project.is_current(stage_name(target), inputs) and all(
        target in s.translations for s in transcript.segments
    ):
        reporter.skipped()
        return
    began = time.monotonic()
    reporter.started(total=len(transcript.segments))
    made = translate_segments(transcript.segments, transcript.language, target, engine)
    project.mark_done(stage_name(target), inputs, time.monotonic() - began, translated=made)
    reporter.done(f"{made} lines")
