"""Who speaks when, on real speech: the offline diarizer on every shared dialogue and on
their concatenation, against the ground truth.

    python bench/speakers_bench.py [--data ../shared/data/dialogues] [--only NAME ...]
                                   [--no-concat] [--speakers-given]

For each recording: the diarization error rate with a collar of 0 and of 0.25 s, and its
parts (speaker confusion, missed speech, false alarm, as shares of the reference speech),
the speakers found against the true count, and the diarizer's time and real-time factor.
The concatenation of all the dialogues (one after another, the ground truth offset) has
as many people as distinct LibriSpeech speakers: the same speaker in two dialogues is one
person, as a long episode with the same guest would be.

The speaker count is estimated (no --speakers) unless --speakers-given. The figures are
measured on this machine's CPU; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "dialogues"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", nargs="*", help="dialogue names (default: all)")
    parser.add_argument("--no-concat", action="store_true")
    parser.add_argument("--speakers-given", action="store_true")
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in args.data.glob("*.rttm"))
    if not names:
        print(f"no dialogues (NAME.flac + NAME.rttm) in {args.data}", file=sys.stderr)
        return 1
    rows = [measure(name, args.data / f"{name}.flac", read_rttm(args.data / f"{name}.rttm"),
                    args.speakers_given) for name in names]  # fmt: skip
    if not args.no_concat and len(names) > 1:
        with tempfile.TemporaryDirectory(prefix="octavia-speakers-") as scratch:
            audio, turns = concatenate(args.data, names, Path(scratch) / "all.flac")
            rows.append(measure("concatenation", audio, turns, args.speakers_given))
    print_table(rows)
    return 0


def read_rttm(path: Path) -> list[tuple[float, float, str]]:
    turns = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append((start, start + duration, fields[7]))
    return turns


def concatenate(
    folder: Path, names: list[str], destination: Path
) -> tuple[Path, list[tuple[float, float, str]]]:
    """The dialogues one after another (a second of silence between), and their turns on
    the concatenation's timeline."""
    pieces, turns, offset = [], [], 0.0
    for name in names:
        audio, rate = soundfile.read(str(folder / f"{name}.flac"), dtype="float32")
        assert rate == 16_000, f"{name}: {rate} Hz"
        turns += [(a + offset, b + offset, s) for a, b, s in read_rttm(folder / f"{name}.rttm")]
        pieces += [audio, np.zeros(rate, np.float32)]
        offset += len(audio) / rate + 1.0
    soundfile.write(str(destination), np.concatenate(pieces), 16_000)
    return destination, turns


def measure(name: str, audio: Path, reference: list, speakers_given: bool) -> dict:
    from octavia_cli.engines.diarization.base import SpeakerCount
    from octavia_cli.engines.diarization.offline import OfflineDiarizer

    true_count = len({s for *_, s in reference})
    count = SpeakerCount(exactly=true_count) if speakers_given else SpeakerCount()
    duration = soundfile.info(str(audio)).duration
    began = time.perf_counter()
    turns = OfflineDiarizer().diarize(audio, count, lambda done, total: None)
    seconds = time.perf_counter() - began
    found = [(t.start_s, t.end_s, t.speaker) for t in turns]
    return {
        "name": name,
        "minutes": duration / 60,
        "true": true_count,
        "found": len({s for *_, s in found}),
        "der0": der(reference, found, 0.0),
        "der25": der(reference, found, 0.25),
        "seconds": seconds,
        "rtf": seconds / duration,
    }


def der(reference: list, hypothesis: list, collar: float) -> dict[str, float]:
    """DER and its parts (shares of the reference speech), pyannote.metrics' definitions;
    ``collar`` is the total width ignored around each reference boundary."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns: list) -> Annotation:
        result = Annotation()
        for index, (start, end, speaker) in enumerate(turns):
            result[Segment(start, end), index] = speaker
        return result

    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    parts = metric(annotation(reference), annotation(hypothesis), detailed=True)
    total = parts["total"] or 1.0
    return {
        "der": parts["diarization error rate"],
        "confusion": parts["confusion"] / total,
        "missed": parts["missed detection"] / total,
        "false_alarm": parts["false alarm"] / total,
    }


def print_table(rows: list[dict]) -> None:
    print("| recording | min | speakers (found/true) | DER c=0 | DER c=0.25 "
          "(confusion / missed / false alarm) | time s | RTF |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        d0, d = r["der0"], r["der25"]
        print(
            f"| {r['name']} | {r['minutes']:.1f} | {r['found']}/{r['true']} | "
            f"{100 * d0['der']:.1f}% | {100 * d['der']:.1f}% ({100 * d['confusion']:.1f} / "
            f"{100 * d['missed']:.1f} / {100 * d['false_alarm']:.1f}) | {r['seconds']:.1f} | "
            f"{r['rtf']:.3f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
