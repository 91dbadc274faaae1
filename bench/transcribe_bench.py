"""Transcription speed on a short clip and memory on a long file, offline preset.

    python bench/transcribe_bench.py [--runs 3] [--long-minutes 120] [--skip-long]

Short clip (examples/talk.mp4, 10 s of English): the transcribe stage alone (extract done
before timing), wall time and real-time factor, with the language given and detected; the
Whisper model load is part of every run, as it is for a user's command.

Long file: a generated recording (quiet noise with a spoken sentence every five minutes) of
``--long-minutes`` is transcribed by ``octavia transcribe`` in a child process; we print its
wall time and peak resident memory, next to the same for a 10-minute file, to show that
memory does not grow with length (the audio is read in 10-minute windows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def short_clip(runs: int) -> None:
    from octavia_cli.config import load_settings
    from octavia_cli.media.ffmpeg import probe
    from octavia_cli.models.bundled import bundled_model_path
    from octavia_cli.pipeline import open_project
    from octavia_cli.progress import no_progress
    from octavia_cli.stages.extract import extract
    from octavia_cli.stages.transcribe import transcribe

    settings = load_settings({"general.preset": "offline"})
    bundled_model_path("whisper-base", settings.models.cache_dir)
    clip = HERE.parent / "examples" / "talk.mp4"
    duration = probe(clip).duration_s
    print(f"short clip: {clip.name}, {duration:.1f} s, model {settings.asr.model}, CPU int8")
    for language in ("en", None):
        walls = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="octavia-bench-") as scratch:
                source = Path(scratch) / clip.name
                shutil.copy(clip, source)
                project = open_project(source, None)
                with project.locked():
                    extract(project, source, no_progress)
                    from octavia_cli.engines.asr import get_asr_engine

                    began = time.perf_counter()
                    engine = get_asr_engine(settings)
                    transcribe(project, engine, language, no_progress)
                    engine.close()
                    walls.append(time.perf_counter() - began)
        wall = statistics.median(walls)
        label = "language given   " if language else "language detected"
        print(
            f"  {label}: median {wall:.2f} s of {runs} runs "
            f"(min {min(walls):.2f}), real-time factor {wall / duration:.2f}"
        )


def make_long_file(path: Path, minutes: int) -> None:
    """Quiet noise with an espeak-ng sentence every five minutes, as 16 kHz mono FLAC."""
    work = path.parent
    sentence = work / "sentence.wav"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(work), "XDG_CONFIG_HOME": str(work)}
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(sentence),
         "Here is one more sentence from the long recording."],
        check=True, env=env,
    )  # fmt: skip
    seconds = minutes * 60
    period = 300
    count = max(1, seconds // period)
    graph = (
        f"[1:a]aloop=loop={count - 1}:size={period * 16000},"
        f"atrim=0:{seconds}[speech];"
        f"[0:a][speech]amix=inputs=2:normalize=0:duration=first[out]"
    )
    padded = work / "period.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(sentence), "-af",
         f"aresample=16000,apad=whole_dur={period}", str(padded)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:r=16000:a=0.003",
         "-i", str(padded), "-filter_complex", graph,
         "-map", "[out]", "-ac", "1", "-c:a", "flac", str(path)],
        check=True,
    )  # fmt: skip


def transcribe_child(path: Path, workdir: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and lines found of ``octavia transcribe`` on ``path``."""
    octavia = shutil.which("octavia") or "octavia"
    began = time.perf_counter()
    with subprocess.Popen(
        [octavia, "--quiet", "transcribe", str(path), "--language", "en", "--preset",
         "offline", "--workdir", str(workdir), "--json"],
        stdout=subprocess.PIPE,
    ) as child:  # fmt: skip
        output = child.stdout.read() if child.stdout else b"{}"
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    if child.returncode != 0:
        raise SystemExit(f"octavia transcribe failed on {path} ({child.returncode})")
    return wall, usage.ru_maxrss / 1024, len(json.loads(output)["segments"])


def long_file(minutes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="octavia-bench-long-") as scratch:
        folder = Path(scratch)
        print("\nlong file (noise, a sentence every 5 min), transcribed in a child process:")
        for length in dict.fromkeys((10, minutes)):
            media = folder / f"long-{length}min.flac"
            began = time.perf_counter()
            make_long_file(media, length)
            made = time.perf_counter() - began
            wall, peak, lines = transcribe_child(media, folder / f"work-{length}")
            print(
                f"  {length:4d} min: transcribe {wall:7.1f} s (real-time factor "
                f"{wall / (length * 60):.3f}), peak RSS {peak:6.0f} MiB, {lines} lines "
                f"of {max(1, length // 5)} spoken (file made in {made:.0f} s)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long-minutes", type=int, default=120)
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()
    short_clip(args.runs)
    if not args.skip_long:
        long_file(args.long_minutes)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(this process: peak RSS {own:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
