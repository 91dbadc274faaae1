"""Jobs: estimates, creating one (priced and paid for from the key's credits), listing,
cancelling, results, and each job's progress as Server-Sent Events carrying the events the
CLI renders."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError
from sse_starlette.sse import EventSourceResponse

from octavia_cli.remote import protocol
from octavia_cli.remote.protocol import Kind
from octavia_cli.server.jobs import cost_minutes, parse_options
from octavia_cli.server.routes.deps import LOCAL, Server, Services, Who, error, key_id, own_job
from octavia_cli.server.store import RUNNING, TERMINAL, Job
from octavia_cli.server.webhooks import check_url

router = APIRouter(prefix="/api/v1")
DEFAULT_PAGE, MAX_PAGE = 100, 500


class JobRequest(BaseModel):
    kind: Kind
    upload_id: str | None = None
    options: dict[str, Any] = {}
    # POSTed a signed event on each state change (default: the key's webhook, if any).
    webhook_url: str | None = Field(None, max_length=2048)


class EstimateRequest(BaseModel):
    kind: Kind
    duration_s: float | None = Field(None, ge=0)
    upload_id: str | None = None
    options: dict[str, Any] = {}


@router.post("/estimate")
def estimate(body: EstimateRequest, server: Server, who: Who) -> dict[str, Any]:
    record = _upload_for(server, body.upload_id, who, body.kind) if body.upload_id else None
    duration = record["duration_s"] if record else (body.duration_s or 0.0)
    _, cost = _price(body.kind, body.options, duration)
    balance = None if who == LOCAL else server.store.balance(who)
    return {"cost_minutes": cost, "balance_minutes": balance,
            "enough": balance is None or balance >= cost}  # fmt: skip


@router.post("/jobs", status_code=201)
def create_job(body: JobRequest, server: Server, who: Who) -> dict[str, Any]:
    store = server.store
    record = _upload_for(server, body.upload_id, who, body.kind)
    parsed, cost = _price(body.kind, body.options, record["duration_s"] if record else 0.0)
    if who != LOCAL:
        available = store.balance(who) - store.committed_minutes(who)
        if available < cost:
            raise error(402, "not enough credits",
                        f"the job costs {cost:.2f} min; {available:.2f} min are free "
                        f"(short by {cost - available:.2f} min)")  # fmt: skip
    upload_id = record["id"] if record else ""
    if body.webhook_url is not None:
        try:
            check_url(body.webhook_url, server.options.webhooks.allow_private)
        except ValueError as exc:
            raise error(422, "invalid webhook_url", str(exc)) from None
    try:
        job = store.add_job(key_id(who), body.kind, parsed.stored(), upload_id, cost,
                            server.options.max_queued, body.webhook_url)  # fmt: skip
    except LookupError:
        raise error(404, "unknown upload", body.upload_id or "") from None
    if job is None:
        raise error(503, "queue full", "Try again later.", {"Retry-After": "30"})
    server.pool.wake()
    return job.public()


@router.get("/jobs")
def list_jobs(
    server: Server, who: Who, response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The caller's jobs, newest first, a page at a time. The body is a list, as before
    pages existed; when there are more, the next page's cursor comes in the
    ``Octavia-Next-Cursor`` header and a ``Link`` header (rel="next"). A cursor marks a
    place in the list, so jobs created meanwhile never shift or repeat a later page."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError:
        raise error(400, "invalid cursor", "Use the cursor a previous page gave.") from None
    jobs = server.store.jobs(key_id(who), limit + 1, after)
    if len(jobs) > limit:
        jobs = jobs[:limit]
        following = encode_cursor(jobs[-1])
        response.headers[protocol.NEXT_CURSOR_HEADER] = following
        response.headers["Link"] = (
            f'</api/v1/jobs?{urlencode({"limit": limit, "cursor": following})}>; rel="next"'
        )
    return [job.public() for job in jobs]


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at, job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError for anything a page did not give."""
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise ValueError(cursor) from None
    if not isinstance(created_at, int | float) or not isinstance(job_id, str):
        raise ValueError(cursor)
    return float(created_at), job_id


@router.get("/jobs/{job_id}")
def get_job(job_id: str, server: Server, who: Who) -> dict[str, Any]:
    return own_job(server.store, job_id, who).public()


@router.get("/jobs/{job_id}/deliveries")
def deliveries(job_id: str, server: Server, who: Who) -> dict[str, Any]:
    """The job's webhook events, each with every delivery attempt."""
    own_job(server.store, job_id, who)
    return {"job_id": job_id, "events": server.store.webhook_deliveries(job_id)}


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, server: Server, who: Who) -> dict[str, Any]:
    own_job(server.store, job_id, who)
    if server.store.cancel(job_id) == RUNNING:
        server.pool.cancel(job_id)
    job = server.store.job(job_id)
    assert job is not None
    return job.public()


@router.get("/jobs/{job_id}/results/{name}")
def result(job_id: str, name: str, server: Server, who: Who) -> FileResponse:
    job = own_job(server.store, job_id, who)
    if name not in {r["name"] for r in job.results}:
        raise error(404, "unknown result", name)
    path = server.options.data_dir / "jobs" / job_id / "out" / name
    return FileResponse(path, filename=name)


@router.get("/jobs/{job_id}/events")
async def events(job_id: str, server: Server, who: Who) -> EventSourceResponse:
    store = server.store
    own_job(store, job_id, who)
    queue = server.bus.subscribe(job_id)

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
            server.bus.unsubscribe(job_id, queue)

    return EventSourceResponse(stream(), ping=10)


def _price(kind: str, raw: dict[str, Any], duration_s: float) -> tuple[Any, float]:
    try:
        parsed = parse_options(kind, raw)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise error(422, "invalid options", detail) from None
    return parsed, cost_minutes(kind, parsed, duration_s)


def _upload_for(
    server: Services, upload_id: str | None, who: str, kind: str
) -> dict[str, Any] | None:
    if kind == "synthesize":
        return None
    record = server.store.upload(upload_id or "")
    if record is None or record["key_id"] != key_id(who):
        raise error(404, "unknown upload", upload_id or "")
    return record


def _final(job: Job) -> dict[str, Any]:
    return protocol.state_event(job.state, error=job.error, results=job.results)
