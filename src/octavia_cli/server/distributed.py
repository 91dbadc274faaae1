"""Jobs on many machines: Celery with Redis as broker and result backend.

``octavia serve --broker redis://...`` keeps the API, the SQLite job store and the SSE
streams in one process, and hands each job to Celery instead of to its own threads;
``octavia worker --broker ... --data-dir D`` runs the same stage functions (``run_job``) in a
Celery worker, one job at a time, with models kept loaded between jobs. Serve and workers
share the data dir (a shared mount: :class:`~octavia_cli.server.storage.LocalStorage`), so a
job's project folder is the unit of work: a job that a dead worker left half done is taken
up by another and resumes from its last finished stage.

Delivery: tasks are acknowledged late and rejected when their worker dies, so Redis hands
them out again after the visibility timeout. Each delivery counts an attempt in Redis; past
``max_attempts`` (a job that kills its worker every time, or keeps crashing) the job ends
failed with that reason instead of running again. Bad input (an Octavia error) fails at
once; an unexpected error is retried with exponential backoff. A job running longer than
the visibility timeout is handed out again while it runs: its worker holds a lease on it in
Redis (renewed while it runs), and a copy that finds the lease held waits and comes back,
then ends quietly once the job has finished, or runs it if the lease lapsed (a dead worker).

Events: workers publish every progress event and the job's end on a Redis channel; serve
listens, updates its store and feeds the same SSE streams as its own threads would, so
``octavia dub --remote`` shows the same progress either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from octavia_cli.errors import InputError, OctaviaError
from octavia_cli.pipeline import Runner, parallel
from octavia_cli.remote import protocol
from octavia_cli.server.jobs import dub_request, job_source, parse_options, run_job
from octavia_cli.server.runner import this_runner
from octavia_cli.server.security import relative_paths
from octavia_cli.server.storage import LocalStorage
from octavia_cli.server.store import FAILED, SUCCEEDED, TERMINAL, Job, Store
from octavia_cli.server.worker import ThreadedRunner

logger = logging.getLogger(__name__)

CHANNEL = "octavia:events"
TASK = "octavia.run_job"
CHUNK_TASK = "octavia.transcribe_chunk"
FINISH_TASK = "octavia.finish_dub"
SYNTH_TASK = "octavia.synthesize_lines"
FINAL_TASK = "octavia.finish_synthesis"
DEFAULT_QUEUE = "octavia"
# A running job's claim in Redis lasts this long (OCTAVIA_JOB_LEASE_S) unless its worker
# renews it: a copy of the job delivered again meanwhile (past the visibility timeout) waits
# instead of failing on the project's lock; a dead worker's job waits this long at most.
LEASE_S = 60
KINDS = protocol.KINDS


def celery_app(broker: str, *, visibility_timeout_s: int | None = None) -> Any:
    from celery import Celery

    app = Celery("octavia", broker=broker, backend=broker)
    timeout = visibility_timeout_s or int(os.environ.get("OCTAVIA_VISIBILITY_TIMEOUT_S", 3600))
    app.conf.update(
        task_acks_late=True,  # a job is done when it is done, not when it was handed out
        task_reject_on_worker_lost=True,  # a dead worker's job goes back to the queue
        worker_prefetch_multiplier=1,  # one job at a time per worker
        # A dead worker's unacknowledged job is put back by a sweep of the unacked index;
        # kombu sweeps every 10 s x 10 by default, which would keep a job lost for 100 s
        # past its visibility timeout: sweep every tenth of it (at most every 10 s) instead.
        broker_transport_options={
            "visibility_timeout": timeout,
            "unacked_restore_interval": max(1, min(10, timeout // 10)),
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": timeout},
        task_default_queue=DEFAULT_QUEUE,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    app.task(name=TASK, bind=True, max_retries=5)(_run_task)
    app.task(name=CHUNK_TASK, bind=True)(_chunk_task)
    app.task(name=FINISH_TASK, bind=True)(_finish_task)
    app.task(name=SYNTH_TASK, bind=True)(_synth_task)
    app.task(name=FINAL_TASK, bind=True)(_final_task)
    return app


def _redis(broker: str) -> Any:
    import redis

    return redis.Redis.from_url(broker)


def check_broker(broker: str) -> None:
    """Raise one sentence unless the Redis at ``broker`` answers (before serve or a worker
    starts; once running, Celery reconnects by itself).

    Raises:
        InputError: a URL that is not Redis's, or a Redis that does not answer.
    """
    import redis

    if not broker.startswith(("redis://", "rediss://", "unix://")):
        raise InputError(
            f"--broker must be a Redis URL, not '{broker}'.", "For example: redis://HOST:6379/0"
        )
    try:
        client = redis.Redis.from_url(broker, socket_connect_timeout=5, socket_timeout=5)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise InputError(
            f"Cannot reach the broker at {_masked(broker)}: {exc}",
            "Start Redis there, or check --broker.",
        ) from None


def _masked(url: str) -> str:
    """``url`` without a password."""
    import re

    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


# -- the worker side ---------------------------------------------------------------------


class _Uploads:
    """What ``run_job`` asks of the store, answered from the task's message."""

    def __init__(self, upload: dict[str, Any] | None) -> None:
        self._upload = upload

    def upload(self, upload_id: str) -> dict[str, Any] | None:
        return self._upload


def _run_task(task: Any, payload: dict[str, Any]) -> list[dict[str, Any]] | None:

    broker = task.app.conf.broker_url
    client = _redis(broker)
    job = Job(**payload["job"])
    storage = LocalStorage(Path(os.environ["OCTAVIA_DATA_DIR"]))
    worker = f"{socket.gethostname()}:{os.getpid()}"
    max_attempts = int(payload.get("max_attempts", 3))

    def publish(event: dict[str, Any]) -> None:
        client.publish(CHANNEL, json.dumps({"job": job.id, "worker": worker, **_scrubbed(event)}))

    if client.exists(f"octavia:finished:{job.id}"):  # a late copy of a finished job
        return None
    lease, lease_s = f"octavia:running:{job.id}", _lease_s()
    if not client.set(lease, worker, nx=True, ex=lease_s):
        # Another worker runs this job now: Redis handed it out again because it ran past
        # the visibility timeout. Come back when that run may have ended (sooner than the
        # visibility timeout, or Redis hands the waiting copy out again too); if its worker
        # dies meanwhile, the lease lapses and the copy then runs (and resumes).
        logger.info("job %s: running on %s; this copy waits", job.id, client.get(lease))
        visibility = task.app.conf.broker_transport_options.get("visibility_timeout", 3600)
        raise task.retry(countdown=max(1, min(lease_s, visibility // 2)), max_retries=None)
    with _holding(client, lease, worker, lease_s):
        results = _run_leased(task, payload, job, storage, worker, max_attempts, client, publish)
    client.set(f"octavia:finished:{job.id}", 1, ex=7 * 24 * 3600)
    return results


@contextlib.contextmanager
def _holding(client: Any, lease: str, worker: str, lease_s: int) -> Any:
    """Keep ``lease`` (this worker's claim on a job) alive while the job runs: renewed every
    third of ``lease_s`` by a thread, given up at the end."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            client.set(lease, worker, ex=lease_s)

    thread = threading.Thread(target=renew, name="octavia-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        client.delete(lease)


def _lease_s() -> int:
    return max(3, int(os.environ.get("OCTAVIA_JOB_LEASE_S", LEASE_S)))


def _run_leased(
    task: Any, payload: dict[str, Any], job: Job, storage: LocalStorage, worker: str,
    max_attempts: int, client: Any, publish: Any,
) -> list[dict[str, Any]] | None:  # fmt: skip
    attempts = client.incr(f"octavia:attempts:{job.id}")
    client.expire(f"octavia:attempts:{job.id}", 7 * 24 * 3600)
    if attempts > max_attempts:
        reason = f"the job stopped its worker {attempts - 1} times; not retried"
        publish(protocol.end_event(FAILED, error=reason))
        return None
    publish(protocol.state_event("running"))
    upload = payload.get("upload")
    if upload is not None:
        upload = {**upload, "path": str(storage.resolve(upload["path"]))}
    if job.kind == "dub" and job.options.get("parallel"):
        try:
            _start_parallel(task, payload, job, _Uploads(upload), storage, publish)
        except OctaviaError as exc:
            publish(protocol.end_event(FAILED, error=str(exc)))
        return None

    hook = _progress_hook(publish)
    try:
        results = run_job(job, _Uploads(upload), storage.job_folder(job.id), hook,  # type: ignore[arg-type]
                          _worker_device(), worker_runner())  # fmt: skip
    except OctaviaError as exc:
        publish(protocol.end_event(FAILED, error=str(exc)))
        return None
    except Exception as exc:
        if task.request.retries < min(task.max_retries, max_attempts - 1):
            logger.warning("job %s: %s; retrying", job.id, exc)
            client.decr(f"octavia:attempts:{job.id}")  # a retry is counted on its delivery
            raise task.retry(exc=exc, countdown=2**task.request.retries) from None
        reason = f"internal error ({type(exc).__name__}) after {attempts} attempts"
        publish(protocol.end_event(FAILED, error=reason))
        return None
    publish(protocol.end_event(SUCCEEDED, results=results))
    return results


# -- --parallel: a dub's transcription in chunks over the workers ------------------------


def _progress_hook(publish: Any) -> Any:
    """A stage progress hook that publishes each event for serve to record and stream."""

    def hook(event: Any) -> None:
        publish(protocol.progress_event(event.to_dict()))

    return hook


def _publisher(task: Any, job_id: str) -> Any:
    client = _redis(task.app.conf.broker_url)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def publish(event: dict[str, Any]) -> None:
        client.publish(CHANNEL, json.dumps({"job": job_id, "worker": worker, **_scrubbed(event)}))

    return publish


def _scrubbed(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with the paths in its error relative to this worker's data dir (its mount
    may differ from serve's, which scrubs again with its own)."""

    root = os.environ.get("OCTAVIA_DATA_DIR")
    if not event.get("error") or not root:
        return event
    return {**event, "error": relative_paths(event["error"], Path(root))}


def _dub_context(payload: dict[str, Any]) -> tuple[Any, ...]:
    """The job, its options, settings, request, uploads and folder, on this worker."""

    job = Job(**payload["job"])
    storage = LocalStorage(Path(os.environ["OCTAVIA_DATA_DIR"]))
    upload = payload.get("upload")
    if upload is not None:
        upload = {**upload, "path": str(storage.resolve(upload["path"]))}
    uploads = _Uploads(upload)
    folder = storage.job_folder(job.id)
    options = parse_options("dub", job.options)
    source = job_source(job, uploads, folder)  # type: ignore[arg-type]
    settings, request = dub_request(options, source, folder, None, job.key_id)  # type: ignore[arg-type]
    return job, options, settings, request, uploads, folder


def chunk_seconds() -> float:
    return float(os.environ.get("OCTAVIA_PARALLEL_CHUNK_S", 300))


def _start_parallel(
    task: Any, payload: dict[str, Any], job: Job, uploads: Any, storage: Any, publish: Any
) -> None:
    """Check the dub, extract (and separate) here, then hand each window of the speech to a
    chunk task; the last one to finish starts the rest of the dub (a Celery chord)."""
    from celery import chord, group

    _, _, settings, request, _, _ = _dub_context(payload)

    hook = _progress_hook(publish)
    spans = parallel.transcribe_windows(request, settings, worker_runner(), hook, chunk_seconds())
    publish(protocol.progress_event({
        "stage": "transcribe", "status": "started", "completed": 0.0,
        "total": spans[-1][1] if spans else None, "time_s": time.time(),
        "message": f"{len(spans)} chunks over the workers",
    }))  # fmt: skip
    header = group(
        task.app.signature(CHUNK_TASK, args=[payload, index, start, end], queue="transcribe")
        for index, (start, end) in enumerate(spans)
    )
    chord(header)(task.app.signature(FINISH_TASK, args=[payload], queue="dub"))


def _chunk_task(task: Any, payload: dict[str, Any], index: int, start: float, end: float) -> int:
    """Transcribe one window of a --parallel dub (phase 2)."""

    job, _, settings, request, _, _ = _dub_context(payload)
    publish = _publisher(task, job.id)
    try:
        parallel.transcribe_window(request, settings, worker_runner(), index, start, end)
    except Exception as exc:
        publish(protocol.end_event(FAILED, error=f"chunk {index}: {exc}"))
        raise
    publish(protocol.progress_event({
        "stage": "transcribe", "status": "running", "completed": end, "total": None,
        "message": f"chunk {index} done", "time_s": time.time(),
    }))  # fmt: skip
    return index


def _finish_task(task: Any, done: list[int], payload: dict[str, Any]) -> None:
    """Stitch the chunks into the transcript (phase 3), then prepare the voices (phase 4)
    and spread the lines' speech over the workers."""
    from celery import chord, group

    job, _, settings, request, _, _ = _dub_context(payload)
    publish = _publisher(task, job.id)

    hook = _progress_hook(publish)
    try:
        transcript = parallel.assemble(request, settings, worker_runner(), done)
        publish(protocol.progress_event({
            "stage": "transcribe", "status": "done", "completed": 1.0, "total": 1.0,
            "message": f"{len(transcript.segments)} lines", "time_s": time.time(),
        }))  # fmt: skip
        ids = parallel.prepare_voices(request, settings, worker_runner(), hook)
    except OctaviaError as exc:
        publish(protocol.end_event(FAILED, error=str(exc)))
        return
    except Exception as exc:
        publish(protocol.end_event(FAILED, error=f"internal error ({exc})"))
        raise
    size = max(1, lines_per_chunk())
    header = group(
        task.app.signature(SYNTH_TASK, args=[payload, target, ids[i : i + size], i // size],
                           queue="synthesize")
        for target in request.targets
        for i in range(0, len(ids), size)
    )  # fmt: skip
    chord(header)(task.app.signature(FINAL_TASK, args=[payload], queue="dub"))


def lines_per_chunk() -> int:
    return int(os.environ.get("OCTAVIA_PARALLEL_LINES", 40))


def _synth_task(task: Any, payload: dict[str, Any], target: str, ids: list[str], index: int) -> str:
    """Speak some lines of a --parallel dub into their clips (phase 5)."""

    job, _, settings, request, _, _ = _dub_context(payload)
    publish = _publisher(task, job.id)
    try:
        name = parallel.synthesize_lines(request, settings, worker_runner(), target, ids, index)
    except Exception as exc:
        publish(protocol.end_event(FAILED, error=f"speech chunk {index}: {exc}"))
        raise
    publish(protocol.progress_event({
        "stage": f"synthesize:{target}", "status": "running", "completed": float(index + 1),
        "total": None, "time_s": time.time(), "message": f"chunk {index} done",
    }))  # fmt: skip
    return name


def _final_task(task: Any, names: list[str], payload: dict[str, Any]) -> None:
    """Gather the chunks' clips into the project (phase 6), then run the dub's rest here."""

    job, _, _, request, uploads, folder = _dub_context(payload)
    publish = _publisher(task, job.id)

    hook = _progress_hook(publish)
    try:
        parallel.gather_lines(request, names)
        results = run_job(job, uploads, folder, hook, _worker_device(), worker_runner())
    except OctaviaError as exc:
        publish(protocol.end_event(FAILED, error=str(exc)))
        return
    except Exception as exc:
        publish(protocol.end_event(FAILED, error=f"internal error ({exc})"))
        raise
    publish(protocol.end_event(SUCCEEDED, results=results))


_RUNNER: Any = None


def worker_runner() -> Any:
    """This worker process's engines, kept loaded between its tasks and jobs."""
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = Runner(keep=True)
    return _RUNNER


def _worker_device() -> str | None:
    return os.environ.get("OCTAVIA_WORKER_DEVICE") or None


def gpu_report(gpu: int | None) -> str:
    """The worker's GPU name and free memory, or that it runs on the CPU.

    Raises:
        InputError: ``gpu`` is given and there is no such CUDA GPU here.
    """

    try:
        import torch
    except ImportError:
        if gpu is not None:
            raise InputError(
                f"--gpu {gpu} needs torch with CUDA, which is not installed.",
                "Install the quality engines: pip install 'octavia-cli[quality]'.",
            ) from None
        return "CPU (torch not installed)"
    if gpu is None:
        return "CPU"
    if not torch.cuda.is_available():
        raise InputError(
            f"--gpu {gpu}: no CUDA GPU is visible here.",
            "Check the driver (nvidia-smi), or leave --gpu out to run on the CPU.",
        )
    if gpu >= torch.cuda.device_count():
        raise InputError(
            f"There is no GPU {gpu} here: this machine has {torch.cuda.device_count()}.",
            f"Use --gpu 0 to {torch.cuda.device_count() - 1}.",
        )
    free, total = torch.cuda.mem_get_info(gpu)
    name = torch.cuda.get_device_name(gpu)
    return f"GPU {gpu}: {name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"


HEARTBEAT_S = 5.0


def _heartbeat(broker: str, description: str) -> None:
    """Say every few seconds that this worker is alive (a key that expires), from a thread of
    its own: a busy worker does not answer Celery's pings, but it is still there."""
    client = _redis(broker)
    key = f"octavia:workers:{socket.gethostname()}:{os.getpid()}"

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # the broker is away: try again later
                client.set(key, description, ex=int(HEARTBEAT_S * 3))
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=beat, daemon=True, name="octavia-heartbeat").start()


def run_worker(broker: str, data_dir: Path, queues: list[str], gpu: int | None) -> None:
    """Run a Celery worker in this process until it is stopped (SIGTERM: the running job
    finishes first; a second signal, or a kill, leaves it to be redelivered)."""
    os.environ["OCTAVIA_DATA_DIR"] = str(data_dir)
    if gpu is not None:
        os.environ["OCTAVIA_WORKER_DEVICE"] = f"cuda:{gpu}"
    app = celery_app(broker)
    _heartbeat(broker, gpu_report(gpu))
    import warnings

    warnings.filterwarnings("ignore", message=".*superuser privileges.*")
    worker = app.Worker(
        queues=queues, concurrency=1, pool="solo", loglevel="WARNING", quiet=True,
        hostname=f"octavia-{os.getpid()}@{socket.gethostname()}",
    )  # fmt: skip
    worker.start()


# -- the serve side ----------------------------------------------------------------------


class CeleryDispatcher(ThreadedRunner):
    """Serve's stand-in for its worker threads: queued jobs go to Celery, and the events the
    workers publish update the store and the SSE streams."""

    def __init__(
        self, store: Store, data_dir: Path, bus: Any, broker: str, *, max_attempts: int = 3,
        on_event: Any = None,
    ) -> None:  # fmt: skip

        self.store, self.bus, self.broker = store, bus, broker
        self.storage = LocalStorage(data_dir)
        self.max_attempts = max_attempts
        self.on_event = on_event
        self.workers = 0  # counted from the workers that answer a ping
        self._init_threads()
        self._app = celery_app(broker)

    def start(self) -> None:
        self._start({"octavia-dispatch": self._dispatch, "octavia-events": self._listen,
                     "octavia-workers": self._count_workers})  # fmt: skip

    def cancel(self, job_id: str) -> None:
        # A running job cannot be taken from its worker's hands safely; its result is
        # dropped when it ends (the store already says cancelled).
        self._app.control.revoke(job_id)

    def _dispatch(self) -> None:

        while not self._stop.is_set():
            job = self.store.claim_next(this_runner())  # this serve hands it to Celery
            if job is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            upload = self.store.upload(job.upload_id) if job.upload_id else None
            if upload is not None:
                upload = {**upload, "path": self.storage.relative(Path(upload["path"]))}
            payload = {"job": asdict(job), "upload": upload, "max_attempts": self.max_attempts}
            self._app.send_task(TASK, args=[payload], task_id=job.id, queue=job.kind
                                if job.kind in KINDS else DEFAULT_QUEUE)  # fmt: skip

    def _listen(self) -> None:
        client = _redis(self.broker)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL)
        progress: dict[str, dict[str, Any]] = {}
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            try:
                event = json.loads(message["data"])
                self._handle(event, progress)
            except Exception:  # one bad message must not stop the listener
                logger.exception("bad event from a worker")

    def _handle(self, event: dict[str, Any], progress: dict[str, dict[str, Any]]) -> None:
        job_id = event.pop("job")
        worker = event.pop("worker", "")
        current = self.store.job(job_id)
        if current is None or current.state in TERMINAL:
            return
        if event["type"] == "progress":
            state = progress.setdefault(job_id, {"stages": {}})
            state["stages"][event["stage"]] = event
            state["worker"] = worker
            self.store.set_progress(job_id, state)
            if self.on_event is not None:
                self.on_event(job_id, event)
            self.bus.publish(job_id, event)
        elif event["type"] == "state":  # a worker took the job: say which
            state = progress.setdefault(job_id, {"stages": {}})
            state["worker"] = worker
            self.store.set_progress(job_id, state)
            self.bus.publish(job_id, event)
        elif event["type"] == "end":
            error = event.get("error")
            if error is not None:  # paths under serve's own mount of the data dir, too
                error = relative_paths(error, self.storage.root)
            self.store.finish(job_id, event["state"], error=error,
                              results=event.get("results"))  # fmt: skip
            progress.pop(job_id, None)
            final = self.store.job(job_id)
            if final is not None:
                self.bus.publish(job_id, protocol.state_event(
                    final.state, error=final.error, results=final.results))  # fmt: skip

    def _count_workers(self) -> None:
        client = _redis(self.broker)
        while not self._stop.is_set():
            try:
                self.workers = sum(1 for _ in client.scan_iter("octavia:workers:*"))
            except Exception:
                self.workers = 0
            self._stop.wait(1.0)
