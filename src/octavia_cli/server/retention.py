"""What ``octavia serve`` keeps, and for how long: uploads and finished jobs expire.

An upload is deleted ``serve.upload_retention_hours`` after it was made, once no queued or
running job needs it (a finished job keeps its own link to its input, in its folder). A
finished job (its record, its project and its results) is deleted ``serve.retention_days``
after it ended; its ledger entries stay, as the key's history. The cleaner runs in a thread
of serve, on start and then every ``serve.cleanup_interval_minutes``; its counts are in
``/metrics`` (``octavia_cleanup_deleted_total``). The clock is a parameter, so tests move
time instead of waiting.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from octavia_cli.server.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    upload_s: float = 24 * 3600.0  # 0: kept forever
    job_s: float = 30 * 24 * 3600.0  # 0: kept forever
    interval_s: float = 600.0


class Cleaner:
    def __init__(
        self, store: Store, data_dir: Path, retention: Retention,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.store, self.data_dir, self.retention, self.clock = store, data_dir, retention, clock
        self.deleted = {"uploads": 0, "jobs": 0}  # since start, for /metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int]:
        """Delete what has expired now (jobs first: their uploads may expire with them)."""
        now = self.clock()
        done = {"uploads": 0, "jobs": 0}
        if self.retention.job_s > 0:
            for job_id in self.store.expired_jobs(now - self.retention.job_s):
                if self.store.delete_job(job_id):
                    shutil.rmtree(self.data_dir / "jobs" / job_id, ignore_errors=True)
                    done["jobs"] += 1
        if self.retention.upload_s > 0:
            uploads = self.data_dir / "uploads"
            for upload in self.store.expired_uploads(now - self.retention.upload_s):
                if self.store.delete_upload(upload["id"]):
                    folder = Path(upload["path"]).parent
                    if folder.parent.resolve() == uploads.resolve():  # uploads/<id>/ only
                        shutil.rmtree(folder, ignore_errors=True)
                    done["uploads"] += 1
        for what, count in done.items():
            self.deleted[what] += count
        if any(done.values()):
            logger.info("expired: %d upload(s), %d job(s) deleted", done["uploads"], done["jobs"])
        return done

    def start(self) -> None:
        def loop() -> None:
            while True:
                try:
                    self.run_once()
                except Exception:  # a failed pass must not stop the next ones
                    logger.exception("cleaning up expired uploads and jobs failed")
                if self._stop.wait(self.retention.interval_s):
                    return

        self._thread = threading.Thread(target=loop, name="octavia-cleanup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
