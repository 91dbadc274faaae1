"""Who speaks each line: speaker turns from the diarization engine, each word given to the
speaker whose turn covers it most, lines split where the speaker changes.

The speakers are listed in the project (``speakers``: id, label, seconds of speech, the
spans their voice is cloned from, their median pitch, an optional voice). A person may edit
them: a new ``label`` renames a speaker, the same label on two speakers merges them (one
voice for both), ``voice`` picks a stored voice, ``reference`` other spans to clone from.
This stage does not run again for such edits (its inputs are the transcript and the engine),
and the later stages redo only the lines whose voice changed.

A split line keeps its id for its first part; the others get ``b``, ``c``... after it, so
clips of untouched lines keep their names.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import string
import time

import numpy as np

from octavia_cli.engines.diarization.base import DiarizationEngine, SpeakerCount, Turn
from octavia_cli.files import atomic_write_bytes
from octavia_cli.media.pitch import yin
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import speech_16k
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import DiarizeInfo, Segment, Speaker, Word, stable_hash
from octavia_cli.text.segmentation import join_words

logger = logging.getLogger(__name__)

STAGE = "diarize"
TURNS_JSON = "speakers/turns.json"
REFERENCE_S = 12.0  # speech gathered per speaker for cloning their voice
MIN_REFERENCE_PIECE_S = 1.0
EDGE_MARGIN_S = 0.15  # trimmed off each reference span (turn edges are approximate)
# A line is split between speakers only where another speaker really talks in it: a run of
# their words this long, or one set off by pauses at least this long.
MIN_SPLIT_S = 1.0
MIN_SPLIT_PAUSE_S = 0.3


def diarize(
    project: Project,
    engine: DiarizationEngine | None,
    count: SpeakerCount,
    hook: ProgressHook,
) -> list[Speaker]:

    reporter = StageReporter(hook, STAGE)
    transcript = project.require_transcript()
    inputs = stable_hash(
        project.stages["transcribe"].inputs_hash,
        engine.describe() if engine is not None else "none",
        dataclasses.asdict(count),
    )
    if project.is_current(STAGE, inputs) and project.speakers:
        reporter.skipped()
        return project.speakers
    began = time.monotonic()
    reporter.started(total=transcript.duration_s or None, message="finding speakers")
    if engine is None:
        turns = [Turn(s.start_s, s.end_s, "S1") for s in transcript.segments]
    else:
        engine.check()
        turns = engine.diarize(
            speech_16k(project), count, lambda done, total: reporter.advance(done, total)
        )
        turns = rename_by_appearance(turns)
    atomic_write_bytes(
        project.path(TURNS_JSON),
        json.dumps([dataclasses.asdict(t) for t in turns], indent=1).encode("utf-8"),
    )
    if turns:
        transcript.segments = split_by_speaker(transcript.segments, turns)
    previous = {s.id: s for s in project.speakers}
    speakers = describe_speakers(project, transcript.segments, turns)
    for speaker in speakers:  # keep a person's edits of a speaker that is still there
        if speaker.id in previous:
            speaker.label = previous[speaker.id].label
            speaker.voice = previous[speaker.id].voice
    project.speakers = speakers
    project.mark_done(
        STAGE,
        inputs,
        time.monotonic() - began,
        DiarizeInfo(
            engine=engine.describe() if engine is not None else "none",
            speakers=len(speakers),
            lines=len(transcript.segments),
        ),
    )
    reporter.done(f"{len(speakers)} speaker{'s' if len(speakers) != 1 else ''}")
    return speakers


def rename_by_appearance(turns: list[Turn]) -> list[Turn]:
    """Labels become S1, S2... in order of first speech; turns sorted by start."""
    ordered = sorted(turns, key=lambda t: (t.start_s, t.end_s))
    names: dict[str, str] = {}
    for turn in ordered:
        names.setdefault(turn.speaker, f"S{len(names) + 1}")
    return [Turn(t.start_s, t.end_s, names[t.speaker]) for t in ordered]


def speaker_at(start_s: float, end_s: float, turns: list[Turn]) -> str | None:
    """The speaker whose turns overlap ``[start_s, end_s]`` most; the nearest turn's speaker
    within a second when none overlaps."""
    overlap: dict[str, float] = {}
    for turn in turns:
        shared = min(end_s, turn.end_s) - max(start_s, turn.start_s)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=lambda s: overlap[s])
    middle = (start_s + end_s) / 2
    nearest = min(turns, key=lambda t: max(t.start_s - middle, middle - t.end_s, 0.0), default=None)
    if nearest is not None and max(nearest.start_s - middle, middle - nearest.end_s) <= 1.0:
        return nearest.speaker
    return None


def split_by_speaker(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Each line's words given to speakers (a word to the speaker whose turns cover it
    most: where two talk at once, the line goes to the one who holds it longest, and the
    other's words stay in the original audio, ducked under the dub); a line is split where
    another speaker really talks in it (see :func:`_steady`), not where a boundary flickers."""
    result: list[Segment] = []
    for segment in segments:
        if not segment.words:
            segment.speaker = speaker_at(segment.start_s, segment.end_s, turns) or segment.speaker
            result.append(segment)
            continue
        labels: list[str] = []
        for word in segment.words:
            found = speaker_at(word.start_s, word.end_s, turns)
            labels.append(found or (labels[-1] if labels else ""))
        fallback = next((label for label in labels if label), segment.speaker)
        labels = [label or fallback for label in labels]
        pieces: list[tuple[str, list[Word]]] = []
        for word, label in zip(segment.words, labels, strict=True):
            if pieces and pieces[-1][0] == label:
                pieces[-1][1].append(word)
            else:
                pieces.append((label, [word]))
        pieces = _steady(pieces)
        if len(pieces) == 1:
            segment.speaker = pieces[0][0]
            result.append(segment)
            continue
        for index, (label, words) in enumerate(pieces):
            suffix = "" if index == 0 else string.ascii_lowercase[min(index, 25)]
            result.append(
                Segment(
                    id=f"{segment.id}{suffix}",
                    start_s=segment.start_s if index == 0 else words[0].start_s,
                    end_s=segment.end_s if index == len(pieces) - 1 else words[-1].end_s,
                    text=join_words(words),
                    words=words,
                    speaker=label,
                )
            )
    return result


def _steady(pieces: list[tuple[str, list[Word]]]) -> list[tuple[str, list[Word]]]:
    """A line's runs of words by speaker, without flicker: a run is another speaker's only
    if it lasts ``MIN_SPLIT_S`` or is set off from its neighbours by pauses of at least
    ``MIN_SPLIT_PAUSE_S``; otherwise a diarization boundary fell inside a word or a short
    gap, and the run joins the neighbour it is closest to (the sentence stays whole)."""

    def pause(left: list[Word], right: list[Word]) -> float:
        return right[0].start_s - left[-1].end_s

    pieces = [(label, list(words)) for label, words in pieces]
    while len(pieces) > 1:
        weakest = None
        for index, (_, words) in enumerate(pieces):
            length = words[-1].end_s - words[0].start_s
            pauses = [pause(pieces[index - 1][1], words)] if index else []
            pauses += [pause(words, pieces[index + 1][1])] if index + 1 < len(pieces) else []
            flickers = length < MIN_SPLIT_S and min(pauses) < MIN_SPLIT_PAUSE_S
            if flickers and (weakest is None or length < weakest[1]):
                weakest = (index, length)
        if weakest is None:
            break
        index = weakest[0]
        words = pieces[index][1]
        before = pause(pieces[index - 1][1], words) if index else float("inf")
        after = pause(words, pieces[index + 1][1]) if index + 1 < len(pieces) else float("inf")
        into = index - 1 if before <= after else index + 1
        label = pieces[into][0]
        joined = pieces[into][1] + words if into < index else words + pieces[into][1]
        pieces[min(index, into)] = (label, joined)
        del pieces[max(index, into)]
        merged: list[tuple[str, list[Word]]] = []  # neighbours of one speaker join
        for label, run in pieces:
            if merged and merged[-1][0] == label:
                merged[-1][1].extend(run)
            else:
                merged.append((label, run))
        pieces = merged
    return pieces


def describe_speakers(
    project: Project, segments: list[Segment], turns: list[Turn]
) -> list[Speaker]:
    """Each speaker with their speech time, reference spans and pitch."""
    ids = list(dict.fromkeys(s.speaker for s in segments))
    speakers = []
    for speaker_id in ids:
        own = [t for t in turns if t.speaker == speaker_id]
        others = [t for t in turns if t.speaker != speaker_id]
        speech = sum(t.end_s - t.start_s for t in own)
        speakers.append(
            Speaker(
                speaker_id,
                speech_s=round(speech, 2),
                reference=reference_spans(own, others),
            )
        )
    _measure_pitch(project, speakers)
    return speakers


def reference_spans(own: list[Turn], others: list[Turn]) -> list[list[float]]:
    """A speaker's longest stretches of speech with nobody else talking, trimmed at the
    edges, up to ``REFERENCE_S`` in all, in time order."""
    spans = []
    for turn in own:
        start, end = turn.start_s + EDGE_MARGIN_S, turn.end_s - EDGE_MARGIN_S
        pieces = [(start, end)]
        for other in others:  # cut out overlapping speech
            pieces = [
                part
                for a, b in pieces
                for part in ((a, min(b, other.start_s)), (max(a, other.end_s), b))
                if part[1] - part[0] > 0
            ]
        spans += [p for p in pieces if p[1] - p[0] >= MIN_REFERENCE_PIECE_S]
    chosen, total = [], 0.0
    for start, end in sorted(spans, key=lambda p: p[0] - p[1]):  # longest first
        if REFERENCE_S - total < MIN_REFERENCE_PIECE_S:
            break
        end = min(end, start + REFERENCE_S - total)
        chosen.append([round(start, 3), round(end, 3)])
        total += end - start
    return sorted(chosen)


def _measure_pitch(project: Project, speakers: list[Speaker]) -> None:
    """Median fundamental frequency of each speaker's reference speech (YIN), used to give
    each speaker a fitting voice offline."""
    import soundfile

    path = str(speech_16k(project))
    rate = soundfile.info(path).samplerate
    for speaker in speakers:
        pieces = [
            soundfile.read(path, start=round(a * rate), stop=round(b * rate), dtype="float32",
                           always_2d=True)[0].mean(axis=1)
            for a, b in speaker.reference
        ]  # fmt: skip
        pieces = [p for p in pieces if len(p) > rate // 4]
        if not pieces:
            continue
        f0 = yin(np.concatenate(pieces), fmin=60, fmax=400, sample_rate=rate)
        voiced = f0[(f0 > 61) & (f0 < 399)]
        if len(voiced):
            speaker.pitch_hz = round(float(np.median(voiced)), 1)
