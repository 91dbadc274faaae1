"""Translate the dubbing lines into a target language: by sentence, with a glossary, and
with a length that can be spoken in each line's time slot.

- **Context**: lines that continue one sentence (no sentence end between them, same
  speaker, no long pause) are translated together, and the translation is shared out over
  the lines by their share of the source text, cut at word boundaries.
- **Glossary**: see :mod:`octavia_cli.text.glossary`; terms the engine would not keep are logged.
- **Length control**: see :mod:`octavia_cli.text.length`; the chosen candidate's estimated
  duration and its ratio to the slot are recorded on each line's translation.

A line is translated when it has no translation yet or its source text (or the engine, or
these options) changed since; a translation edited by hand in ``project.json`` is kept on
every re-run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from octavia_cli.engines.mt.base import TranslationEngine
from octavia_cli.errors import InputError
from octavia_cli.languages import language_name
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import Segment, TranslateInfo, Translation, stable_hash
from octavia_cli.text.glossary import Glossary, restore
from octavia_cli.text.length import calibration_texts, choose, condense, estimate_s
from octavia_cli.text.segmentation import SENTENCE_END

logger = logging.getLogger(__name__)

NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "km"})
MAX_JOIN_PAUSE_S = 1.5  # lines further apart than this are separate units


@dataclass(frozen=True)
class TranslateOptions:
    glossary: Glossary = field(default_factory=Glossary)
    max_speed: float | None = None  # None: no length control
    candidates: int = 6  # n-best size when a line is too long or drops a glossary term
    # Characters per second of the voice that will speak the target, measured on texts.
    rate: Callable[[list[str]], float] | None = None

    @property
    def key(self) -> str:
        return stable_hash(self.glossary.digest, self.max_speed, self.candidates)


@dataclass
class TranslationReport:
    translated: int = 0  # lines
    shortened: int = 0  # units where a shorter candidate than the best was kept
    over: int = 0  # units still estimated over the allowed speed-up
    missing_terms: dict[str, int] = field(default_factory=dict)
    chars_per_s: float | None = None
    from_source: int = 0  # lines whose translation was unusable, spoken in their own words
    merged: int = 0  # lines whose words a neighbour of their sentence speaks


def stage_name(target: str) -> str:
    return f"translate:{target}"


def source_hash(segment: Segment, engine: TranslationEngine, options_key: str = "") -> str:
    return stable_hash(segment.text, engine.describe(), options_key)


def sentence_units(segments: list[Segment]) -> list[list[Segment]]:
    """Consecutive lines that belong to one sentence, in time order."""
    units: list[list[Segment]] = []
    for segment in sorted(segments, key=lambda s: s.start_s):
        if units:
            last = units[-1][-1]
            if (
                not last.text.rstrip().endswith(SENTENCE_END)
                and segment.speaker == last.speaker
                and segment.start_s - last.end_s <= MAX_JOIN_PAUSE_S
            ):
                units[-1].append(segment)
                continue
        units.append([segment])
    return units


def split_translation(text: str, weights: list[int], no_spaces: bool) -> list[str]:
    """Cut ``text`` into ``len(weights)`` pieces in proportion to ``weights``, at word
    boundaries (characters for languages written without spaces); no piece is empty while
    there are words enough."""
    if len(weights) == 1:
        return [text]
    tokens = list(text) if no_spaces else text.split()
    joiner = "" if no_spaces else " "
    total_weight = sum(weights) or len(weights)
    lengths = [len(t) + (0 if no_spaces else 1) for t in tokens]
    total_length = sum(lengths) or 1
    pieces: list[str] = []
    start = 0
    cumulative_weight = 0
    for index, weight in enumerate(weights[:-1]):
        cumulative_weight += weight
        goal = total_length * cumulative_weight / total_weight
        remaining = len(weights) - index - 1
        best, best_distance = start, float("inf")
        position = sum(lengths[:start])
        # Leave a token for each piece after this one while there are tokens enough.
        last_cut = min(len(tokens), max(len(tokens) - remaining, start + 1))
        for cut in range(start + 1, last_cut + 1):
            position += lengths[cut - 1]
            if abs(position - goal) < best_distance:
                best, best_distance = cut, abs(position - goal)
        pieces.append(joiner.join(tokens[start:best]))
        start = best
    pieces.append(joiner.join(tokens[start:]))
    return pieces


def _translate(
    engine: TranslationEngine,
    texts: list[str],
    source: str,
    target: str,
    glossary: Glossary,
    count: int,
) -> list[list[str]]:
    """n-best translations; engines that pass unknown words through get glossary terms as
    placeholders, restored to their wanted form after."""
    if getattr(engine, "keeps_unknown_words", False) and glossary:
        protected = [glossary.protect(text) for text in texts]
        results = engine.candidates([p[0] for p in protected], source, target, count)
        return [
            [restore(candidate, mapping) for candidate in group]
            for group, (_, mapping) in zip(results, protected, strict=True)
        ]
    return engine.candidates(texts, source, target, count)


def translate_texts(
    engine: TranslationEngine, texts: list[str], source: str, target: str, glossary: Glossary
) -> tuple[list[str], dict[str, int]]:
    """Translate free texts (no timing) with the glossary enforced as for lines; returns the
    translations and the glossary terms that were not kept, with counts."""
    if source == target:
        raise InputError(f"The text is already in {language_name(source)}.", "Choose another --to.")
    engine.check_pair(source, target)
    groups = _translate(engine, texts, source, target, glossary, 1)
    missing: dict[str, int] = {}
    results = []
    for index, group in enumerate(groups):
        if glossary.missing(texts[index], group[0]):
            group = _translate(engine, [texts[index]], source, target, glossary, 6)[0]
        kept = [c for c in group if not glossary.missing(texts[index], c)]
        text = glossary.post_edit(texts[index], (kept or group)[0])
        for term in glossary.missing(texts[index], text):
            missing[term.source] = missing.get(term.source, 0) + 1
        results.append(text)
    return results, missing


def translate_segments(
    segments: list[Segment],
    source: str,
    target: str,
    engine: TranslationEngine,
    options: TranslateOptions | None = None,
) -> TranslationReport:
    """Fill in missing or outdated translations in place."""
    options = options or TranslateOptions()
    if source == target:
        raise InputError(
            f"The source is already in {language_name(source)}.", "Choose another --to."
        )
    engine.check_pair(source, target)
    report = TranslationReport()
    key = options.key
    todo = {
        s.id
        for s in segments
        if (t := s.translations.get(target)) is None or t.source_hash != source_hash(s, engine, key)
    }
    units = [u for u in sentence_units(segments) if any(s.id in todo for s in u)]
    if not units:
        return report
    no_spaces = target in NO_SPACE_LANGUAGES
    texts = [" ".join(s.text.strip() for s in unit) for unit in units]
    best = [group[0] for group in _translate(engine, texts, source, target, options.glossary, 1)]

    rate = None
    if options.max_speed and options.rate is not None:
        sample = calibration_texts(best)
        rate = options.rate(sample) if sample else None
        report.chars_per_s = round(rate, 2) if rate else None

    def ratio(index: int) -> Callable[[str], float]:
        """A candidate's worst line: each line is dubbed in its own slot (the pauses between
        a unit's lines stay), with its share of the translation."""
        unit = units[index]
        weights = [len(s.text.strip()) for s in unit]

        def worst(text: str) -> float:
            pieces = split_translation(text, weights, no_spaces)
            return max(
                estimate_s(piece, rate or 1.0) / max(s.end_s - s.start_s, 0.1)
                for piece, s in zip(pieces, unit, strict=True)
            )

        return worst

    def too_long(index: int, text: str) -> bool:
        return bool(rate) and ratio(index)(text) > (options.max_speed or 1.0)

    retry = [
        i
        for i, text in enumerate(best)
        if too_long(i, text) or options.glossary.missing(texts[i], text)
    ]
    more: dict[int, list[tuple[str, bool]]] = {}
    if retry:
        full = _translate(
            engine, [texts[i] for i in retry], source, target, options.glossary, options.candidates
        )
        condensed_sources = {i: condense(texts[i], source) for i in retry}
        shortened = [i for i in retry if condensed_sources[i]]
        short = _translate(
            engine,
            [condensed_sources[i] or "" for i in shortened],
            source,
            target,
            options.glossary,
            options.candidates,
        )
        for i, group in zip(retry, full, strict=True):
            more[i] = [(text, False) for text in dict.fromkeys(group)]
        for i, group in zip(shortened, short, strict=True):
            more[i] += [(text, True) for text in dict.fromkeys(group)]

    for index, unit in enumerate(units):
        candidates = more.get(index) or [(best[index], False)]
        keeping = [c for c in candidates if not options.glossary.missing(texts[index], c[0])]
        pool = keeping or candidates
        if rate:
            choice = choose(pool, ratio(index), rate, options.max_speed or 1.0)
            text, chosen, condensed = (
                choice.text,
                candidates.index((choice.text, choice.condensed)),
                choice.condensed,
            )
            report.shortened += chosen > 0
            report.over += choice.ratio > (options.max_speed or 1.0)
        else:
            text, condensed = pool[0]
            chosen = candidates.index(pool[0])
        text = options.glossary.post_edit(texts[index], text)
        if not _usable(text) and _usable(texts[index]):
            # Nothing to speak came back (a name, a number, a word the engine dropped): the
            # line keeps its source words rather than going silent.
            text = next((c for c, _ in candidates if _usable(c)), texts[index])
            fallback = "" if text != texts[index] else "source"
        else:
            fallback = ""
        for term in options.glossary.missing(texts[index], text):
            report.missing_terms[term.source] = report.missing_terms.get(term.source, 0) + 1
        pieces = split_translation(text, [len(s.text.strip()) for s in unit], no_spaces)
        for segment, piece in zip(unit, pieces, strict=True):
            if segment.id not in todo:
                continue
            line_fallback = fallback
            if not _usable(piece) and _usable(segment.text) and _usable(text):
                line_fallback = "merged"  # the sentence's other lines say the whole of it
            report.from_source += line_fallback == "source"
            report.merged += line_fallback == "merged"
            estimated = round(estimate_s(piece, rate), 3) if rate else None
            span = max(segment.end_s - segment.start_s, 0.1)
            segment.translations[target] = Translation(
                piece,
                source_hash(segment, engine, key),
                engine.name,
                estimated_s=estimated,
                ratio=round(estimated / span, 3) if estimated is not None else None,
                candidate=chosen,
                candidates=len(candidates),
                condensed=condensed,
                fallback=line_fallback,
            )
            report.translated += 1
    if report.missing_terms:
        listed = ", ".join(f"'{term}' ({count}x)" for term, count in report.missing_terms.items())
        logger.warning(
            "glossary terms the %s engine would not keep in %s: %s",
            engine.name,
            language_name(target),
            listed,
        )
    return report


def _usable(text: str) -> bool:
    """Whether ``text`` has something to say: a letter or a digit, in any script."""
    return any(character.isalnum() for character in text)


def translate(
    project: Project,
    target: str,
    engine: TranslationEngine,
    hook: ProgressHook,
    options: TranslateOptions | None = None,
) -> TranslationReport:
    options = options or TranslateOptions()
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    inputs = stable_hash([source_hash(s, engine, options.key) for s in transcript.segments], target)
    if project.is_current(stage_name(target), inputs) and all(
        target in s.translations for s in transcript.segments
    ):
        reporter.skipped()
        return TranslationReport()
    began = time.monotonic()
    reporter.started(total=len(transcript.segments))
    report = translate_segments(transcript.segments, transcript.language, target, engine, options)
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        TranslateInfo(
            translated=report.translated,
            shortened=report.shortened,
            over_max_speed=report.over,
            chars_per_s=report.chars_per_s,
            glossary_misses=report.missing_terms,
            from_source=report.from_source,
            merged=report.merged,
        ),
    )
    summary = f"{report.translated} lines"
    if report.shortened:
        summary += f", {report.shortened} shortened to fit"
    if report.from_source:
        summary += f", {report.from_source} kept in their own words (empty translation)"
    if report.merged:
        summary += f", {report.merged} said by a neighbouring line of their sentence"
    reporter.done(summary)
    return report
