"""Turn recognised words into dubbing lines.

Whisper often returns one long segment for several sentences. A dubbed line must start
where the speaker starts, so we cut at sentence ends and at pauses longer than
``pause_s`` (from the word timestamps), and cap very long lines at a pause or word boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from octavia_cli.project.records import Segment, Word

SENTENCE_END = (".", "?", "!", "…", "。", "？", "！", "؟", "।")


@dataclass(frozen=True)
class LineOptions:
    pause_s: float = 0.3  # a silence longer than this between words starts a new line
    max_line_s: float = 12.0  # lines longer than this are cut at their longest inner pause
    # A phrase shorter than this ("Yes," "Good morning,") is not a line of its own when the
    # sentence goes on after a pause shorter than ``join_pause_s``: too short to dub alone.
    # A longer pause is heard as one, and the dub must keep it: the line is split there
    # even after a short phrase (its translation is shared out over the parts).
    min_line_s: float = 1.0
    join_pause_s: float = 0.6


def split_into_lines(words: list[Word], options: LineOptions | None = None) -> list[Segment]:
    """Group ``words`` (in time order) into dubbing lines with ids ``s0001``, ``s0002``..."""
    options = options or LineOptions()
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if not word.text.strip():
            continue
        if current:
            previous = current[-1]
            ends_sentence = previous.text.strip().endswith(SENTENCE_END)
            gap = word.start_s - previous.end_s
            paused = gap > options.pause_s
            fragment = (
                previous.end_s - current[0].start_s < options.min_line_s
                and gap < options.join_pause_s
            )
            if ends_sentence or (paused and not fragment):
                groups.append(current)
                current = []
        current.append(word)
    if current:
        groups.append(current)
    lines: list[list[Word]] = []
    for group in groups:
        lines.extend(_cap_length(group, options.max_line_s))
    return [
        Segment(
            id=f"s{index:04d}",
            start_s=round(line[0].start_s, 3),
            end_s=round(line[-1].end_s, 3),
            text=join_words(line),
            words=line,
        )
        for index, line in enumerate(lines, start=1)
    ]


def _cap_length(words: list[Word], max_line_s: float) -> list[list[Word]]:
    if len(words) < 2 or words[-1].end_s - words[0].start_s <= max_line_s:
        return [words]

    # Cut at the longest pause, preferring a clause boundary (comma, semicolon, colon).
    def score(i: int) -> float:
        gap = words[i + 1].start_s - words[i].end_s
        clause = 0.5 if words[i].text.strip().endswith((",", ";", ":")) else 0.0
        return gap + clause

    cut = max(range(len(words) - 1), key=score)
    return _cap_length(words[: cut + 1], max_line_s) + _cap_length(words[cut + 1 :], max_line_s)


def join_words(words: list[Word]) -> str:
    """Whisper words carry their own leading spaces; join and tidy them."""
    return " ".join("".join(w.text for w in words).split())
