"""What a serve worker keeps between jobs: its engines, and the memory they hold.

    python bench/worker_memory_bench.py [FILE] [--jobs 3] [--preset offline|quality]

Runs ``--jobs`` dub jobs of FILE one after another through one kept :class:`Runner`, as a
``serve`` worker does, and prints after each job: the engines the runner keeps (and how many
of each kind it has built so far: a kept engine is built once), the process's resident
memory, and on a CUDA GPU the memory torch holds on the card now and at its peak during
the job. Between stages a kept engine on a GPU is parked in CPU memory, so the card's
figure after a job is what stays there while the worker waits (CTranslate2's parked
weights are not torch's, and show in the resident memory instead).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from octavia_cli.config import load_settings
from octavia_cli.pipeline import DubRequest, Runner, dub

HERE = Path(__file__).resolve().parent


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cuda() -> object | None:
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:
            return None
    return torch if torch.cuda.is_available() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=HERE.parent / "examples" / "talk.mp4")
    parser.add_argument("--to", default="es")
    parser.add_argument("--from", dest="source", default="en")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--preset", default="offline")
    args = parser.parse_args()
    settings = load_settings({"general.preset": args.preset})
    torch = _cuda()
    print(f"{'job':>4} {'rss MiB':>8} {'cuda now MiB':>13} {'cuda peak MiB':>14}  engines kept")
    with (
        tempfile.TemporaryDirectory(prefix="octavia-bench-") as scratch,
        Runner(keep=True) as runner,
    ):
        for job in range(1, args.jobs + 1):
            folder = Path(scratch) / f"job{job}"
            folder.mkdir()
            source = folder / args.file.name
            shutil.copy(args.file, source)
            if torch is not None:
                torch.cuda.reset_peak_memory_stats()  # type: ignore[attr-defined]
            dub(DubRequest(source, (args.to,), args.source, workdir=folder), settings,
                runner=runner)  # fmt: skip
            now = peak = float("nan")
            if torch is not None:
                now = torch.cuda.memory_allocated() / 2**20  # type: ignore[attr-defined]
                peak = torch.cuda.max_memory_allocated() / 2**20  # type: ignore[attr-defined]
            kept = ", ".join(
                f"{kind}:{type(engine).__name__} (built {runner.built[kind]}x)"
                for kind, engine in runner.alive().items()
            )
            print(f"{job:>4} {_rss_mib():>8.0f} {now:>13.0f} {peak:>14.0f}  {kept}")
    if torch is None:
        print("no CUDA GPU here: the card's figures need one (run it on a GPU worker)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
