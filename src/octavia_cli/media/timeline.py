"""Where the picture is slowed down (``--allow-video-stretch``), and how source times map
onto the output's.

A stretch slows the span ``[start_s, end_s)`` of the source by ``factor`` (1.2: the span
plays 20% longer); everything after it moves later by the time added. The fit stage makes
stretches only for lines that fit no other way; the mix stretches the background and the mux
the picture and the original audio tracks by the same spans, so sound and picture stay in
sync after them. The ffmpeg graphs here cut the stream at the spans' edges, slow the
stretched pieces (``setpts`` for the picture, ``atempo`` for sound, pitch kept) and join the
pieces again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stretch:
    start_s: float
    end_s: float
    factor: float

    @property
    def added_s(self) -> float:
        return (self.end_s - self.start_s) * (self.factor - 1.0)


class TimeMap:
    def __init__(self, stretches: list[Stretch] | None = None) -> None:
        self.stretches: list[Stretch] = sorted(stretches or [], key=lambda s: s.start_s)

    def add(self, stretch: Stretch) -> None:
        self.stretches = sorted([*self.stretches, stretch], key=lambda s: s.start_s)

    def to_output(self, t: float) -> float:
        """The output time of source time ``t``."""
        shifted = t
        for stretch in self.stretches:
            if t >= stretch.end_s:
                shifted += stretch.added_s
            elif t > stretch.start_s:
                shifted += (t - stretch.start_s) * (stretch.factor - 1.0)
        return shifted

    @property
    def added_s(self) -> float:
        return sum(s.added_s for s in self.stretches)

    def pieces(self, duration_s: float) -> list[tuple[float, float, float]]:
        """``(start_s, end_s, factor)`` pieces covering ``[0, duration_s]`` in order."""
        result, cursor = [], 0.0
        for stretch in self.stretches:
            if stretch.start_s > cursor:
                result.append((cursor, stretch.start_s, 1.0))
            result.append((stretch.start_s, stretch.end_s, stretch.factor))
            cursor = stretch.end_s
        if cursor < duration_s:
            result.append((cursor, duration_s, 1.0))
        return result

    def to_list(self) -> list[list[float]]:
        return [[s.start_s, s.end_s, round(s.factor, 4)] for s in self.stretches]

    @classmethod
    def from_list(cls, items: list[list[float]] | None) -> TimeMap:
        return cls([Stretch(float(a), float(b), float(f)) for a, b, f in items or []])


def audio_graph(source: str, output: str, pieces: list[tuple[float, float, float]]) -> str:
    """An ffmpeg filtergraph from the audio pad ``source`` to ``output`` with each piece
    slowed by its factor (``atempo``, pitch kept)."""
    labels = [f"{output}p{i}" for i in range(len(pieces))]
    parts = [f"[{source}]asplit={len(pieces)}" + "".join(f"[{x}i]" for x in labels)]
    for label, (start, end, factor) in zip(labels, pieces, strict=True):
        tempo = f",atempo={1 / factor:.6f}" if abs(factor - 1) > 1e-6 else ""
        parts.append(
            f"[{label}i]atrim=start={start:.6f}:end={end:.6f},asetpts=PTS-STARTPTS{tempo}[{label}]"
        )
    joined = "".join(f"[{x}]" for x in labels)
    parts.append(f"{joined}concat=n={len(pieces)}:v=0:a=1[{output}]")
    return ";".join(parts)


def video_graph(
    source: str, output: str, pieces: list[tuple[float, float, float]], frame_rate: str
) -> str:
    """The same for the picture: each piece's timestamps spread by its factor, then a constant
    frame rate again (frames repeated where the picture is slowed)."""
    labels = [f"{output}p{i}" for i in range(len(pieces))]
    parts = [f"[{source}]split={len(pieces)}" + "".join(f"[{x}i]" for x in labels)]
    for label, (start, end, factor) in zip(labels, pieces, strict=True):
        parts.append(
            f"[{label}i]trim=start={start:.6f}:end={end:.6f},"
            f"setpts=(PTS-STARTPTS)*{factor:.6f}[{label}]"
        )
    joined = "".join(f"[{x}]" for x in labels)
    parts.append(f"{joined}concat=n={len(pieces)}:v=1:a=0,fps={frame_rate}[{output}]")
    return ";".join(parts)
