"""Dub one file with the offline preset and print where the time and memory went.

    python bench/dub_bench.py [FILE] [--to es] [--runs 1]

Prints, per run: wall time per stage, the total, the real-time factor (wall / media length),
peak resident memory of this process (the engine programs it runs, ffmpeg, espeak-ng and
apertium, are small next to it), and how long importing Octavia took. The input is copied to
a temporary folder, so every run starts from an empty project. The bundled Whisper model is
assembled once before timing (a one-time cost on first use, reported separately).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()
from octavia_cli.config import load_settings  # noqa: E402
from octavia_cli.pipeline import DubRequest, dub  # noqa: E402

IMPORT_S = time.perf_counter() - STARTED
HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=HERE.parent / "examples" / "talk.mp4")
    parser.add_argument("--to", default="es")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    from octavia_cli.media import probe
    from octavia_cli.models import bundled_model_path

    settings = load_settings({"general.preset": "offline"})
    began = time.perf_counter()
    bundled_model_path("whisper-base", settings.models.cache_dir)
    assemble_s = time.perf_counter() - began
    duration = probe(args.file).duration_s
    print(
        f"input: {args.file.name}, {duration:.1f} s; import octavia: {IMPORT_S:.2f} s; "
        f"bundled model ready: {assemble_s:.2f} s"
    )
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="octavia-bench-") as scratch:
            source = Path(scratch) / args.file.name
            shutil.copy(args.file, source)
            began = time.perf_counter()
            result = dub(
                DubRequest(source=source, targets=(args.to,), source_language=None), settings
            )
            wall = time.perf_counter() - began
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\nrun {run}")
        for stage, seconds in result.stage_seconds.items():
            print(f"  {stage:<16} {seconds:6.2f} s")
        accounted = sum(result.stage_seconds.values())
        print(f"  {'(between stages)':<16} {wall - accounted:6.2f} s")
        print(f"  {'total':<16} {wall:6.2f} s   real-time factor {wall / duration:.2f}")
        print(f"  peak RSS of the octavia process so far: {own:.0f} MiB")
        print(f"  wall including import: {wall + IMPORT_S:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
