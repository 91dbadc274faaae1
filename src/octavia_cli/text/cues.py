"""Subtitle cues from a transcript, by the rules subtitlers work to.

Cues are built from word timestamps (source language) or from each line's translation
spread over the line's time span (target language). Every rule is a field of
:class:`SubtitleOptions`; the defaults are the common broadcast/streaming ones: 42
characters a line (16 for Chinese and Japanese, which are counted in characters), 2 lines a
cue, at most 17 characters a second, cues between 0.83 s and 7 s, at least two frames
(83 ms) between cues, and never a cue across a long silence. Lines break at punctuation or
phrase boundaries rather than after an article or preposition.

Files are written by pysubs2; only the plain-text format (one cue per paragraph) is ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from octavia_cli.project.records import Segment, Word

CJK_LANGUAGES = frozenset({"zh", "ja"})
CLAUSE_END = (",", ";", ":", "—", "–", "、", "，", "；", "：")
SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
# Words a line should not end with (a break right after them splits a phrase).
WEAK_LINE_ENDS = frozenset(
    "a an the of to in on at for from with by and or but as that this my your his her our "
    "their its el la los las un una unos unas de del al a en con por para y o que le les "
    "du des et ou au aux der die das ein eine und oder zu mit von im am il lo gli i e di da "
    "o os as um uma do da dos das em no na com".split()
)


class SubtitleFormat(StrEnum):
    SRT = "srt"
    VTT = "vtt"
    ASS = "ass"
    JSON = "json"
    TXT = "txt"


class SubtitleMode(StrEnum):
    """How subtitles are delivered."""

    FILE = "file"  # a subtitle file
    EMBED = "embed"  # a copy of the video with soft subtitle tracks
    BURN_IN = "burn-in"  # a copy of the video with the subtitles in the picture


@dataclass(frozen=True)
class SubtitleOptions:
    max_line_chars: int = 42  # characters per line (spaces and punctuation count)
    cjk_max_line_chars: int = 16  # the same for Chinese and Japanese
    max_lines: int = 2  # lines per cue
    max_cps: float = 17.0  # reading speed, characters per second
    min_duration_s: float = 0.83
    max_duration_s: float = 7.0
    min_gap_s: float = 0.083  # two frames at 24 fps
    max_pause_s: float = 1.0  # a silence longer than this always ends a cue
    max_lead_s: float = 0.25  # how much earlier than its speech a cue may appear...
    max_delay_s: float = 0.5  # ...or how much later, when speech outruns reading speed


@dataclass
class Cue:
    start_s: float
    end_s: float
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def chars(self) -> int:
        return sum(len(line) for line in self.lines)

    @property
    def cps(self) -> float:
        return self.chars / max(self.end_s - self.start_s, 1e-6)


@dataclass
class _Token:
    text: str
    start_s: float
    end_s: float
    hard_break_before: bool = False  # a new dubbing line starts here


def _joiner(cjk: bool) -> str:
    return "" if cjk else " "


def _line_limit(options: SubtitleOptions, cjk: bool) -> int:
    return options.cjk_max_line_chars if cjk else options.max_line_chars


def wrap(tokens: list[str], max_chars: int, max_lines: int, cjk: bool = False) -> list[str] | None:
    """Break ``tokens`` into at most ``max_lines`` lines of at most ``max_chars`` characters,
    choosing the break that keeps phrases together and lines balanced; None if impossible."""
    joiner = _joiner(cjk)
    whole = joiner.join(tokens)
    if len(whole) <= max_chars:
        return [whole]
    if max_lines < 2 or len(tokens) < 2:
        return None
    best: tuple[float, list[str]] | None = None
    for cut in range(1, len(tokens)):
        first = joiner.join(tokens[:cut])
        if len(first) > max_chars:
            break
        rest = wrap(tokens[cut:], max_chars, max_lines - 1, cjk)
        if rest is None:
            continue
        last_word = tokens[cut - 1].strip().lower().strip("\"'«»“”")
        cost = abs(len(first) - len(rest[0])) / max_chars  # balance
        if len(first) > len(rest[0]):
            cost += 0.1  # prefer a bottom-heavy pyramid
        if tokens[cut - 1].endswith(SENTENCE_END):
            cost -= 1.0
        elif tokens[cut - 1].endswith(CLAUSE_END):
            cost -= 0.6
        if last_word in WEAK_LINE_ENDS:
            cost += 0.8
        if best is None or cost < best[0]:
            best = (cost, [first, *rest])
    return best[1] if best else None


def _fits(tokens: list[str], options: SubtitleOptions, cjk: bool) -> bool:
    return wrap(tokens, _line_limit(options, cjk), options.max_lines, cjk) is not None


def _pack(tokens: list[_Token], options: SubtitleOptions, cjk: bool) -> list[list[_Token]]:
    """Group tokens into cues: a cue ends at a new dubbing line, a long pause, or when the
    next word would not fit in its lines or its time; an overfull cue is cut at its last
    clause boundary when one lies in its second half."""
    groups: list[list[_Token]] = []
    current: list[_Token] = []
    for token in tokens:
        if current:
            pause = token.start_s - current[-1].end_s
            candidate = [t.text for t in [*current, token]]
            overfull = (
                not _fits(candidate, options, cjk)
                or token.end_s - current[0].start_s > options.max_duration_s
            )
            if token.hard_break_before or pause > options.max_pause_s:
                groups.append(current)
                current = []
            elif overfull:
                cut = _best_cut(current)
                groups.append(current[:cut])
                current = current[cut:]
        current.append(token)
    if current:
        groups.append(current)
    return groups


def _best_cut(tokens: list[_Token]) -> int:
    """Where to end an overfull cue: in its second half, after a sentence or clause end if
    there is one, never right after a weak word such as an article or a conjunction."""
    best_index, best_cost = len(tokens), math.inf
    for index in range(max(1, len(tokens) // 2), len(tokens) + 1):
        word = tokens[index - 1].text
        cost = (len(tokens) - index) * 0.05  # prefer fuller cues
        if word.endswith(SENTENCE_END):
            cost -= 1.0
        elif word.endswith(CLAUSE_END):
            cost -= 0.6
        if word.strip().lower().strip("\"'«»“”") in WEAK_LINE_ENDS:
            cost += 0.8
        if cost < best_cost:
            best_index, best_cost = index, cost
    return best_index


def _time_cues(groups: list[list[_Token]], options: SubtitleOptions, cjk: bool) -> list[Cue]:
    """Time each cue so it can be read: at least ``min_duration_s`` and ``chars / max_cps``
    on screen, two frames apart. A cue starts with its speech where it can; when speech runs
    faster than the reading speed, cues may appear up to ``max_lead_s`` early, start up to
    ``max_delay_s`` late, and stay on into the following pause, planned over the whole run of
    cues (a backward pass finds how late each may start so those after it still fit)."""
    limit = _line_limit(options, cjk)
    cues: list[Cue] = []
    for group in groups:
        lines = wrap([t.text for t in group], limit, options.max_lines, cjk)
        if lines is None:  # one word longer than a line: let it stand alone
            lines = [_joiner(cjk).join(t.text for t in group)]
        cues.append(Cue(group[0].start_s, group[-1].end_s, lines))
    gap = options.min_gap_s
    # (half a millisecond more, so rounding to milliseconds cannot break the rule)
    needed = [
        min(max(options.min_duration_s, cue.chars / options.max_cps), options.max_duration_s)
        + 0.0005
        for cue in cues
    ]
    latest_start = [math.inf] * (len(cues) + 1)
    for index in range(len(cues) - 1, -1, -1):
        latest_start[index] = min(
            cues[index].start_s + options.max_delay_s,
            latest_start[index + 1] - gap - needed[index],
        )
    previous_end = -math.inf
    for index, cue in enumerate(cues):
        speech_start, speech_end = cue.start_s, cue.end_s
        start = min(speech_start, latest_start[index])
        start = max(start, speech_start - options.max_lead_s, previous_end + gap, 0.0)
        end = max(start + needed[index], min(speech_end, start + options.max_duration_s))
        end = min(end, start + options.max_duration_s, latest_start[index + 1] - gap)
        if index + 1 < len(cues):  # never over the next cue's speech by more than allowed
            end = min(end, cues[index + 1].start_s + options.max_delay_s - gap)
        # Where speech outruns reading by more than the lead and delay allow, reading speed
        # wins: the cue keeps its time, and the next starts later than its delay allows.
        end = max(end, start + needed[index])
        cue.start_s, cue.end_s = round(start, 3), round(end, 3)
        previous_end = cue.end_s
    return cues


def source_cues(
    segments: list[Segment], language: str, options: SubtitleOptions | None = None
) -> list[Cue]:
    """Cues in the spoken language, from the words' own timestamps."""
    options = options or SubtitleOptions()
    cjk = language in CJK_LANGUAGES
    tokens: list[_Token] = []
    for segment in sorted(segments, key=lambda s: s.start_s):
        words = segment.words or [Word(segment.text, segment.start_s, segment.end_s)]
        for index, word in enumerate(words):
            text = word.text.strip()
            if text:
                # Whisper's word times run early and late at the edges; the line's edges
                # were snapped to the speech the VAD heard, so they bound its words.
                start = min(max(word.start_s, segment.start_s), segment.end_s)
                end = max(min(word.end_s, segment.end_s), start)
                tokens.append(_Token(text, start, end, index == 0))
    return _time_cues(_pack(tokens, options, cjk), options, cjk)


def translated_cues(
    segments: list[Segment], language: str, options: SubtitleOptions | None = None
) -> list[Cue]:
    """Cues in a target language: each line's translation over the line's span, split where
    it does not fit one cue, with time shared out by characters."""
    options = options or SubtitleOptions()
    cjk = language in CJK_LANGUAGES
    tokens: list[_Token] = []
    for segment in sorted(segments, key=lambda s: s.start_s):
        translation = segment.translations.get(language)
        if translation is None or not translation.text.strip():
            continue
        words = list(translation.text.replace(" ", "")) if cjk else translation.text.split()
        total = sum(len(w) + (0 if cjk else 1) for w in words)
        span = segment.end_s - segment.start_s
        position = 0
        for index, word in enumerate(words):
            start = segment.start_s + span * position / total
            position += len(word) + (0 if cjk else 1)
            end = segment.start_s + span * position / total
            tokens.append(_Token(word, start, end, index == 0))
    return _time_cues(_pack(tokens, options, cjk), options, cjk)


def to_ssa_file(cues: list[Cue], video_size: tuple[int, int] | None = None):  # -> SSAFile
    """The cues as a pysubs2 file; with ``video_size`` its default style is scaled to the
    picture (for burning in): a sans-serif at about 5.5% of the height with an outline."""
    import pysubs2

    subs = pysubs2.SSAFile()
    if video_size and all(video_size):
        width, height = video_size
        subs.info["PlayResX"], subs.info["PlayResY"] = str(width), str(height)
        subs.info["WrapStyle"] = "2"  # our line breaks only
        subs.styles["Default"] = pysubs2.SSAStyle(
            fontname="DejaVu Sans",
            fontsize=max(10, round(height * 0.055)),
            outline=max(1.0, round(height / 360, 1)),
            shadow=0.0,
            marginl=round(width * 0.05),
            marginr=round(width * 0.05),
            marginv=round(height * 0.05),
            alignment=pysubs2.Alignment.BOTTOM_CENTER,
        )
    for cue in cues:
        subs.append(
            pysubs2.SSAEvent(
                start=round(cue.start_s * 1000),
                end=round(cue.end_s * 1000),
                text=r"\N".join(cue.lines),
            )
        )
    return subs


def render(cues: list[Cue], fmt: SubtitleFormat, video_size: tuple[int, int] | None = None) -> str:
    """The subtitle file's text in ``fmt``."""
    if fmt is SubtitleFormat.TXT:
        return "".join(cue.text + "\n\n" for cue in cues)
    return to_ssa_file(cues, video_size).to_string(fmt.value)


def format_for(path: Path) -> SubtitleFormat | None:
    try:
        return SubtitleFormat(path.suffix.lower().lstrip("."))
    except ValueError:
        return None
