"""Running a command on a backend instead of locally: upload, job, live progress in the same
display, results downloaded to the paths a local run would write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from octavia_cli.errors import InputError, StageError
from octavia_cli.media.ffmpeg import probe
from octavia_cli.progress import ProgressEvent, ProgressHook, StageStatus
from octavia_cli.remote import protocol
from octavia_cli.remote.client import Client, RemoteError
from octavia_cli.remote.runs import RemoteRuns


def estimate(client: Client, kind: str, source: Path, options: dict[str, Any]) -> dict:

    return client.estimate(kind, probe(source).duration_s, options)


def run_remote(
    client: Client,
    kind: str,
    source: Path,
    options: dict[str, Any],
    destinations: Callable[[dict[str, Any]], Path | None],
    hook: ProgressHook,
) -> dict[str, Path]:
    """Run a job of ``kind`` on ``source`` (or re-attach to this command's job, left by a
    client that died) and download each result to ``destinations(result)`` (None: skip
    it). Returns name -> path. Ctrl-C cancels the job."""
    runs = RemoteRuns()
    job_id = submit(client, kind, source, options, hook, runs=runs)
    try:
        return finish(client, job_id, destinations, hook, runs)
    except KeyboardInterrupt:
        client.cancel(job_id)
        runs.forget(job_id)
        raise


def submit(
    client: Client, kind: str, source: Path, options: dict[str, Any], hook: ProgressHook,
    webhook_url: str | None = None, runs: RemoteRuns | None = None,
) -> str:  # fmt: skip
    """Upload ``source`` and queue a job of ``kind`` on it (reported to ``webhook_url``);
    returns the job's id. With ``runs``, a job this same command made before and did not
    see to its end (queued, running or done on the backend) is re-attached to instead:
    nothing is uploaded or charged again."""
    key = None
    if runs is not None:
        key = runs.key(client.url, client.api_key, kind, source,
                       {**options, "webhook_url": webhook_url})  # fmt: skip
        earlier = runs.job_for(key)
        if earlier is not None:
            if _still_there(client, earlier):
                hook(ProgressEvent("upload", StageStatus.SKIPPED,
                                   message=f"re-attached to job {earlier}"))  # fmt: skip
                return earlier
            runs.forget(earlier)
    hook(ProgressEvent("upload", StageStatus.STARTED, total=float(source.stat().st_size)))
    uploaded = client.upload(
        source,
        lambda sent, total: hook(
            ProgressEvent("upload", StageStatus.RUNNING, completed=sent, total=total)
        ),
    )
    hook(ProgressEvent("upload", StageStatus.DONE, message=uploaded["id"]))
    job_id = str(client.create_job(kind, uploaded["id"], options, webhook_url)["id"])
    if runs is not None and key is not None:
        runs.remember(key, job_id)
    return job_id


def _still_there(client: Client, job_id: str) -> bool:
    """Whether the backend still has ``job_id`` queued, running or succeeded."""
    try:
        state = client.job(job_id)["state"]
    except InputError:  # 404: deleted, or not this key's
        return False
    return state in (protocol.QUEUED, protocol.RUNNING, protocol.SUCCEEDED)


def finish(
    client: Client,
    job_id: str,
    destinations: Callable[[dict[str, Any]], Path | None],
    hook: ProgressHook,
    runs: RemoteRuns | None = None,
) -> dict[str, Path]:
    """Follow the job's progress to its end, then download each result to
    ``destinations(result)`` (a result of :mod:`protocol`; None: skip it). Returns name ->
    path.

    Raises:
        StageError: the job failed or was cancelled on the backend.
    """
    final: dict[str, Any] = {}
    for event in client.follow(job_id):
        if event.get("type") == "progress":
            data = {k: v for k, v in event.items() if k != "type"}
            data["status"] = StageStatus(data["status"])
            hook(ProgressEvent(**data))
        elif protocol.is_final(event):
            final = event
    if final.get("state") != protocol.SUCCEEDED:
        if runs is not None:
            runs.forget(job_id)  # the same command starts a new job
        raise StageError(
            f"The job {job_id} {final.get('state', 'ended')} on the backend: "
            f"{final.get('error') or 'no reason given'}.",
            "Run the same command again (finished stages are kept on the server too).",
        )
    written: dict[str, Path] = {}
    for result in final.get("results", []):
        destination = destinations(result)
        if destination is None:
            continue
        hook(ProgressEvent(f"download {result['name']}", StageStatus.STARTED))
        client.download(job_id, result["name"], destination)
        hook(ProgressEvent(f"download {result['name']}", StageStatus.DONE))
        written[result["name"]] = destination
    if runs is not None:
        runs.forget(job_id)
    if not written:
        raise RemoteError(f"The job {job_id} returned no result this command expects.")
    return written
