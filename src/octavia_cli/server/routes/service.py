"""Health, the caller's account, and the Prometheus scrape target."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from octavia_cli import __version__
from octavia_cli.server.routes.deps import LOCAL, Server, Who

router = APIRouter()


@router.get("/api/v1/health")
def health(server: Server) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "queued": server.store.queued_count(),
            "workers": server.pool.workers}  # fmt: skip


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(server: Server) -> Response:
    """Prometheus scrape target: job counts and stage times, no keys or file names."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(server.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/account")
def account(server: Server, who: Who) -> dict[str, Any]:
    if who == LOCAL:
        return {"key": None, "balance_minutes": None, "usage": []}
    store = server.store
    record = next(k for k in store.keys() if k["id"] == who)  # noqa: SIM118 (a method)
    return {
        "key": {"id": who, "name": record["name"], "prefix": record["prefix"]},
        "balance_minutes": store.balance(who),
        "usage": store.ledger(who),
    }
