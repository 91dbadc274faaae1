"""One ``octavia serve`` per data dir, and who runs each job.

Serve holds an exclusive ``flock`` on ``<data dir>/serve.lock`` (the file names the holder's
pid and host) for as long as it runs; the kernel releases it when the process ends, even by
``kill -9``, so a stale file never blocks a restart. A second serve on the same data dir is
refused with a sentence naming the first. ``octavia worker`` processes (Celery) share the
data dir with serve and take no lock: they never recover jobs.

Each job claimed by serve records its runner: host, pid and the process's start time (from
``/proc``, so a pid reused by another process, or by a restarted container, is not taken
for the old one). Start-up recovery requeues only the running jobs whose runner is gone.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import IO

from octavia_cli.errors import InputError

LOCK_NAME = "serve.lock"


def lock_data_dir(folder: Path) -> IO[str]:
    """Take ``folder``'s serve lock; keep the returned file open while serving.

    Raises:
        InputError: another process holds it (the message names its pid and host).
    """
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 (held open)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().split()
        handle.close()
        pid, host = [*owner, "?", "?"][:2]
        raise InputError(
            f"Another octavia serve (pid {pid} on {host}) is using {folder}.",
            "Stop it first, or give this one another --data-dir.",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {socket.gethostname()}\n")
    handle.flush()
    return handle


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after "pid (comm)"


def runner_of(pid: int) -> str:
    """The runner id of process ``pid`` on this host: ``host:pid:start``."""
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '-'}"


@functools.cache
def this_runner() -> str:
    return runner_of(os.getpid())


def runner_alive(runner: str | None) -> bool:
    """Whether the process that claimed a job still runs. A runner on another host counts
    as gone: serve holds the data dir's lock, so no other serve is using it."""
    if not runner:
        return False
    host, _, rest = runner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if start != "-":
        return _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
