"""Check every dubbed line: does its fitted clip say its text, at about the length its text
needs, in its speaker's voice?

One recognition pass over the lines, not one per line: the fitted clips that need hearing
are laid end to end, a second of silence between two, in chunks of up to a minute, and the
project's recogniser (Whisper through faster-whisper, with word times) hears each chunk in
the target language, chunks in parallel where the recogniser can. Each word goes to the
clip it was heard in. Per take of a line, the stage records:

- **what was heard** and its **character error rate** against the line's text, after the
  normalisation of :mod:`octavia_cli.text.scoring`. A take fails when its rate is clearly
  worse than the recogniser's rate on that engine's clean, unstretched speech in that
  language (:data:`BASELINES`, measured by ``bench/check_calibration.py``; the rule is in
  ``docs/checks.md``);
- its **length against its text's**: its spoken length at the engine's own rate over the
  length the dub's median rate (characters a second over all its lines) gives its text.
  Too short is a cut-off, too long is babble (:func:`length_bounds`: from the engine's
  measured spread, within half and twice);
- its **speaker similarity** to the voice's reference (XTTS voices, resemblyzer), against
  ``tts.min_similarity``.

Lines of one or two words are judged with a wider tolerance (:data:`SHORT_WORDS`): a
recogniser often mishears a lone short word, and a short word's length is hardly predictable.

A take that fails is spoken again by the pipeline (``stages.synthesize.retake``) and heard
again here; :func:`keep_best_takes` then keeps each line's best take. A line no take of
which passes is kept all the same (never dropped) and flagged: in the timing report, in
``report.html``, in the run's summary and its ``--json``.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.config import Settings
from octavia_cli.errors import StageError
from octavia_cli.files import atomic_write_bytes
from octavia_cli.media.audio import read_audio, to_channels
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import timing_report_path
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import CheckInfo, LineCheck, Segment, TakeCheck, stable_hash
from octavia_cli.text.length import spoken_characters
from octavia_cli.text.scoring import character_error_rate, word_count
from octavia_cli.workers import in_order

CHECK_VERSION = 1  # part of every check's key: a new rule hears every line again
RATE_HZ = 16_000
LEAD_S = 0.5  # silence before the first clip of a chunk
GAP_S = 1.0  # silence between two clips: a word is never in doubt between two lines
# Clips heard in one recognition call: about a minute of speech (heard as two Whisper
# windows), and less to give each of the recogniser's workers one, down to 20 s. Hearing
# the 171 calibration lines of espeak-ng's Spanish (403 s) in chunks of 60 s took 37 s and
# had a 95th percentile CER of 0.49; in chunks of 20 s, 56 s and 0.56 (more windows, each
# padded to 30 s, and less context for each one's first words).
CHUNK_S = (20.0, 60.0)
MAX_TOKENS = 440  # Whisper's own limit per window is 448
KEPT_GAP_S = 0.4  # what the VAD keeps of a gap between two clips (its padding), about
EARLY_S, LATE_S = 0.3, 0.6  # a word heard this far around a clip is still the clip's


@dataclass(frozen=True)
class Baseline:
    """How the recogniser hears an engine's clean, unstretched speech in a language: the
    character error rate's median and 95th percentile over the lines measured, and the 1st
    and 99th percentiles of their lengths against their texts' (lines of 12 characters or
    more, at the median rate)."""

    median: float
    p95: float
    lengths: tuple[float, float]
    lines: int  # how many lines it was measured on (0: not measured here; a prior)


# (engine, language) -> its baseline, heard by Whisper base (bundled:whisper-base).
# Measured by bench/check_calibration.py on 171 real lines: the shared dialogues as Octavia
# transcribes them (English) and as Apertium translates them (Spanish), each spoken at the
# engine's own rate, unstretched, in the voice the dub gave its speaker. A larger Whisper
# hears better, so with one the rule errs on the lenient side.
BASELINES: dict[tuple[str, str], Baseline] = {
    ("espeak-ng", "es"): Baseline(0.208, 0.492, (0.86, 1.47), 171),
    ("espeak-ng", "en"): Baseline(0.088, 0.526, (0.85, 1.40), 171),
    ("piper", "en"): Baseline(0.000, 0.341, (0.80, 1.48), 171),
}
# Where nothing was measured here: XTTS v2 (no weights on this machine; published CERs of
# 2-4% with Whisper large, and a free rate: the lengths of the rule of thumb), and
# an engine in a language not in the table, by its figures in the languages measured.
PRIORS: dict[str, Baseline] = {
    "xtts": Baseline(0.04, 0.20, (0.6, 1.6), 0),
    "piper": Baseline(0.05, 0.35, (0.8, 1.5), 0),
    "espeak-ng": Baseline(0.20, 0.52, (0.85, 1.5), 0),
}
DEFAULT_BASELINE = Baseline(0.10, 0.40, (0.6, 1.6), 0)
ALLOWANCE = 0.15  # how much worse than the baseline's 95th percentile a take may be heard
MAX_LIMIT = 0.6  # never pass a take heard this badly, whatever the engine
SHORT_WORDS = 2  # lines of this many words or fewer are short
SHORT_LIMIT = 0.5  # ...and pass with a rate up to this (at least)
SHORT_LENGTHS = (0.3, 3.0)  # ...and lengths within these
MIN_RATE_LINES = 3  # lines of 12 characters or more, to take the dub's rate from
MIN_EXPECTED_S = 0.5  # the least a text is expected to take ("Su" is a syllable, not 0.1 s)


def baseline(engine: str, language: str) -> Baseline:
    return BASELINES.get((engine, language)) or PRIORS.get(engine) or DEFAULT_BASELINE


def length_bounds(engine: str, language: str) -> tuple[float, float]:
    """The shortest and longest a take may be against its text's length: 80% of the
    baseline's 1st percentile and 125% of its 99th, within the rule of thumb (half is a
    cut-off, twice is babble)."""
    low, high = baseline(engine, language).lengths
    return round(max(0.5, 0.8 * low), 3), round(min(2.0, 1.25 * high), 3)


def cer_limit(engine: str, language: str, tolerance: float) -> float:
    """The highest character error rate a take of ``engine`` in ``language`` passes with:
    the baseline's 95th percentile plus ``tolerance`` times :data:`ALLOWANCE`, at most
    :data:`MAX_LIMIT`."""
    return round(min(MAX_LIMIT, baseline(engine, language).p95 + tolerance * ALLOWANCE), 3)


def stage_name(target: str) -> str:
    return f"check:{target}"


@dataclass(frozen=True)
class CheckOptions:
    tolerance: float = 1.0  # qa.tolerance
    min_similarity: float = 0.0  # tts.min_similarity (XTTS voices only)
    force: bool = False  # hear every line again (``octavia check``)

    @classmethod
    def from_settings(cls, settings: Settings, force: bool = False) -> CheckOptions:
        similarity = settings.tts.min_similarity if settings.tts.engine == "xtts" else 0.0
        return cls(settings.qa.tolerance, similarity, force)


def check(
    project: Project, target: str, recogniser: Any, options: CheckOptions, hook: ProgressHook
) -> CheckInfo:
    """Hear the fitted clip of every line of ``target`` whose check is missing or stale
    (every line with ``options.force``), record each take's scores on the line, flag the
    lines whose kept take fails, and note it all in the timing report."""
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    segments = sorted(transcript.segments, key=lambda s: s.start_s)
    began = time.monotonic()
    heard_by = recogniser.describe()
    references = _reference_embeddings(project, target, options)
    rate = _chars_per_second(segments, target)
    pending: list[Segment] = []
    for segment in segments:
        fit, clip = segment.fits.get(target), segment.clips.get(target)
        if fit is None or clip is None:
            raise StageError(f"Line {segment.id} has no fitted {target} clip.",
                             "Run the dub (or its fit stage) first.")  # fmt: skip
        key = check_key(clip, fit, heard_by, options)
        record = segment.checks.get(target)
        if record is None or record.clip_key != clip.key:  # new text or voice: new takes
            record = LineCheck("", clip.key)
            segment.checks[target] = record
        done = record.take(clip.take)
        if done is not None and done.fit_key == key and not options.force:
            record.key, record.chosen = key, clip.take
            record.flagged = not done.passed
            continue
        record.key = key
        pending.append(segment)
    if not pending:
        reporter.skipped()
    else:
        lines = f"{len(pending)} line{'s' if len(pending) != 1 else ''}"
        reporter.started(total=len(pending), message=f"hearing {lines}")
        heard = _hear(project, target, pending, recogniser, reporter)
        for segment in pending:
            take = _judge(segment, target, heard.get(segment.id, ""), rate, options,
                          references, project)  # fmt: skip
            record = segment.checks[target]
            take.fit_key = record.key
            record.takes = [t for t in record.takes if t.take != take.take] + [take]
            record.takes.sort(key=lambda t: t.take)
            record.chosen, record.flagged = take.take, not take.passed
        reporter.done(f"{lines} heard")
    info = _info(segments, target, len(pending), heard_by, options)
    inputs = stable_hash([s.checks[target].key for s in segments])
    project.mark_done(stage_name(target), inputs, time.monotonic() - began, info)
    annotate_timing_report(project, target)
    return info


def check_key(clip: Any, fit: Any, heard_by: str, options: CheckOptions) -> str:
    """What a check of a line heard: its take, the speed it is played at, the recogniser
    and the rules. A line moved (its neighbour's new take ran longer) but played at the same
    speed is not heard again."""
    return stable_hash(
        CHECK_VERSION,
        clip.key,
        clip.take,
        clip.path,
        round(fit.speed, 2),
        bool(fit.path),
        heard_by,
        options.tolerance,
        options.min_similarity,
    )


def lines_to_retake(project: Project, target: str, max_attempts: int) -> dict[str, int]:
    """Line id -> the next take's number, for each line whose kept take failed and that has
    had fewer than ``max_attempts`` takes."""
    wanted = {}
    for segment in project.require_transcript().segments:
        record = segment.checks.get(target)
        if record is None or not record.flagged or len(record.takes) >= max_attempts:
            continue
        wanted[segment.id] = max(t.take for t in record.takes) + 1
    return wanted


def keep_best_takes(project: Project, target: str) -> list[str]:
    """Point each line's clip at its best take (the pipeline spoke its last take last);
    return the lines changed. The best: a passing take before any failing one, then the
    lowest :func:`badness`."""
    changed = []
    for segment in project.require_transcript().segments:
        record, clip = segment.checks.get(target), segment.clips.get(target)
        if record is None or clip is None or len(record.takes) < 2:
            continue
        best = min(record.takes, key=lambda t: (not t.passed, badness(t)))
        if best.take == clip.take or not project.path(best.path).exists():
            continue
        clip.path, clip.take = best.path, best.take
        clip.duration_s, clip.tts_speed = best.duration_s, best.tts_speed
        clip.similarity, clip.attempts = best.similarity, len(record.takes)
        changed.append(segment.id)
    if changed:
        project.save()
    return changed


def badness(take: TakeCheck) -> float:
    """One number to rank a line's takes by (lower is better): the error rate, plus how far
    the length is beyond a third of an octave from its text's, plus how far the voice is
    below its reference."""
    ratio = max(take.duration_ratio, 1e-3)
    length = max(0.0, abs(math.log2(ratio)) - 0.33)
    voice = 0.0 if take.similarity is None else max(0.0, 0.75 - take.similarity)
    return round(take.cer + length + 2 * voice, 4)


# -- hearing -------------------------------------------------------------------------------


def _hear(
    project: Project, target: str, segments: list[Segment], recogniser: Any,
    reporter: StageReporter,
) -> dict[str, str]:  # fmt: skip
    """What the recogniser hears in each line's fitted clip, by line id."""
    spoken = [s for s in segments if s.fits[target].path]

    def audio(segment: Segment) -> np.ndarray:
        samples, _ = read_audio(project.path(segment.fits[target].path), RATE_HZ)
        return to_channels(samples, 1)[0]

    clips = [(s.id, s.fits[target].end_s - s.fits[target].start_s, partial(audio, s))
             for s in spoken]  # fmt: skip
    texts = {s.id: s.translations[target].text for s in spoken}
    return hear_clips(clips, recogniser, target, texts,
                      lambda done: reporter.advance(done, len(segments)))  # fmt: skip


def hear_clips(
    clips: Sequence[tuple[str, float, Callable[[], np.ndarray]]], recogniser: Any, language: str,
    texts: dict[str, str], on_progress: Callable[[int], None] = lambda done: None,
) -> dict[str, str]:  # fmt: skip
    """What ``recogniser`` hears in each clip (``(id, seconds, read)``: ``read`` gives its
    16 kHz mono audio), in ``language``, ``texts`` being what each should say (it bounds
    the tokens decoded: about twice what they should take, and 16). The clips are laid end
    to end with :data:`GAP_S` of silence between two, in chunks of :data:`CHUNK_S` of
    speech, heard in parallel where the recogniser can; each word goes to the clip it was
    heard in."""
    workers = max(1, int(getattr(recogniser, "parallel_windows", 1)))
    total = sum(seconds + KEPT_GAP_S for _, seconds, _ in clips)
    size = min(CHUNK_S[1], max(CHUNK_S[0], total / workers))
    chunks: list[list[tuple[str, float, Callable[[], np.ndarray]]]] = [[]]
    length = 0.0
    for clip in clips:
        if chunks[-1] and length + clip[1] + KEPT_GAP_S > size:
            chunks.append([])
            length = 0.0
        chunks[-1].append(clip)
        length += clip[1] + KEPT_GAP_S

    def hear(chunk: list[tuple[str, float, Callable[[], np.ndarray]]]) -> dict[str, str]:
        pieces = [np.zeros(int(LEAD_S * RATE_HZ), np.float32)]
        spans: list[tuple[str, float, float]] = []
        at = LEAD_S
        for line, _, read in chunk:
            mono = read()
            spans.append((line, at, at + len(mono) / RATE_HZ))
            pieces += [mono, np.zeros(int(GAP_S * RATE_HZ), np.float32)]
            at += len(mono) / RATE_HZ + GAP_S
        # What the chunk should say bounds what is decoded: a window looping on a word
        # ("tú, tú, tú...") at each fallback temperature cost seconds a clip.
        tokens = sum(spoken_characters(texts.get(line, "")) for line, *_ in chunk)
        recognition = recogniser.recognize(
            np.concatenate(pieces), language, lambda _: None,
            max_new_tokens=min(MAX_TOKENS, 16 + tokens // 2),
        )  # fmt: skip
        words: dict[str, list[str]] = {line: [] for line, *_ in spans}
        for word in recognition.words:
            middle = (word.start_s + word.end_s) / 2
            for line, start, end in spans:
                if start - EARLY_S <= middle <= end + LATE_S:
                    words[line].append(word.text.strip())
                    break
        return {line: " ".join(w for w in found if w) for line, found in words.items()}

    heard: dict[str, str] = {}
    for result in in_order(hear, [c for c in chunks if c], workers):
        heard |= result
        on_progress(len(heard))
    return heard


def _chars_per_second(segments: list[Segment], target: str) -> float | None:
    """The dub's median rate: characters of text a second of speech at the engine's own
    rate, over its lines of 12 characters or more (a few broken takes do not move it)."""
    rates = []
    for segment in segments:
        fit, clip = segment.fits.get(target), segment.clips.get(target)
        translation = segment.translations.get(target)
        if fit is None or clip is None or translation is None or not fit.path:
            continue
        characters = spoken_characters(translation.text)
        natural = (fit.end_s - fit.start_s) * fit.speed * clip.pace
        if characters >= 12 and natural > 0:
            rates.append(characters / natural)
    return statistics.median(rates) if len(rates) >= MIN_RATE_LINES else None


def _judge(
    segment: Segment, target: str, heard: str, rate: float | None, options: CheckOptions,
    references: dict[str, Any], project: Project,
) -> TakeCheck:  # fmt: skip
    fit, clip = segment.fits[target], segment.clips[target]
    text = segment.translations[target].text
    if not fit.path:  # an empty line (emptied by hand): nothing to say, nothing to hear
        return TakeCheck(clip.take, clip.path, 0.0, clip.tts_speed, "", 0.0, 1.0, None, True)
    words = word_count(text, target)
    short = words <= SHORT_WORDS
    cer = round(character_error_rate(text, heard, target), 3)
    limit = cer_limit(clip.engine, target, options.tolerance)
    if short:
        limit = max(limit, SHORT_LIMIT)
    natural = (fit.end_s - fit.start_s) * fit.speed * clip.pace
    ratio = 1.0
    if rate:
        ratio = round(natural / max(spoken_characters(text) / rate, MIN_EXPECTED_S), 3)
    low, high = SHORT_LENGTHS if short else length_bounds(clip.engine, target)
    problems = []
    if cer > limit:
        problems.append(f"heard {heard or 'nothing'!r} (CER {cer:.2f} over {limit:.2f})")
    if ratio < low:
        problems.append(f"{ratio:.2f} of the length its text needs: cut off?")
    elif ratio > high:
        problems.append(f"{ratio:.2f} times the length its text needs: babble?")
    score = None
    reference = references.get(segment.speaker)
    if reference is not None:
        from octavia_cli.engines import similarity

        score = round(similarity.similarity(similarity.embed(project.path(fit.path)),
                                            reference), 3)  # fmt: skip
        if score < options.min_similarity:
            problems.append(f"sounds unlike its voice (similarity {score:.2f})")
    return TakeCheck(clip.take, clip.path, clip.duration_s, clip.tts_speed, heard, cer, ratio,
                     score, not problems, problems)  # fmt: skip


def _reference_embeddings(project: Project, target: str, options: CheckOptions) -> dict:
    """Speaker -> embedding of their voice's reference, for the similarity check (XTTS
    voices only, with resemblyzer installed and ``tts.min_similarity`` above 0)."""
    from octavia_cli.engines import similarity
    from octavia_cli.models import voices as library

    record = project.stages.get(f"synthesize:{target}")
    if (
        record is None or record.info.engine != "xtts" or options.min_similarity <= 0
        or not similarity.available()
    ):  # fmt: skip
        return {}
    groups = project.speaker_groups()
    embeddings = {}
    speakers = {s.speaker for s in project.require_transcript().segments}
    for speaker in speakers:
        voice = record.info.voices.get(groups.get(speaker, speaker), "")
        if voice.endswith(".pt"):  # cloned from the source: its reference is beside it
            path = Path(voice) if Path(voice).is_absolute() else project.path(voice)
            reference = path.with_suffix(".reference.wav")
        elif voice:  # a stored voice: its reference is sealed; heard here, kept nowhere
            located = str(project.path(voice)) if "/" in voice else voice  # relative to it
            stored, name = library.library_of(located)
            audio = stored.reference_audio(name)
            if audio is None:
                continue
            with tempfile.TemporaryDirectory(prefix="octavia-ref-") as scratch:
                reference = Path(scratch) / "reference.wav"
                reference.write_bytes(audio)
                embeddings[speaker] = similarity.embed(reference)
            continue
        else:
            continue
        if reference.exists():
            cache = reference.with_name(reference.stem + ".embedding.npy")
            embeddings[speaker] = similarity.reference_embedding(reference, cache)
    return embeddings


# -- what it found -------------------------------------------------------------------------


def _info(
    segments: list[Segment], target: str, heard: int, recogniser: str, options: CheckOptions
) -> CheckInfo:
    records = [s.checks[target] for s in segments]
    engines = {s.clips[target].engine for s in segments if s.clips[target].path}
    return CheckInfo(
        checked=heard,
        lines=len(records),
        retaken=sum(len(r.takes) > 1 for r in records),
        flagged=[s.id for s in segments if s.checks[target].flagged],
        recogniser=recogniser,
        limits={e: cer_limit(e, target, options.tolerance) for e in sorted(engines)},
    )


def line_summary(record: LineCheck | None) -> dict[str, Any] | None:
    """A line's check as the timing report and ``--json`` give it."""
    if record is None or record.kept is None:
        return None
    kept = record.kept
    return {
        "cer": kept.cer,
        "heard": kept.heard,
        "duration_ratio": kept.duration_ratio,
        "similarity": kept.similarity,
        "takes": len(record.takes),
        "take": kept.take,
        "flagged": record.flagged,
        "problems": kept.problems,
        "cer_by_take": [t.cer for t in record.takes],
    }


def annotate_timing_report(project: Project, target: str) -> None:
    """Add each line's check to the fit stage's timing report, and the counts to its
    totals (``checked``, ``retaken``, ``flagged``, ``flagged_lines``)."""
    path = project.path(timing_report_path(target))
    if not path.exists():
        return
    report = json.loads(path.read_text(encoding="utf-8"))
    by_id = {s.id: s for s in project.require_transcript().segments}
    checked = retaken = 0
    flagged = []
    for line in report["lines"]:
        segment = by_id.get(line["id"])
        summary = line_summary(segment.checks.get(target)) if segment else None
        line["check"] = summary
        if summary is None:
            continue
        checked += 1
        retaken += summary["takes"] > 1
        if summary["flagged"]:
            flagged.append(line["id"])
    report["totals"] |= {"checked": checked, "retaken": retaken, "flagged": len(flagged),
                         "flagged_lines": flagged}  # fmt: skip
    atomic_write_bytes(path, json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8"))
