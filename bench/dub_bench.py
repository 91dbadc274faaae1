"""Dub one file with the offline preset and print where the time and memory went.

    python bench/dub_bench.py [FILE] [--to es] [--runs 1] [--generate-minutes 5]

Prints, per run: wall time per stage, the total, the real-time factor (wall / media length),
peak resident memory of this process (the engine programs it runs, ffmpeg, espeak-ng and
apertium, are small next to it), and how long importing Octavia took. The input is copied to
a temporary folder, so every run starts from an empty project. The bundled Whisper model is
assembled once before timing (a one-time cost on first use, reported separately).

``--generate-minutes N`` dubs a generated N-minute clip instead (espeak-ng sentences every
6 s over a test pattern), with each stage's real-time factor.
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
    parser.add_argument("--generate-minutes", type=float, default=0.0)
    args = parser.parse_args()
    if args.generate_minutes:
        args.file = generate(args.generate_minutes)

    from octavia_cli.media.ffmpeg import probe
    from octavia_cli.models.bundled import bundled_model_path

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
            print(f"  {stage:<16} {seconds:6.2f} s   real-time factor {seconds / duration:.3f}")
        accounted = sum(result.stage_seconds.values())
        print(f"  {'(between stages)':<16} {wall - accounted:6.2f} s")
        print(f"  {'total':<16} {wall:6.2f} s   real-time factor {wall / duration:.2f}")
        print(f"  peak RSS of the octavia process so far: {own:.0f} MiB")
        print(f"  wall including import: {wall + IMPORT_S:.2f} s")
    return 0


def generate(minutes: float) -> Path:
    """An N-minute clip: a sentence every 6 s, over a test pattern (made once, cached)."""
    import os

    sys.path.insert(0, str(HERE.parent / "tests"))
    from conftest import make_media  # the tests' espeak-ng + ffmpeg clip maker

    sentences = [
        "Welcome back to the program.",
        "Today we look at the history of the city library.",
        "The new reading room opens next week.",
        "Many visitors come on Saturday mornings.",
        "Thank you for listening.",
    ]
    seconds = minutes * 60
    lines = tuple((0.5 + 6 * i, sentences[i % len(sentences)]) for i in range(int(seconds // 6)))
    folder = Path(tempfile.gettempdir()) / "octavia-bench-media"
    folder.mkdir(exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))
    path = folder / f"generated-{minutes:g}min.mp4"
    if not path.exists():
        make_media(path, lines, duration_s=seconds)
    return path


if __name__ == "__main__":
    sys.exit(main())
