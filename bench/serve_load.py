"""Drive N concurrent small jobs against an `octavia serve` and print throughput, latency
percentiles and errors.

    python bench/serve_load.py [--jobs 40] [--concurrency 10] [--kind synthesize|transcribe]
                               [--url http://127.0.0.1:8000 --api-key KEY]

Without --url it starts a server on a free port with a temporary data dir (offline preset
engines) and stops it after. A ``synthesize`` job speaks one sentence (espeak-ng or Piper):
it measures the API, queue and worker overhead; ``transcribe`` uploads and transcribes a 3 s
clip and measures the work itself. Latency is from the job's creation to the client seeing
it finished (polling every 50 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(data_dir: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "octavia_cli", "serve", "--no-auth", "--port", str(port),
         "--data-dir", str(data_dir), "--workers", str(workers), "--max-queued", "10000"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            httpx.get(f"{url}/api/v1/health", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def _clip(folder: Path) -> Path:
    wav = folder / "clip.wav"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(folder)}
    subprocess.run(["espeak-ng", "-w", str(wav), "Good morning, and welcome to the show."],
                   check=True, env=env)  # fmt: skip
    return wav


def run_one(url: str, key: str, kind: str, clip: Path | None) -> tuple[float, str | None]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=120) as client:
        began = time.perf_counter()
        try:
            if kind == "synthesize":
                body = {"kind": "synthesize", "options": {"text": "Hola a todos.", "to": "es"}}
            else:
                assert clip is not None
                upload = client.put("/uploads", params={"filename": clip.name},
                                    content=clip.read_bytes())  # fmt: skip
                upload.raise_for_status()
                body = {"kind": "transcribe", "upload_id": upload.json()["id"],
                        "options": {"from": "en"}}  # fmt: skip
            response = client.post("/jobs", json=body)
            if response.status_code != 201:
                return time.perf_counter() - began, f"{response.status_code} {response.text}"
            job_id = response.json()["id"]
            while True:
                job = client.get(f"/jobs/{job_id}").json()
                if job["state"] in ("succeeded", "failed", "cancelled"):
                    error = None if job["state"] == "succeeded" else job["error"]
                    return time.perf_counter() - began, error
                time.sleep(0.05)
        except httpx.HTTPError as exc:
            return time.perf_counter() - began, str(exc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--kind", choices=("synthesize", "transcribe"), default="synthesize")
    parser.add_argument("--url", default="")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="octavia-load-"))
    process = None
    try:
        url = args.url
        if not url:
            process, url = _start(scratch / "data", args.workers)
        clip = _clip(scratch) if args.kind == "transcribe" else None
        began = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(lambda _: run_one(url, args.api_key, args.kind, clip),
                                    range(args.jobs)))  # fmt: skip
        wall = time.perf_counter() - began
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)
    latencies = sorted(latency for latency, error in results if error is None)
    errors = [error for _, error in results if error is not None]

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    print(f"{args.jobs} {args.kind} jobs, {args.concurrency} clients, {args.workers} worker(s)")
    print(f"  throughput: {len(latencies) / wall:.2f} jobs/s over {wall:.1f} s")
    if latencies:
        print(f"  latency: p50 {percentile(50):.2f} s, p95 {percentile(95):.2f} s, "
              f"p99 {percentile(99):.2f} s, mean {statistics.mean(latencies):.2f} s")  # fmt: skip
    print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
