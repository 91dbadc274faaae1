"""The jobs this machine has on a backend, per input, so that a command run again after
its client died (killed, a lost connection, a closed laptop) re-attaches to its job
instead of uploading the file again and paying twice.

A run is keyed by the backend, the API key, the kind of job, the input (its absolute path,
size and modification time: an edited file is a new run) and the options. The entry is
written as soon as the job is created and removed once its results are downloaded, or
when the job is cancelled (Ctrl-C cancels, deliberately) or found failed, cancelled or
gone on the backend. Kept in ``<user cache>/octavia/remote-runs.json``, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from octavia_cli.files import atomic_write_bytes

MAX_AGE_S = 30 * 24 * 3600.0  # older entries are dropped (the backend's retention is 30 d)


def default_path() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("octavia", appauthor=False) / "remote-runs.json"


class RemoteRuns:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._lock = threading.Lock()

    @staticmethod
    def key(url: str, api_key: str, kind: str, source: Path, options: dict[str, Any]) -> str:
        """The run's key: what must be the same for a job to be this command's."""
        stat = source.stat()
        identity = [
            url.rstrip("/"), hashlib.sha256(api_key.encode()).hexdigest(), kind,
            str(source.resolve()), stat.st_size, stat.st_mtime_ns, options,
        ]  # fmt: skip
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, runs: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, json.dumps(runs, indent=1).encode("utf-8"))
        os.chmod(self.path, 0o600)

    def job_for(self, key: str) -> str | None:
        entry = self._read().get(key)
        return str(entry["job"]) if entry else None

    def remember(self, key: str, job_id: str) -> None:
        with self._lock:
            runs = self._read()
            now = time.time()
            runs = {k: v for k, v in runs.items() if now - v.get("at", 0) < MAX_AGE_S}
            runs[key] = {"job": job_id, "at": now}
            self._write(runs)

    def forget(self, job_id: str) -> None:
        """Drop every entry of ``job_id`` (nothing to do if there is none)."""
        with self._lock:
            runs = self._read()
            kept = {k: v for k, v in runs.items() if v.get("job") != job_id}
            if len(kept) != len(runs):
                self._write(kept)
