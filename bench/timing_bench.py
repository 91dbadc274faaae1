"""Where the dub speaks, on real speech: each shared dialogue dubbed offline, its voice
track against the ground truth.

    python bench/timing_bench.py [--data ../shared/data/dialogues] [--only NAME ...]
                                 [--to es]

A source line is a stretch of the ground truth's speech (all speakers) between pauses of
0.7 s or more. For each, is there a dub onset within 0.4 s of its start (onsets found by
the Silero VAD on the dub's own voice track, ``mix/voice.LANG.wav``: 300 ms of silence at
least between stretches, 30 ms padding)? And the share of the dub's speech that lies
inside the ground truth's speech (the rest is dub speaking through a pause). Also the
dub's lines, and how many were spoken in their source words or said by a neighbour.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "dialogues"
LINE_PAUSE_S = 0.7
ONSET_WITHIN_S = 0.4
FRAME_S = 0.01


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--to", default="es")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from speakers_bench import read_rttm

    names = args.only or sorted(p.stem for p in args.data.glob("*.rttm"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="octavia-timing-") as scratch:
        for name in names:
            source = Path(shutil.copy(args.data / f"{name}.flac", Path(scratch) / f"{name}.flac"))
            began = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "octavia_cli", "--quiet", "dub", str(source), "--to",
                 args.to, "--from", "en", "--preset", "offline", "-o",
                 str(Path(scratch) / f"{name}.{args.to}.flac")],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                print(f"{name}: the dub failed: {result.stderr.strip()}", file=sys.stderr)
                continue
            project = Path(scratch) / f"{name}.octavia"
            rows.append(measure(name, project, read_rttm(args.data / f"{name}.rttm"), args.to))
            rows[-1]["seconds"] = time.perf_counter() - began
    print(
        "| dialogue | source lines | with a dub onset within 0.4 s | dub speech inside source "
        "speech | dub lines | in source words / said by a neighbour | dub s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['lines']} | {100 * r['onsets']:.0f}% | "
            f"{100 * r['inside']:.0f}% | {r['dub_lines']} | {r['from_source']} / "
            f"{r['merged']} | {r['seconds']:.1f} |"
        )
    if rows:
        onsets = sum(r["onsets"] * r["lines"] for r in rows) / sum(r["lines"] for r in rows)
        inside = float(np.mean([r["inside"] for r in rows]))
        print(f"| all | {sum(r['lines'] for r in rows)} | {100 * onsets:.0f}% | "
              f"{100 * inside:.0f}% (mean) | | | |")  # fmt: skip
    return 0


def source_lines(turns: list[tuple[float, float, str]]) -> list[tuple[float, float]]:
    """The ground truth's speech, all speakers together, cut at pauses of LINE_PAUSE_S."""
    stretches: list[list[float]] = []
    for start, end, _ in sorted(turns):
        if stretches and start - stretches[-1][1] < LINE_PAUSE_S:
            stretches[-1][1] = max(stretches[-1][1], end)
        else:
            stretches.append([start, end])
    return [(a, b) for a, b in stretches]


def dub_speech(voice_track: Path) -> list[tuple[float, float]]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    from octavia_cli.media.audio import read_audio

    audio, _ = read_audio(voice_track, 16_000)
    mono = audio.mean(axis=0)
    options = VadOptions(min_silence_duration_ms=300, speech_pad_ms=30)
    stamps = get_speech_timestamps(np.ascontiguousarray(mono, dtype=np.float32), options)
    return [(s["start"] / 16_000, s["end"] / 16_000) for s in stamps]


def measure(name: str, project: Path, turns: list, target: str) -> dict:
    lines = source_lines(turns)
    spoken = dub_speech(project / "mix" / f"voice.{target}.wav")
    onsets = np.array([a for a, _ in spoken])
    hits = sum(bool(len(onsets)) and float(np.min(np.abs(onsets - a))) <= ONSET_WITHIN_S
               for a, _ in lines)  # fmt: skip
    end = max([b for _, b in spoken] + [b for _, b, _ in turns]) + 1.0
    truth, dub = np.zeros(int(end / FRAME_S), bool), np.zeros(int(end / FRAME_S), bool)
    for a, b, _ in turns:
        truth[int(a / FRAME_S) : int(b / FRAME_S)] = True
    for a, b in spoken:
        dub[int(a / FRAME_S) : int(b / FRAME_S)] = True
    report = json.loads((project / "report" / f"timing.{target}.json").read_text())
    totals = report["totals"]
    return {
        "name": name,
        "lines": len(lines),
        "onsets": hits / max(len(lines), 1),
        "inside": float((dub & truth).sum() / max(dub.sum(), 1)),
        "dub_lines": totals["lines"],
        "from_source": totals.get("from_source", 0),
        "merged": totals.get("merged", 0),
    }


if __name__ == "__main__":
    sys.exit(main())
