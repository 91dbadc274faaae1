"""The server's state in SQLite: API keys (hashed), the credit ledger, uploads and jobs.

A key's balance is the sum of its ledger entries, never a stored number, so every change of
balance has its entry. Jobs move queued -> running -> succeeded | failed | cancelled; the
state changes are single UPDATE statements guarded by the expected old state, so two
workers never take the same job.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octavia_cli.remote.protocol import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TERMINAL

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL REFERENCES keys(id),
    delta_minutes REAL NOT NULL,
    reason TEXT NOT NULL,
    job_id TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    key_id TEXT,
    filename TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key_id TEXT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    options TEXT NOT NULL,
    upload_id TEXT NOT NULL REFERENCES uploads(id),
    cost_minutes REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    progress TEXT NOT NULL DEFAULT '{}',
    results TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    runner TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at);
CREATE TABLE IF NOT EXISTS webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    key_id TEXT,
    url TEXT NOT NULL,
    state TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL DEFAULT 'pending',
    next_attempt_at REAL
);
CREATE INDEX IF NOT EXISTS webhook_events_due ON webhook_events(next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_events_job ON webhook_events(job_id, seq);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    address TEXT,
    duration_ms REAL
);
CREATE INDEX IF NOT EXISTS webhook_attempts_job ON webhook_attempts(job_id, id);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Columns added since the tables were first made: (table, column, declaration).
MIGRATIONS = (
    ("jobs", "runner", "TEXT"),
    ("jobs", "webhook_url", "TEXT"),
    ("keys", "webhook_url", "TEXT"),  # the key's default for its jobs
    ("keys", "webhook_secret", "TEXT"),  # made on first use
)

KEY_PREFIX = "oct_"


def hash_key(key: str) -> str:
    """SHA-256 of an API key: keys are 256-bit random tokens, so a fast hash is enough (a
    slow password hash protects guessable secrets, which these are not)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Job:
    id: str
    key_id: str | None
    kind: str
    state: str
    options: dict[str, Any]
    upload_id: str
    cost_minutes: float
    attempts: int = 0
    error: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    runner: str | None = None  # host:pid:start of the process running it
    webhook_url: str | None = None

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("key_id", "runner")}


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            for table, column, declaration in MIGRATIONS:
                names = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in names:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- keys and credits ----------------------------------------------------------------

    def create_key(self, name: str, credits_minutes: float = 0.0) -> tuple[str, str]:
        """A new key (returned once, stored hashed) and its id."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = uuid.uuid4().hex[:12]
        with self.transaction() as db:
            db.execute(
                "INSERT INTO keys (id, name, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, name, hash_key(key), key[:8], time.time()),
            )
            if credits_minutes:
                self._add_entry(db, key_id, credits_minutes, "credit", None)
        return key, key_id

    def any_keys(self) -> bool:
        """Whether a key is active (not revoked)."""
        return bool(self._query("SELECT 1 FROM keys WHERE revoked_at IS NULL LIMIT 1"))

    def ever_had_keys(self) -> bool:
        """Whether a key was ever created here, revoked ones included: such a data dir is
        served with keys only (revoking the last key closes the API, never opens it)."""
        return bool(self._query("SELECT 1 FROM keys LIMIT 1"))

    def key_for(self, key: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT id, name, prefix, revoked_at FROM keys WHERE hash = ?", hash_key(key)
        )
        return dict(rows[0]) if rows else None

    def keys(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT id, name, prefix, created_at, revoked_at, webhook_url FROM keys")
        return [dict(r) | {"balance_minutes": self.balance(r["id"])} for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
        return cursor.rowcount == 1

    def credit(self, key_id: str, minutes: float, reason: str = "credit") -> None:
        with self.transaction() as db:
            if not db.execute("SELECT 1 FROM keys WHERE id = ?", (key_id,)).fetchone():
                raise KeyError(key_id)
            self._add_entry(db, key_id, minutes, reason, None)

    @staticmethod
    def _add_entry(
        db: sqlite3.Connection, key_id: str, minutes: float, reason: str, job_id: str | None
    ) -> None:
        db.execute(
            "INSERT INTO ledger (key_id, delta_minutes, reason, job_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key_id, round(minutes, 4), reason, job_id, time.time()),
        )

    def balance(self, key_id: str) -> float:
        rows = self._query(
            "SELECT COALESCE(SUM(delta_minutes), 0) AS b FROM ledger WHERE key_id = ?", key_id
        )
        return round(float(rows[0]["b"]), 4)

    def ledger(self, key_id: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT delta_minutes, reason, job_id, created_at FROM ledger WHERE key_id = ? "
            "ORDER BY id DESC LIMIT ?",
            key_id,
            limit,
        )
        return [dict(r) for r in rows]

    # -- uploads -------------------------------------------------------------------------

    def add_upload(
        self, upload_id: str, key_id: str | None, filename: str, path: Path, size: int,
        duration_s: float,
    ) -> None:  # fmt: skip
        with self.transaction() as db:
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (upload_id, key_id, filename, str(path), size, duration_s, time.time()),
            )

    def upload(self, upload_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM uploads WHERE id = ?", upload_id)
        return dict(rows[0]) if rows else None

    def count_uploads(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM uploads")[0]["n"])

    def upload_bytes(self, key_id: str | None) -> int:
        """Bytes of the uploads kept for ``key_id`` (None: an open server's)."""
        rows = self._query(
            "SELECT COALESCE(SUM(size), 0) AS n FROM uploads WHERE key_id IS ?", key_id
        )
        return int(rows[0]["n"])

    def total_upload_bytes(self) -> int:
        return int(self._query("SELECT COALESCE(SUM(size), 0) AS n FROM uploads")[0]["n"])

    def expired_uploads(self, before: float) -> list[dict[str, Any]]:
        """Uploads made before ``before`` that no queued or running job needs (a finished
        job keeps its own link to its input)."""
        rows = self._query(
            "SELECT * FROM uploads WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM jobs "
            "WHERE jobs.upload_id = uploads.id AND jobs.state IN (?, ?))",
            before, QUEUED, RUNNING,
        )  # fmt: skip
        return [dict(r) for r in rows]

    def delete_upload(self, upload_id: str) -> bool:
        """Forget an upload, unless a queued or running job needs it (checked in the same
        transaction, so a job created meanwhile keeps it)."""
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM uploads WHERE id = ? AND NOT EXISTS (SELECT 1 FROM jobs "
                "WHERE upload_id = ? AND state IN (?, ?))",
                (upload_id, upload_id, QUEUED, RUNNING),
            )
        return cursor.rowcount == 1

    def expired_jobs(self, before: float) -> list[str]:
        """Finished jobs that ended before ``before``."""
        rows = self._query(
            f"SELECT id FROM jobs WHERE state IN ({', '.join('?' * len(TERMINAL))}) "
            "AND finished_at < ?",
            *sorted(TERMINAL), before,
        )  # fmt: skip
        return [row["id"] for row in rows]

    def delete_job(self, job_id: str) -> bool:
        """Forget a finished job and its webhook deliveries (its ledger entries stay: they
        are the key's history)."""
        with self.transaction() as db:
            cursor = db.execute(
                f"DELETE FROM jobs WHERE id = ? AND state IN ({', '.join('?' * len(TERMINAL))})",
                (job_id, *sorted(TERMINAL)),
            )
            if cursor.rowcount == 1:
                db.execute("DELETE FROM webhook_events WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM webhook_attempts WHERE job_id = ?", (job_id,))
        return cursor.rowcount == 1

    # -- jobs ----------------------------------------------------------------------------

    def add_job(
        self, key_id: str | None, kind: str, options: dict[str, Any], upload_id: str,
        cost_minutes: float, max_queued: int, webhook_url: str | None = None,
    ) -> Job | None:  # fmt: skip
        """Queue a job; None if the queue is full. Credits are checked by the caller. A job
        without ``webhook_url`` takes its key's default.

        Raises:
            LookupError: the upload is gone.
        """
        job = Job(uuid.uuid4().hex[:16], key_id, kind, QUEUED, options, upload_id,
                  round(cost_minutes, 4), created_at=time.time())  # fmt: skip
        with self.transaction() as db:
            queued = db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (QUEUED,))
            if queued.fetchone()[0] >= max_queued:
                return None
            exists = db.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone()
            if upload_id and not exists:
                raise LookupError(upload_id)  # deleted (expired) since the caller looked
            if webhook_url is None and key_id is not None:
                row = db.execute("SELECT webhook_url FROM keys WHERE id = ?", (key_id,))
                webhook_url = (row.fetchone() or {"webhook_url": None})["webhook_url"]
            job.webhook_url = webhook_url
            db.execute(
                "INSERT INTO jobs (id, key_id, kind, state, options, upload_id, cost_minutes, "
                "created_at, webhook_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, key_id, kind, QUEUED, json.dumps(options), upload_id,
                 job.cost_minutes, job.created_at, webhook_url),
            )  # fmt: skip
            self._emit(db, job.id)
        return job

    def job(self, job_id: str) -> Job | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", job_id)
        return _job(rows[0]) if rows else None

    def jobs(
        self, key_id: str | None, limit: int = 100, after: tuple[float, str] | None = None
    ) -> list[Job]:
        """``key_id``'s jobs, newest first (ties by id), from after the job ``after``
        (its ``(created_at, id)``) on."""
        if after is None:
            rows = self._query(
                "SELECT * FROM jobs WHERE key_id IS ? ORDER BY created_at DESC, id DESC LIMIT ?",
                key_id, limit,
            )  # fmt: skip
        else:
            rows = self._query(
                "SELECT * FROM jobs WHERE key_id IS ? AND (created_at < ? OR "
                "(created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?",
                key_id, after[0], after[0], after[1], limit,
            )  # fmt: skip
        return [_job(r) for r in rows]

    def committed_minutes(self, key_id: str) -> float:
        """Minutes the key's queued and running jobs will cost."""
        rows = self._query(
            "SELECT COALESCE(SUM(cost_minutes), 0) AS n FROM jobs WHERE key_id = ? "
            "AND state IN (?, ?)",
            key_id, QUEUED, RUNNING,
        )  # fmt: skip
        return float(rows[0]["n"])

    def count_jobs(self) -> dict[tuple[str, str], int]:
        """Jobs by (state, kind)."""
        rows = self._query("SELECT state, kind, COUNT(*) AS n FROM jobs GROUP BY state, kind")
        return {(row["state"], row["kind"]): row["n"] for row in rows}

    def queued_count(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM jobs WHERE state = ?", QUEUED)[0]["n"])

    def claim_next(self, runner: str | None = None) -> Job | None:
        """Take the oldest queued job (atomically) and mark it running by ``runner``."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = ? ORDER BY created_at LIMIT 1", (QUEUED,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = ?, started_at = ?, attempts = attempts + 1, runner = ? "
                "WHERE id = ? AND state = ?",
                (RUNNING, time.time(), runner, row["id"], QUEUED),
            )
            self._emit(db, row["id"])
        return self.job(row["id"])

    def set_results(self, job_id: str, results: list[dict[str, Any]]) -> None:
        """A finished job's results, written again (a dub edited in the review pages)."""
        with self.transaction() as db:
            db.execute("UPDATE jobs SET results = ? WHERE id = ?", (json.dumps(results), job_id))

    def set_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(progress), job_id))

    def finish(
        self, job_id: str, state: str, *, error: str | None = None,
        results: list[dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """End a running job; a success charges its cost to the key, in the same
        transaction, so a charge and a success never come apart."""
        with self.transaction() as db:
            job = db.execute("SELECT key_id, cost_minutes, state FROM jobs WHERE id = ?",
                             (job_id,)).fetchone()  # fmt: skip
            if job is None or job["state"] in TERMINAL:
                return
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, results = ?, finished_at = ? WHERE id = ?",
                (state, error, json.dumps(results or []), time.time(), job_id),
            )
            if state == SUCCEEDED and job["key_id"] is not None and job["cost_minutes"]:
                self._add_entry(db, job["key_id"], -job["cost_minutes"], "job", job_id)
            self._emit(db, job_id)

    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued job at once; a running one is flagged for its worker. Returns
        the state after the call."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
                (CANCELLED, time.time(), job_id, QUEUED),
            )
            if cursor.rowcount:
                self._emit(db, job_id)
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row["state"] if row else None

    def recover(
        self, max_attempts: int, alive: Callable[[str | None], bool] = lambda runner: False
    ) -> tuple[int, int]:
        """On start: running jobs whose runner is gone (``alive(runner)`` is false) go back
        to the queue (their project resumes from its last finished stage), or fail if they
        were interrupted too often. A job whose runner still runs is left to it."""
        requeued = failed = 0
        reason = f"interrupted {max_attempts} times (the server stopped while it ran)"
        with self.transaction() as db:
            rows = db.execute(
                "SELECT id, attempts, runner FROM jobs WHERE state = ?", (RUNNING,)
            ).fetchall()
            for row in rows:
                if alive(row["runner"]):
                    continue
                if row["attempts"] >= max_attempts:
                    db.execute(
                        "UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                        (FAILED, reason, time.time(), row["id"]),
                    )
                    failed += 1
                else:
                    db.execute(
                        "UPDATE jobs SET state = ?, runner = NULL WHERE id = ?", (QUEUED, row["id"])
                    )
                    requeued += 1
                self._emit(db, row["id"])
        return requeued, failed

    # -- webhooks (see :mod:`octavia_cli.server.webhooks`) --------------------------------

    @staticmethod
    def _emit(db: sqlite3.Connection, job_id: str) -> None:
        """Queue the webhook event of the job's new state, in the transaction that changed
        it (nothing if the job has no webhook)."""
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or not row["webhook_url"]:
            return
        now = time.time()
        event_id = "evt_" + uuid.uuid4().hex
        payload = {
            "event_id": event_id, "type": "job.state", "occurred_at": round(now, 3),
            "job_id": job_id, "kind": row["kind"], "state": row["state"],
            "error": row["error"] if row["state"] in TERMINAL else None,
            "results": json.loads(row["results"]) if row["state"] == SUCCEEDED else [],
        }  # fmt: skip
        db.execute(
            "INSERT INTO webhook_events (id, job_id, key_id, url, state, payload, created_at, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, job_id, row["key_id"], row["webhook_url"], row["state"],
             json.dumps(payload), now, now),
        )  # fmt: skip

    def due_webhook_events(self, now: float, limit: int = 20) -> list[dict[str, Any]]:
        """Pending events due by ``now``: of each job only its oldest pending one, so a
        receiver gets a job's states in order."""
        rows = self._query(
            "SELECT * FROM webhook_events AS e WHERE e.outcome = 'pending' "
            "AND e.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM webhook_events AS p "
            "WHERE p.job_id = e.job_id AND p.outcome = 'pending' AND p.seq < e.seq) "
            "ORDER BY e.next_attempt_at LIMIT ?",
            now, limit,
        )  # fmt: skip
        return [dict(r) | {"payload": json.loads(r["payload"])} for r in rows]

    def record_webhook_attempt(
        self, event_id: str, number: int, *, outcome: str, status: int | None = None,
        error: str | None = None, address: str | None = None, duration_ms: float | None = None,
        next_attempt_at: float | None = None,
    ) -> None:  # fmt: skip
        """Record attempt ``number`` of an event (``outcome``: delivered, failed or refused)
        and when the next one is due (None: none; a failed event is then given up)."""
        state = outcome if outcome != "failed" or next_attempt_at is None else "pending"
        with self.transaction() as db:
            row = db.execute("SELECT job_id FROM webhook_events WHERE id = ?", (event_id,))
            found = row.fetchone()
            if found is None:  # its job was deleted meanwhile
                return
            db.execute(
                "INSERT INTO webhook_attempts (event_id, job_id, attempt, at, outcome, status, "
                "error, address, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event_id, found["job_id"], number, time.time(), outcome, status, error,
                 address, duration_ms),
            )  # fmt: skip
            db.execute(
                "UPDATE webhook_events SET attempts = ?, outcome = ?, next_attempt_at = ? "
                "WHERE id = ?",
                (number, state, next_attempt_at, event_id),
            )

    def webhook_deliveries(self, job_id: str) -> list[dict[str, Any]]:
        """The job's webhook events, oldest first, each with its attempts."""
        attempts: dict[str, list[dict[str, Any]]] = {}
        for row in self._query(
            "SELECT event_id, attempt, at, outcome, status, error, address, duration_ms "
            "FROM webhook_attempts WHERE job_id = ? ORDER BY id", job_id,
        ):  # fmt: skip
            attempt = dict(row)
            attempts.setdefault(attempt.pop("event_id"), []).append(attempt)
        rows = self._query(
            "SELECT id, url, state, created_at, attempts, outcome, next_attempt_at "
            "FROM webhook_events WHERE job_id = ? ORDER BY seq",
            job_id,
        )
        return [dict(r) | {"deliveries": attempts.get(r["id"], [])} for r in rows]

    def webhook_counts(self) -> tuple[dict[str, int], int]:
        """Delivery attempts by outcome, and the events still pending."""
        rows = self._query("SELECT outcome, COUNT(*) AS n FROM webhook_attempts GROUP BY outcome")
        pending = self._query("SELECT COUNT(*) AS n FROM webhook_events WHERE outcome = 'pending'")
        return {row["outcome"]: row["n"] for row in rows}, int(pending[0]["n"])

    def webhook_secret(self, key_id: str | None, rotate: bool = False) -> str:
        """The secret that signs the webhooks of ``key_id``'s jobs (None: an open server's
        jobs), made on first use; ``rotate`` replaces it.

        Raises:
            KeyError: no such key.
        """
        fresh = "whsec_" + secrets.token_urlsafe(32)
        with self.transaction() as db:
            if key_id is None:
                if rotate:
                    db.execute("DELETE FROM secrets WHERE name = 'webhook'")
                db.execute(
                    "INSERT OR IGNORE INTO secrets (name, value) VALUES ('webhook', ?)", (fresh,)
                )
                row = db.execute("SELECT value FROM secrets WHERE name = 'webhook'").fetchone()
                return str(row["value"])
            row = db.execute("SELECT webhook_secret FROM keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise KeyError(key_id)
            if row["webhook_secret"] and not rotate:
                return str(row["webhook_secret"])
            db.execute("UPDATE keys SET webhook_secret = ? WHERE id = ?", (fresh, key_id))
        return fresh

    def set_key_webhook(self, key_id: str, url: str | None) -> None:
        """The webhook URL of the key's jobs that name none (None: no default).

        Raises:
            KeyError: no such key.
        """
        with self.transaction() as db:
            cursor = db.execute("UPDATE keys SET webhook_url = ? WHERE id = ?", (url, key_id))
            if cursor.rowcount != 1:
                raise KeyError(key_id)


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["options"] = json.loads(data["options"])
    data["progress"] = json.loads(data["progress"])
    data["results"] = json.loads(data["results"])
    return Job(**data)
