"""What ``octavia serve`` is started with: :class:`ServerOptions`, from its command line and
the ``serve.*`` settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octavia_cli.server.retention import Retention


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
    webhooks: WebhookOptions = field(default_factory=lambda: WebhookOptions())


@dataclass(frozen=True)
class WebhookOptions:
    """How webhooks are delivered (the ``serve.*`` settings; see
    :mod:`octavia_cli.server.webhooks`)."""

    public_url: str = ""  # the base of result links; default: http://HOST:PORT
    allow_private: bool = False
    retry_s: float = 10.0
    give_up_s: float = 24 * 3600.0
    resolver: Callable[[str, int], list[str]] | None = None  # tests: a stub; None: the system's


def webhooks_of(settings: Any) -> WebhookOptions:
    return WebhookOptions(
        public_url=settings.serve.public_url,
        allow_private=settings.serve.webhooks_allow_private,
        retry_s=settings.serve.webhook_retry_seconds,
        give_up_s=settings.serve.webhook_retry_hours * 3600,
    )


def retention_of(settings: Any) -> Retention:
    """The ``serve.*`` settings' retention times, in seconds."""
    return Retention(
        upload_s=settings.serve.upload_retention_hours * 3600,
        job_s=settings.serve.retention_days * 24 * 3600,
        interval_s=settings.serve.cleanup_interval_minutes * 60,
    )
