"""The HTTP API of ``octavia serve`` (FastAPI), under ``/api/v1``: :func:`create_app` puts
the server's parts together (the job store, the worker pool or the Celery dispatcher, the
event bus, the cleaner, the metrics) and mounts the routers of :mod:`.routes`.

Uploads are streamed to disk and accepted only if ffprobe reads them as media; jobs are
rows in SQLite run by the worker pool; progress is streamed as Server-Sent Events carrying
the same events the CLI renders. Errors are JSON ``{"error": ..., "detail": ...}`` with a
4xx status; no stack trace ever reaches a response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from octavia_cli import __version__
from octavia_cli.server.distributed import CeleryDispatcher
from octavia_cli.server.errors import json_errors
from octavia_cli.server.metrics import Metrics
from octavia_cli.server.options import ServerOptions
from octavia_cli.server.retention import Cleaner
from octavia_cli.server.routes import jobs, review, service, uploads, voices
from octavia_cli.server.routes.deps import Services
from octavia_cli.server.security import HostCheck, allowed_hosts, is_loopback
from octavia_cli.server.store import Store
from octavia_cli.server.webhooks import WebhookSender, system_resolver
from octavia_cli.server.worker import EventBus, WorkerPool

logger = logging.getLogger(__name__)


def create_app(options: ServerOptions) -> FastAPI:
    store = Store(options.data_dir / "octavia.db")
    bus = EventBus()
    pool: Any
    if options.broker:
        pool = CeleryDispatcher(store, options.data_dir, bus, options.broker)
    else:
        pool = WorkerPool(store, options.data_dir, bus, options.workers)
    cleaner = Cleaner(store, options.data_dir, options.retention)
    hooks = options.webhooks
    shown = f"[{options.host}]" if ":" in options.host else options.host
    sender = WebhookSender(
        store, base_url=hooks.public_url or f"http://{shown}:{options.port}",
        allow_private=hooks.allow_private, retry_s=hooks.retry_s, give_up_s=hooks.give_up_s,
        resolver=hooks.resolver or system_resolver,
    )  # fmt: skip
    metrics = Metrics(store, lambda: pool.workers, cleaner)
    pool.on_event = metrics.on_event
    loopback = is_loopback(options.host)

    def open_without_keys() -> bool:
        """Decided on every request: creating a key closes an open server at once."""
        return options.no_auth and loopback and not store.ever_had_keys()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.start()
        cleaner.start()
        sender.start()
        yield
        sender.stop()
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
    app.state.services = Services(options, store, bus, pool, metrics, open_without_keys)
    app.add_middleware(
        HostCheck, allowed=allowed_hosts(options.host, options.port), active=open_without_keys
    )
    json_errors(app)
    for module in (service, uploads, jobs, voices):
        app.include_router(module.router)
    app.include_router(review.router(app.state.services))
    return app
