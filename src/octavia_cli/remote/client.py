"""The client of an Octavia backend (``octavia serve`` or the hosted one): upload, jobs,
live progress over SSE, and downloads that resume.

Every failure becomes one of Octavia's errors with a sentence a user can act on; a dropped
connection while following a job or downloading a result is retried (re-attaching to the
job, resuming the download with a Range request).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from octavia_cli.errors import ConfigError, InputError, OctaviaError, StageError
from octavia_cli.remote import protocol

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
RETRIES = 5


class RemoteError(OctaviaError):
    """The backend refused a request or could not be reached."""


class CreditError(RemoteError):
    pass


class Client:
    def __init__(self, url: str, api_key: str = "", timeout_s: float = 30.0) -> None:
        if not url:
            raise ConfigError(
                "No Octavia backend is configured.", "Run: octavia login --url URL --api-key KEY"
            )
        if not url.startswith(("http://", "https://")):
            example = f"http://{url}" if "://" not in url else "https://octavia.example.com"
            raise ConfigError(
                f"The backend URL must start with http:// or https://, not '{url}'.",
                f"For example: octavia login --url {example}",
            )
        self.url = url.rstrip("/")
        self.api_key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    @classmethod
    def from_settings(cls, settings: Any) -> Client:
        return cls(settings.remote.url, settings.remote.api_key)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/api/v1{path}", **kwargs)
        except httpx.TransportError as exc:
            raise RemoteError(
                f"Cannot reach the Octavia backend at {self.url} ({exc}).",
                "Check the URL (octavia login --url ...) and the network.",
            ) from None
        _raise_for(response)
        return response

    # -- account -------------------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        return self._request("GET", "/account").json()

    def estimate(self, kind: str, duration_s: float, options: dict[str, Any]) -> dict[str, Any]:
        body = {"kind": kind, "duration_s": duration_s, "options": options}
        return self._request("POST", "/estimate", json=body).json()

    # -- work ----------------------------------------------------------------------------

    def upload(self, path: Path, on_progress: Callable[[int, int], None] | None = None) -> dict:
        total = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    sent += len(chunk)
                    if on_progress:
                        on_progress(sent, total)
                    yield chunk

        return self._request(
            "PUT",
            "/uploads",
            params={"filename": path.name},
            content=chunks(),
            headers={"Content-Length": str(total)},
            timeout=None,
        ).json()

    def create_job(
        self, kind: str, upload_id: str | None, options: dict[str, Any],
        webhook_url: str | None = None,
    ) -> dict:  # fmt: skip
        body: dict[str, Any] = {"kind": kind, "upload_id": upload_id, "options": options}
        if webhook_url:
            body["webhook_url"] = webhook_url
        return self._request("POST", "/jobs", json=body).json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/jobs/{job_id}").json()

    def jobs(self, limit: int = 100, page: int = 100) -> Iterator[dict[str, Any]]:
        """The key's jobs, newest first, up to ``limit``, fetched ``page`` at a time
        (following the server's cursor; a server of before pages answers once)."""
        params: dict[str, Any] = {"limit": min(page, limit)}
        given = 0
        while True:
            response = self._request("GET", "/jobs", params=params)
            for job in response.json():
                yield job
                given += 1
                if given >= limit:
                    return
            cursor = response.headers.get(protocol.NEXT_CURSOR_HEADER)
            if not cursor:
                return
            params = {"limit": min(page, limit - given), "cursor": cursor}

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/jobs/{job_id}/cancel").json()

    def follow(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The job's events until it ends; after a dropped connection, re-attach (the server
        replays each stage's latest state first)."""
        from httpx_sse import connect_sse

        failures = 0
        while True:
            try:
                with connect_sse(
                    self._http, "GET", f"/api/v1/jobs/{job_id}/events", timeout=None
                ) as source:
                    _raise_for(source.response)
                    for message in source.iter_sse():
                        if not message.data:
                            continue
                        event = json.loads(message.data)
                        failures = 0
                        yield event
                        if protocol.is_final(event):
                            return
            except httpx.TransportError as exc:
                failures += 1
                if failures > RETRIES:
                    raise RemoteError(
                        f"Lost the connection to {self.url} ({exc}).",
                        f"The job goes on: follow it again with the same command ({job_id}).",
                    ) from None
                logger.warning("connection lost (%s); re-attaching to job %s", exc, job_id)
                time.sleep(min(2**failures * 0.25, 5))
            else:  # the stream ended without a final state: look at the job
                job = self.job(job_id)
                if job["state"] in protocol.TERMINAL:
                    yield protocol.state_event(job["state"], error=job["error"],
                                               results=job["results"])  # fmt: skip
                    return

    def download(self, job_id: str, name: str, destination: Path) -> None:
        """Fetch a result to ``destination`` atomically, resuming a partial download."""
        partial = destination.with_name(f".{destination.name}.part")
        destination.parent.mkdir(parents=True, exist_ok=True)
        failures = 0
        while True:
            have = partial.stat().st_size if partial.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with self._http.stream(
                    "GET", f"/api/v1/jobs/{job_id}/results/{name}", headers=headers, timeout=None
                ) as response:
                    if response.status_code == 416:  # already complete
                        break
                    _raise_for(response)
                    mode = "ab" if response.status_code == 206 else "wb"
                    with open(partial, mode) as handle:
                        for chunk in response.iter_bytes(CHUNK_BYTES):
                            handle.write(chunk)
                break
            except httpx.TransportError as exc:
                failures += 1
                if failures > RETRIES:
                    raise RemoteError(
                        f"Could not download {name}: {exc}.",
                        "Run the same command again to resume.",
                    ) from None
                time.sleep(min(2**failures * 0.25, 5))
        partial.replace(destination)


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        if not response.is_stream_consumed:
            response.read()
        body = response.json()
        error, detail = body.get("error", ""), body.get("detail", "")
    except (ValueError, httpx.StreamError):
        error, detail = response.reason_phrase, ""
    message = f"The backend refused the request: {error}" + (f" ({detail})" if detail else "")
    if response.status_code == 401:
        raise RemoteError(message + ".", "Check the key, or log in again: octavia login")
    if response.status_code == 402:
        raise CreditError(message + ".", "Add credits to the key, then run again.")
    if response.status_code == 503:
        retry = response.headers.get("Retry-After", "a while")
        raise RemoteError(message + ".", f"Try again in {retry} seconds.")
    if response.status_code >= 500:
        raise StageError(message + ".", "Try again; if it persists, see the server's log.")
    raise InputError(message + ".")
