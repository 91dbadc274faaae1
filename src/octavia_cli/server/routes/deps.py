"""What every route needs: the server's parts (:class:`Services`, kept on ``app.state``), the
caller's identity from the ``Authorization`` header, and errors in the API's JSON shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from octavia_cli.server.metrics import Metrics
from octavia_cli.server.options import ServerOptions
from octavia_cli.server.store import Job, Store
from octavia_cli.server.worker import EventBus

LOCAL = "local"  # the identity of requests to a server open without keys (--no-auth)


@dataclass(frozen=True)
class Services:
    options: ServerOptions
    store: Store
    bus: EventBus
    pool: Any  # WorkerPool, or CeleryDispatcher with a broker
    metrics: Metrics
    open_without_keys: Callable[[], bool]  # decided per request: a new key closes it


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


Server = Annotated[Services, Depends(services)]


def error(status: int, error: str, detail: str = "", headers: dict[str, str] | None = None):
    return HTTPException(status, {"error": error, "detail": detail}, headers=headers)


def identity(server: Server, authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller's key id, or :data:`LOCAL` on a server open without keys."""
    if not authorization:
        if not server.open_without_keys():
            raise error(401, "missing API key", "Send Authorization: Bearer <key>.",
                        {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return LOCAL
    scheme, _, key = authorization.partition(" ")
    record = server.store.key_for(key.strip()) if scheme.lower() == "bearer" else None
    if record is None:
        raise error(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if record["revoked_at"] is not None:
        raise error(401, "revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return str(record["id"])


Who = Annotated[str, Depends(identity)]


def key_id(who: str) -> str | None:
    """The key the caller's records belong to (None on an open server)."""
    return None if who == LOCAL else who


def own_job(store: Store, job_id: str, who: str) -> Job:
    job = store.job(job_id)
    if job is None or job.key_id != key_id(who):
        raise error(404, "unknown job", job_id)
    return job
