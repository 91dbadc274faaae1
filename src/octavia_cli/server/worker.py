"""Workers: threads that take queued jobs from the store and run them through the same
pipeline functions the CLI calls, publishing the same progress events.

One worker per GPU (``--workers``); each runs one job at a time. A job works in its own
folder under the data dir, so a job interrupted by a restart resumes from its project's
last finished stage when a worker takes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octavia_cli import devices
from octavia_cli.errors import OctaviaError
from octavia_cli.pipeline import Runner
from octavia_cli.progress import ProgressEvent, StageStatus
from octavia_cli.remote import protocol
from octavia_cli.server.jobs import run_job
from octavia_cli.server.runner import runner_alive, this_runner
from octavia_cli.server.security import relative_paths
from octavia_cli.server.store import CANCELLED, FAILED, SUCCEEDED, TERMINAL, Job, Store

logger = logging.getLogger(__name__)

SAVE_PROGRESS_EVERY_S = 1.0


class JobCancelled(Exception):
    pass


class EventBus:
    """Progress events from worker threads to the SSE streams (asyncio queues)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = (
            defaultdict(list)
        )

    def subscribe(self, job_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            self._subscribers[job_id].append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers[job_id] = [s for s in self._subscribers[job_id] if s[1] is not queue]

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(job_id, ()))
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # the stream's loop is gone
                loop.call_soon_threadsafe(queue.put_nowait, event)


class ThreadedRunner:
    """What serve's two job runners share (the in-process pool and the Celery dispatcher):
    jobs left running by a server that is gone recovered on start, daemon threads, stop and
    wake. Jobs are claimed in this process's name (:func:`~octavia_cli.server.runner.this_runner`).
    """

    store: Store
    max_attempts: int

    def _init_threads(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def _start(self, targets: dict[str, Callable[[], None]]) -> None:

        requeued, failed = self.store.recover(self.max_attempts, runner_alive)
        if requeued or failed:
            logger.info("after a restart: %d job(s) requeued, %d failed", requeued, failed)
        for name, target in targets.items():
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()


@dataclass
class WorkerPool(ThreadedRunner):
    store: Store
    data_dir: Path
    bus: EventBus
    workers: int = 1
    max_attempts: int = 3
    on_event: Callable[[str, dict[str, Any]], None] | None = None  # metrics

    def __post_init__(self) -> None:
        self._init_threads()
        self._cancelled: set[str] = set()
        self._device = threading.local()  # each worker thread's GPU
        self._runner = threading.local()  # and its engines

    def start(self) -> None:
        self._start({f"octavia-worker-{index}": self._run for index in range(self.workers)})

    def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)

    def device_for(self, index: int) -> str | None:
        """Worker ``index``'s GPU (``cuda:N``, round robin), or None without GPUs."""

        count = devices.cuda_device_count()
        return f"cuda:{index % count}" if count else None

    def _run(self, index: int = 0) -> None:

        self._device.value = self.device_for(index)
        with Runner(keep=True) as runner:  # models stay loaded between this worker's jobs
            self._runner.value = runner
            self._loop()

    def _loop(self) -> None:

        while not self._stop.is_set():
            job = self.store.claim_next(this_runner())
            if job is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            self._execute(job)

    def _execute(self, job: Job) -> None:

        folder = self.data_dir / "jobs" / job.id
        progress: dict[str, Any] = {"stages": {}}
        last_save = 0.0

        def hook(event: ProgressEvent) -> None:
            nonlocal last_save
            if job.id in self._cancelled or self._stop.is_set():
                raise JobCancelled
            data = event.to_dict()
            if self.on_event is not None:
                self.on_event(job.id, data)
            progress["stages"][event.stage] = data
            # Saved before it is published: a stream that subscribes in between replays it
            # from the store (and one that subscribed before gets it from the bus).
            now = time.monotonic()
            if event.status is not StageStatus.RUNNING or now - last_save > SAVE_PROGRESS_EVERY_S:
                self.store.set_progress(job.id, progress)
                last_save = now
            self.bus.publish(job.id, protocol.progress_event(data))

        self.bus.publish(job.id, protocol.state_event("running"))
        try:
            results = run_job(job, self.store, folder, hook, getattr(self._device, "value", None),
                              getattr(self._runner, "value", None))  # fmt: skip
        except JobCancelled:
            if self._stop.is_set() and job.id not in self._cancelled:
                return  # shutting down: the job stays running and is requeued on start
            self._end(job, CANCELLED, error="cancelled")
            return
        except OctaviaError as exc:
            self._end(job, FAILED, error=str(exc))
            return
        except Exception as exc:  # a bug: keep the trace in the log, not in the response
            logger.error("job %s failed: %s", job.id, traceback.format_exc())
            self._end(job, FAILED, error=f"internal error ({type(exc).__name__})")
            return
        self._end(job, SUCCEEDED, results=results)

    def _end(
        self, job: Job, state: str, *, error: str | None = None,
        results: list[dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip

        if error is not None:  # a client never reads the server's absolute paths
            error = relative_paths(error, self.data_dir)
        self.store.finish(job.id, state, error=error, results=results)
        self._cancelled.discard(job.id)
        final = self.store.job(job.id)
        if final is not None and final.state in TERMINAL:
            self.bus.publish(job.id, protocol.state_event(final.state, error=error,
                                                          results=final.results))  # fmt: skip
        if state == CANCELLED:
            shutil.rmtree(self.data_dir / "jobs" / job.id / "out", ignore_errors=True)
