"""Throughput of `octavia serve --broker` with 1 and with 2 Celery workers.

    python bench/distributed_bench.py [--jobs 16]

Starts a Redis (Debian's redis-server) on a free port, an `octavia serve --broker`, and the
workers, all sharing one temporary data dir; submits N synthesize jobs (espeak-ng, a few
sentences each) at once and waits for all of them. Prints jobs per second and the jobs
each worker ran. On a 2-core machine two workers compete for the same cores, so the ratio
shows the overhead of the queue, not the speed-up that a worker per GPU gives.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def run(workers: int, jobs: int, scratch: Path) -> tuple[float, Counter]:
    redis_port, api_port = _port(), _port()
    data = scratch / f"data-{workers}"
    env = {**os.environ, "OCTAVIA_PRESET": "offline", "OCTAVIA_CONFIG": str(scratch / "c.toml"),
           "XDG_RUNTIME_DIR": str(scratch)}  # fmt: skip
    broker = f"redis://127.0.0.1:{redis_port}/0"
    processes = [subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
         "--dir", str(scratch)], stdout=subprocess.DEVNULL,
    )]  # fmt: skip
    try:
        time.sleep(0.5)
        octavia = [sys.executable, "-m", "octavia_cli"]
        processes.append(subprocess.Popen(
            [*octavia, "serve", "--no-auth", "--port", str(api_port), "--data-dir", str(data),
             "--broker", broker], env=env, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        for _ in range(workers):
            processes.append(subprocess.Popen(
                [*octavia, "worker", "--broker", broker, "--data-dir", str(data)], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        base = f"http://127.0.0.1:{api_port}/api/v1"
        _wait_http(f"{base}/health")
        while httpx.get(f"{base}/health").json()["workers"] < workers:
            time.sleep(0.5)
        text = " ".join(f"Esta es la frase número {i}, dicha con calma." for i in range(8))
        with httpx.Client(base_url=base, timeout=60) as client:
            began = time.perf_counter()
            ids = [client.post("/jobs", json={"kind": "synthesize",
                                              "options": {"text": text, "to": "es"}}).json()["id"]
                   for _ in range(jobs)]  # fmt: skip
            done: dict[str, dict] = {}
            while len(done) < jobs:
                for job_id in ids:
                    if job_id not in done:
                        job = client.get(f"/jobs/{job_id}").json()
                        if job["state"] in ("succeeded", "failed", "cancelled"):
                            done[job_id] = job
                time.sleep(0.05)
            wall = time.perf_counter() - began
        failed = [j for j in done.values() if j["state"] != "succeeded"]
        if failed:
            raise SystemExit(f"{len(failed)} jobs failed: {failed[0]['error']}")
        return jobs / wall, Counter(j["progress"].get("worker") for j in done.values())
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (scripts/install-system-deps.sh)")
    with tempfile.TemporaryDirectory(prefix="octavia-dist-") as scratch:
        print(f"{args.jobs} synthesize jobs, submitted at once; {os.cpu_count()} CPU cores")
        results = {}
        for workers in (1, 2):
            rate, per_worker = run(workers, args.jobs, Path(scratch))
            results[workers] = rate
            print(f"  {workers} worker(s): {rate:.2f} jobs/s; jobs per worker: "
                  f"{sorted(per_worker.values(), reverse=True)}")  # fmt: skip
        print(f"  2 workers / 1 worker: {results[2] / results[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
