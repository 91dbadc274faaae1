"""Prometheus metrics of ``octavia serve`` (``GET /metrics``, the text exposition format):
jobs by state and kind, the queue's depth, the number of workers, how long each stage
takes (a histogram fed by the workers' progress events), the bytes of uploads kept, and
what the retention cleaner deleted.

Each app has its own registry, so several servers in one process (the tests) do not mix
their numbers. Job counts are read from the store at scrape time, so they survive a
restart and agree with ``GET /jobs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from octavia_cli.server.retention import Cleaner
from octavia_cli.server.store import Store

STAGE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class _StoreCollector(Collector):
    def __init__(
        self, store: Store, workers: Callable[[], int], cleaner: Cleaner | None = None
    ) -> None:
        self.store = store
        self.workers = workers
        self.cleaner = cleaner

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        jobs = GaugeMetricFamily(
            "octavia_jobs", "Jobs by state and kind.", labels=["state", "kind"]
        )
        for (state, kind), count in self.store.count_jobs().items():
            jobs.add_metric([state, kind], count)
        yield jobs
        yield GaugeMetricFamily(
            "octavia_queue_depth", "Jobs waiting for a worker.", value=self.store.queued_count()
        )
        yield GaugeMetricFamily(
            "octavia_workers", "Workers (threads, or Celery workers answering).",
            value=self.workers(),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "octavia_uploads_bytes", "Bytes of uploads kept on the server.",
            value=self.store.total_upload_bytes(),
        )  # fmt: skip
        attempts, pending = self.store.webhook_counts()
        deliveries = CounterMetricFamily(
            "octavia_webhook_deliveries", "Webhook delivery attempts by outcome.",
            labels=["outcome"],
        )  # fmt: skip
        for outcome in ("delivered", "failed", "refused"):
            deliveries.add_metric([outcome], attempts.get(outcome, 0))
        yield deliveries
        yield GaugeMetricFamily(
            "octavia_webhook_pending", "Webhook events waiting for a (next) attempt.",
            value=pending,
        )  # fmt: skip
        if self.cleaner is not None:
            deleted = CounterMetricFamily(
                "octavia_cleanup_deleted", "Expired uploads and finished jobs deleted.",
                labels=["what"],
            )  # fmt: skip
            for what, count in self.cleaner.deleted.items():
                deleted.add_metric([what], count)
            yield deleted


class Metrics:
    def __init__(
        self, store: Store, workers: Callable[[], int], cleaner: Cleaner | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(store, workers, cleaner))
        self.stage_seconds = Histogram(
            "octavia_stage_seconds",
            "Wall time of each stage run by a worker (skipped stages not counted).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self._started: dict[tuple[str, str], float] = {}

    def on_event(self, job_id: str, event: dict[str, Any]) -> None:
        """Feed a worker's progress event: a stage's start and end make one observation."""
        stage, status = event.get("stage", ""), event.get("status", "")
        key = (job_id, stage)
        if status == "started":
            self._started[key] = time.monotonic()
        elif status in ("done", "skipped") and key in self._started:
            began = self._started.pop(key)
            if status == "done":
                # Stage names carry the language (translate:es): one series per stage kind.
                self.stage_seconds.labels(stage.split(":")[0]).observe(time.monotonic() - began)

    def render(self) -> bytes:
        return generate_latest(self.registry)
