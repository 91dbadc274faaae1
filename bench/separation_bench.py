"""Separation and diarization on a generated input: real-time factor and peak memory.

    python bench/separation_bench.py [--minutes 5] [--only separation|diarization]

The input is a generated two-speaker dialogue (espeak-ng voices, turns with pauses) over a
chord, N minutes long (made once and cached in the temp folder). Each engine runs in a
child process of its own, so the peak resident memory printed is that engine's alone.

- separation: demucs with the full-size HTDemucs architecture (htdemucs's configuration)
  and random weights, since the trained weights come from the hub, which cannot be reached
  here. The compute, and so the time and memory, are those of the real model; the output
  is not. Blocks of 60 s, as the product uses.
- diarization: the offline diarizer (Silero VAD + resemblyzer + spectral clustering), with
  its diarization error rate against the generated turns.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--only", choices=("separation", "diarization"))
    args = parser.parse_args()
    source, reference = generate(args.minutes)
    if args.only:
        result = {"separation": separation, "diarization": diarization}[args.only](
            source, reference
        )
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    seconds = args.minutes * 60
    print(f"input: generated two-speaker dialogue, {seconds:.0f} s, 48 kHz stereo")
    for engine in ("separation", "diarization"):
        child = subprocess.run(
            [sys.executable, __file__, "--minutes", str(args.minutes), "--only", engine],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(child.stdout.strip().splitlines()[-1])
        extra = (
            f", DER {result['der']:.3f}, {result['speakers']} speakers" if "der" in result else ""
        )
        print(
            f"  {engine:<12} {result['seconds']:7.1f} s   real-time factor "
            f"{result['seconds'] / seconds:.3f}   peak RSS {result['peak_rss_mib']:.0f} MiB{extra}"
        )
    return 0


def generate(minutes: float) -> tuple[Path, list]:
    import os

    sys.path.insert(0, str(HERE.parent / "tests"))
    from conftest import make_dialogue  # the tests' espeak-ng + ffmpeg dialogue maker

    folder = Path(tempfile.gettempdir()) / "octavia-bench-media"
    folder.mkdir(exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))
    path = folder / f"dialogue-{minutes:g}min.wav"
    turns = folder / f"dialogue-{minutes:g}min.json"
    if not path.exists() or not turns.exists():
        _, reference = make_dialogue(path, minutes * 60, video=False)
        turns.write_text(json.dumps(reference))
    return path, json.loads(turns.read_text())


def separation(source: Path, reference: list) -> dict:
    import torch
    from demucs.htdemucs import HTDemucs

    from octavia_cli.engines.separation.demucs import DemucsSeparator

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"]).eval()  # htdemucs's shape
    separator = DemucsSeparator(model=model, block_s=60.0)
    with tempfile.TemporaryDirectory() as scratch:
        began = time.perf_counter()
        separator.separate(
            source, Path(scratch) / "v.wav", Path(scratch) / "b.wav", lambda *_: None
        )
        return {"seconds": time.perf_counter() - began}


def diarization(source: Path, reference: list) -> dict:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    from octavia_cli.engines.diarization.base import SpeakerCount
    from octavia_cli.engines.diarization.offline import OfflineDiarizer

    with tempfile.TemporaryDirectory() as scratch:
        speech = Path(scratch) / "speech-16k.wav"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(source), "-ar", "16000", "-ac", "1", str(speech)],
            check=True,
        )
        began = time.perf_counter()
        turns = OfflineDiarizer().diarize(speech, SpeakerCount(), lambda *_: None)
        seconds = time.perf_counter() - began
    truth, found = Annotation(), Annotation()
    for start, end, speaker in reference:
        truth[Segment(start, end)] = speaker
    for turn in turns:
        found[Segment(turn.start_s, turn.end_s)] = turn.speaker
    return {
        "seconds": seconds,
        "der": float(DiarizationErrorRate()(truth, found)),
        "speakers": len({t.speaker for t in turns}),
    }


if __name__ == "__main__":
    sys.exit(main())
