"""The HTTP API of ``octavia serve`` (FastAPI), under ``/api/v1``.

Uploads are streamed to disk and accepted only if ffprobe reads them as media; jobs are
rows in SQLite run by the worker pool; progress is streamed as Server-Sent Events carrying
the same events the CLI renders. Errors are JSON ``{"error": ..., "detail": ...}`` with a
4xx status; no stack trace ever reaches a response.
"""

import asyncio
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sse_starlette.sse import EventSourceResponse

from octavia_cli import __version__
from octavia_cli.config import load_settings
from octavia_cli.errors import InputError
from octavia_cli.media.ffmpeg import probe
from octavia_cli.remote import protocol
from octavia_cli.remote.protocol import Kind
from octavia_cli.server.distributed import CeleryDispatcher
from octavia_cli.server.jobs import cost_minutes, name_suffix, parse_options
from octavia_cli.server.metrics import Metrics
from octavia_cli.server.retention import Cleaner, Retention
from octavia_cli.server.security import HostCheck, allowed_hosts, is_loopback
from octavia_cli.server.store import QUEUED, RUNNING, TERMINAL, Store
from octavia_cli.server.worker import EventBus, WorkerPool

logger = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[\w][\w .()+-]{0,200}")  # whole names only: fullmatch
LOCAL = "local"  # the identity of requests to a server open without keys (--no-auth)


@dataclass(frozen=True)
class ServerOptions:
    data_dir: Path
    workers: int = 1
    max_upload_bytes: int = 4 * 1024**3
    max_queued: int = 100
    broker: str | None = None  # redis://...: jobs run on Celery workers (octavia worker)
    # Open without keys (serve --no-auth): honoured only on a loopback address, only while
    # the data dir has never had a key, and only for requests whose Host is that address.
    no_auth: bool = False
    host: str = "127.0.0.1"  # the address and port the server listens on
    port: int = 8000
    upload_quota_bytes: int = 10 * 1024**3  # per key, over its stored uploads (0: none)
    retention: Retention = field(default_factory=Retention)  # uploads and finished jobs


class JobRequest(BaseModel):
    kind: Kind
    upload_id: str | None = None
    options: dict[str, Any] = {}


class EstimateRequest(BaseModel):
    kind: Kind
    duration_s: float | None = Field(None, ge=0)
    upload_id: str | None = None
    options: dict[str, Any] = {}


def _error(status: int, error: str, detail: str = "", headers: dict[str, str] | None = None):
    return HTTPException(status, {"error": error, "detail": detail}, headers=headers)


def create_app(options: ServerOptions) -> FastAPI:
    store = Store(options.data_dir / "octavia.db")
    bus = EventBus()

    pool: Any
    if options.broker:
        pool = CeleryDispatcher(store, options.data_dir, bus, options.broker)
    else:
        pool = WorkerPool(store, options.data_dir, bus, options.workers)
    cleaner = Cleaner(store, options.data_dir, options.retention)
    metrics = Metrics(store, lambda: pool.workers, cleaner)
    pool.on_event = metrics.on_event

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.start()
        cleaner.start()
        yield
        cleaner.stop()
        pool.stop()

    app = FastAPI(
        title="Octavia",
        version=__version__,
        description="Dubbing, transcription, translation and subtitles as jobs.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
    )
    app.state.store, app.state.pool = store, pool
    loopback = is_loopback(options.host)

    def open_without_keys() -> bool:
        """Decided on every request: creating a key closes an open server at once."""
        return options.no_auth and loopback and not store.ever_had_keys()

    app.add_middleware(
        HostCheck, allowed=allowed_hosts(options.host, options.port), active=open_without_keys
    )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"error": "internal error"}, status_code=500)

    def identity(authorization: Annotated[str | None, Header()] = None) -> str:
        if not authorization:
            if not open_without_keys():
                raise _error(401, "missing API key", "Send Authorization: Bearer <key>.",
                             {"WWW-Authenticate": "Bearer"})  # fmt: skip
            return LOCAL
        scheme, _, key = authorization.partition(" ")
        record = store.key_for(key.strip()) if scheme.lower() == "bearer" else None
        if record is None:
            raise _error(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        if record["revoked_at"] is not None:
            raise _error(401, "revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return record["id"]

    Who = Annotated[str, Depends(identity)]

    def key_id(who: str) -> str | None:
        return None if who == LOCAL else who

    def own_job(job_id: str, who: str):  # -> Job
        job = store.job(job_id)
        if job is None or job.key_id != key_id(who):
            raise _error(404, "unknown job", job_id)
        return job

    @app.get("/api/v1/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "queued": store.queued_count(),
                "workers": pool.workers}  # fmt: skip

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus scrape target: job counts and stage times, no keys or file names."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/account")
    def account(who: Who) -> dict[str, Any]:
        if who == LOCAL:
            return {"key": None, "balance_minutes": None, "usage": []}
        record = next(k for k in store.keys() if k["id"] == who)  # noqa: SIM118 (a method)
        return {
            "key": {"id": who, "name": record["name"], "prefix": record["prefix"]},
            "balance_minutes": store.balance(who),
            "usage": store.ledger(who),
        }

    @app.put("/api/v1/uploads", status_code=201)
    async def upload(request: Request, who: Who, filename: str = Query(...)) -> dict[str, Any]:
        if not SAFE_NAME.fullmatch(filename) or ".." in filename or filename.startswith("."):
            raise _error(400, "bad file name", "Use a plain file name, no folders.")
        declared = int(request.headers.get("content-length") or 0)
        if declared > options.max_upload_bytes:
            raise _error(413, "upload too large", f"at most {options.max_upload_bytes} bytes")
        quota = options.upload_quota_bytes
        kept = store.upload_bytes(key_id(who)) if quota else 0
        if quota and kept + declared > quota:
            raise _over_quota(kept, quota, options.retention)
        upload_id = uuid.uuid4().hex[:16]
        folder = options.data_dir / "uploads" / upload_id
        folder.mkdir(parents=True)
        # Stored under a short safe name; the original is kept in the database (results are
        # named from it, cut to fit in a file name).
        path = folder / f"input{name_suffix(filename)}"
        size = 0
        try:
            with open(path, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > options.max_upload_bytes:
                        raise _error(413, "upload too large",
                                     f"at most {options.max_upload_bytes} bytes")  # fmt: skip
                    if quota and kept + size > quota:
                        raise _over_quota(kept, quota, options.retention)
                    handle.write(chunk)
            media = await asyncio.to_thread(_probe, path)
        except BaseException:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            raise
        store.add_upload(upload_id, key_id(who), filename, path, size, media.duration_s)
        return {"id": upload_id, "filename": filename, "size": size,
                "duration_s": media.duration_s, "has_video": media.has_video}  # fmt: skip

    def _price(kind: str, raw: dict[str, Any], duration_s: float) -> tuple[Any, float]:
        try:
            parsed = parse_options(kind, raw)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise _error(422, "invalid options", detail) from None
        return parsed, cost_minutes(kind, parsed, duration_s)

    def _upload_for(upload_id: str | None, who: str, kind: str) -> dict[str, Any] | None:
        if kind == "synthesize":
            return None
        record = store.upload(upload_id or "")
        if record is None or record["key_id"] != key_id(who):
            raise _error(404, "unknown upload", upload_id or "")
        return record

    @app.post("/api/v1/estimate")
    def estimate(body: EstimateRequest, who: Who) -> dict[str, Any]:
        record = _upload_for(body.upload_id, who, body.kind) if body.upload_id else None
        duration = record["duration_s"] if record else (body.duration_s or 0.0)
        _, cost = _price(body.kind, body.options, duration)
        balance = None if who == LOCAL else store.balance(who)
        return {"cost_minutes": cost, "balance_minutes": balance,
                "enough": balance is None or balance >= cost}  # fmt: skip

    @app.post("/api/v1/jobs", status_code=201)
    def create_job(body: JobRequest, who: Who) -> dict[str, Any]:
        record = _upload_for(body.upload_id, who, body.kind)
        parsed, cost = _price(body.kind, body.options, record["duration_s"] if record else 0.0)
        if who != LOCAL:
            committed = sum(j.cost_minutes for j in store.jobs(who) if j.state in (QUEUED, RUNNING))
            available = store.balance(who) - committed
            if available < cost:
                raise _error(402, "not enough credits",
                             f"the job costs {cost:.2f} min; {available:.2f} min are free "
                             f"(short by {cost - available:.2f} min)")  # fmt: skip
        upload_id = record["id"] if record else ""
        try:
            job = store.add_job(key_id(who), body.kind, parsed.stored(), upload_id, cost,
                                options.max_queued)  # fmt: skip
        except LookupError:
            raise _error(404, "unknown upload", body.upload_id or "") from None
        if job is None:
            raise _error(503, "queue full", "Try again later.", {"Retry-After": "30"})
        pool.wake()
        return job.public()

    @app.get("/api/v1/jobs")
    def list_jobs(who: Who) -> list[dict[str, Any]]:
        return [job.public() for job in store.jobs(key_id(who))]

    @app.get("/api/v1/jobs/{job_id}")
    def get_job(job_id: str, who: Who) -> dict[str, Any]:
        return own_job(job_id, who).public()

    @app.post("/api/v1/jobs/{job_id}/cancel")
    def cancel_job(job_id: str, who: Who) -> dict[str, Any]:
        own_job(job_id, who)
        if store.cancel(job_id) == RUNNING:
            pool.cancel(job_id)
        job = store.job(job_id)
        assert job is not None
        return job.public()

    @app.get("/api/v1/jobs/{job_id}/results/{name}")
    def result(job_id: str, name: str, who: Who) -> FileResponse:
        job = own_job(job_id, who)
        if name not in {r["name"] for r in job.results}:
            raise _error(404, "unknown result", name)
        return FileResponse(options.data_dir / "jobs" / job_id / "out" / name, filename=name)

    @app.get("/api/v1/jobs/{job_id}/events")
    async def events(job_id: str, who: Who) -> EventSourceResponse:
        own_job(job_id, who)
        queue = bus.subscribe(job_id)

        async def stream() -> AsyncIterator[dict[str, str]]:
            try:
                job = store.job(job_id)
                assert job is not None
                for stage in job.progress.get("stages", {}).values():
                    yield {"event": "progress", "data": json.dumps(protocol.progress_event(stage))}
                if job.state in TERMINAL:
                    yield {"event": "state", "data": json.dumps(_final(job))}
                    return
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=2.0)
                    except TimeoutError:  # no event: look at the job (it may have ended)
                        job = store.job(job_id)
                        if job is not None and job.state in TERMINAL:
                            yield {"event": "state", "data": json.dumps(_final(job))}
                            return
                        continue
                    yield {"event": event["type"], "data": json.dumps(event)}
                    if event["type"] == "state" and event["state"] in TERMINAL:
                        return
            finally:
                bus.unsubscribe(job_id, queue)

        return EventSourceResponse(stream(), ping=10)

    return app


def _over_quota(kept: int, quota: int, retention: Retention) -> HTTPException:
    megabyte = 1024 * 1024
    after = (
        f"; uploads no queued job needs are deleted {retention.upload_s / 3600:g} h after "
        "they were made"
        if retention.upload_s
        else ""
    )
    return _error(
        413, "upload quota exceeded",
        f"This key keeps {kept / megabyte:.1f} MB of uploads on the server and may keep "
        f"{quota / megabyte:.1f} MB{after}.",
    )  # fmt: skip


def _final(job: Any) -> dict[str, Any]:
    return protocol.state_event(job.state, error=job.error, results=job.results)


def _probe(path: Path) -> Any:

    try:
        media = probe(path)
    except InputError:
        raise _error(
            415, "not media", "ffprobe cannot read the upload as audio or video."
        ) from None
    if not media.has_audio:
        raise _error(415, "no audio", "The upload has no audio track.")
    return media


def retention_of(settings: Any) -> Retention:
    """The ``serve.*`` settings' retention times, in seconds."""
    return Retention(
        upload_s=settings.serve.upload_retention_hours * 3600,
        job_s=settings.serve.retention_days * 24 * 3600,
        interval_s=settings.serve.cleanup_interval_minutes * 60,
    )


def server_options_from_env() -> ServerOptions:
    """For ``uvicorn --factory``: the options ``octavia serve`` put in the environment (and
    the ``serve.*`` settings: ``OCTAVIA_SERVE_UPLOAD_QUOTA_MB``...)."""

    settings = load_settings()
    return ServerOptions(
        upload_quota_bytes=int(settings.serve.upload_quota_mb * 1024 * 1024),
        retention=retention_of(settings),
        data_dir=Path(os.environ["OCTAVIA_SERVE_DATA_DIR"]),
        workers=int(os.environ.get("OCTAVIA_SERVE_WORKERS", "1")),
        max_upload_bytes=int(os.environ.get("OCTAVIA_SERVE_MAX_UPLOAD", str(4 * 1024**3))),
        max_queued=int(os.environ.get("OCTAVIA_SERVE_MAX_QUEUED", "100")),
        no_auth=os.environ.get("OCTAVIA_SERVE_NO_AUTH") == "1",
        host=os.environ.get("OCTAVIA_SERVE_HOST", "127.0.0.1"),
        port=int(os.environ.get("OCTAVIA_SERVE_PORT", "8000")),
    )
