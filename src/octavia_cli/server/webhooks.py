"""Webhooks: every state change of a job that carries a ``webhook_url`` is POSTed to it as
a signed JSON event.

The events are written by the store in the same transaction as the state change they
describe (a transactional outbox, :meth:`Store._emit`), so no change is lost to a crash and
none is sent for a change that was rolled back. :class:`WebhookSender`, a thread of
``octavia serve``, delivers them: the oldest undelivered event of a job first (a receiver
sees a job's states in order), retried with exponential backoff and jitter until
``serve.webhook_retry_hours`` have passed, every attempt recorded (``GET
/api/v1/jobs/{id}/deliveries``) and counted in ``/metrics``.

What a receiver gets (header names are case-insensitive):

- ``Octavia-Webhook-Id``: the event's id (the same on every retry: deduplicate on it);
- ``Octavia-Webhook-Timestamp``: seconds since the epoch when this attempt was signed;
- ``Octavia-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed with the API key's webhook
  secret (``octavia serve keys webhook-secret ID``), of ``TIMESTAMP.BODY`` (the timestamp
  header, a dot, the raw body bytes). Check it with a constant-time comparison, and refuse
  a timestamp older than a few minutes (a replayed request).

Targets: ``http``/``https`` URLs only, redirects never followed, and an address that is
not on the public internet (loopback, private, link-local, shared, reserved, multicast) is
refused unless ``serve.webhooks_allow_private`` is set. The host is resolved once per
attempt and the request connects to the address that was checked (the URL's host stays
in ``Host`` and, for https, in the TLS server name), so a name that resolves to a public
address when checked and a private one when connecting (DNS rebinding) cannot slip past.
Proxies from the environment are not used, for the same reason.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

ID_HEADER = "Octavia-Webhook-Id"
TIMESTAMP_HEADER = "Octavia-Webhook-Timestamp"
SIGNATURE_HEADER = "Octavia-Signature"
SIGNATURE_VERSION = "v1"
MAX_URL_CHARS = 2048
ATTEMPT_TIMEOUT_S = 10.0
MAX_DELAY_S = 3600.0  # the longest wait between two attempts
POLL_S = 0.25

# (host, port) -> the addresses it resolves to; replaced in tests.
Resolver = Callable[[str, int], list[str]]


class WebhookRefused(Exception):
    """A target this server must not connect to (the reason is the message)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``Octavia-Signature`` header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def check_url(url: str, allow_private: bool = False) -> str:
    """``url`` if it may be a webhook target as written: http(s), a host, no credentials,
    and (unless ``allow_private``) not a literal private address. A host name is checked
    when it is resolved, at each delivery.

    Raises:
        ValueError: a sentence saying what is wrong.
    """
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"a webhook URL has at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"'{url}' is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a webhook URL is http:// or https:// with a host, not '{url}'")
    if parts.username or parts.password:
        raise ValueError("a webhook URL carries no user name or password (it is signed)")
    if port == 0:
        raise ValueError(f"'{url}' has no usable port")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if not allow_private and not is_public(str(literal)):
        raise ValueError(
            f"{parts.hostname} is not a public address (webhooks to private addresses are "
            "refused unless the server sets serve.webhooks_allow_private)"
        )
    return url


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP) is on the public internet: not loopback, private,
    link-local, shared (CGNAT), reserved, unspecified or multicast, also when written as an
    IPv4 address inside IPv6."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public(str(mapped))
    return bool(ip.is_global) and not ip.is_multicast


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the order the system gives them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt did: a response's status, or why there was none."""

    status: int | None
    error: str | None
    address: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    url: str, body: bytes, headers: dict[str, str], *, allow_private: bool,
    resolver: Resolver = system_resolver, timeout_s: float = ATTEMPT_TIMEOUT_S,
) -> Attempt:  # fmt: skip
    """POST ``body`` to ``url`` once, connecting to an address checked as the module says.

    Raises:
        WebhookRefused: the URL or every address its host resolves to is not allowed.
    """
    import httpx

    try:
        check_url(url, allow_private)
    except ValueError as exc:
        raise WebhookRefused(str(exc)) from None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    began = time.monotonic()
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        return Attempt(None, f"cannot resolve {host} ({exc})", None, _ms(began))
    allowed = [a for a in addresses if allow_private or is_public(a)]
    if not allowed:
        shown = ", ".join(addresses) or "nothing"
        raise WebhookRefused(
            f"{host} resolves to {shown}, not a public address (webhooks to private addresses "
            "are refused unless the server sets serve.webhooks_allow_private)"
        )
    address = allowed[0]
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    sent = {**headers, "Host": parts.netloc, "Content-Type": "application/json"}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    try:
        with httpx.Client(follow_redirects=False, trust_env=False, timeout=timeout_s) as client:
            response = client.post(target, content=body, headers=sent, extensions=extensions)
    except httpx.HTTPError as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:300], address, _ms(began))
    error = None
    if response.is_redirect:
        error = f"redirect to {response.headers.get('location', '?')} not followed"
    elif not 200 <= response.status_code < 300:
        error = f"answered {response.status_code}"
    return Attempt(response.status_code, error, address, _ms(began))


def _ms(began: float) -> float:
    return round((time.monotonic() - began) * 1000, 1)


def backoff_s(attempt: int, base_s: float, rng: random.Random | None = None) -> float:
    """How long to wait after failed attempt number ``attempt`` (1, 2...): ``base_s``
    doubled each time up to an hour, the second half of it drawn at random (so receivers
    that came back are not hit by every sender at once)."""
    delay = min(MAX_DELAY_S, base_s * 2 ** (attempt - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


class WebhookSender:
    """Delivers the store's due webhook events on a thread of ``octavia serve``."""

    def __init__(
        self, store: Any, *, base_url: str, allow_private: bool = False,
        retry_s: float = 10.0, give_up_s: float = 24 * 3600.0,
        resolver: Resolver = system_resolver, timeout_s: float = ATTEMPT_TIMEOUT_S,
    ) -> None:  # fmt: skip
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.allow_private = allow_private
        self.retry_s = retry_s
        self.give_up_s = give_up_s
        self.resolver = resolver
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="octavia-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception:  # a bug must not end the thread: log it and go on
                logger.exception("webhook delivery failed")
                sent = 0
            if not sent:
                self._stop.wait(POLL_S)

    def body(self, event: dict[str, Any]) -> bytes:
        """The event's JSON body: the same bytes on every attempt (results with their URLs
        on this server)."""
        payload = dict(event["payload"])
        payload["results"] = [
            {**r, "url": f"{self.base_url}/api/v1/jobs/{payload['job_id']}/results/{r['name']}"}
            for r in payload.get("results", [])
        ]
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()

    def deliver_due(self) -> int:
        """Make one attempt at each event that is due; returns how many were attempted."""
        events = self.store.due_webhook_events(time.time())
        for event in events:
            if self._stop.is_set():
                break
            self._attempt(event)
        return len(events)

    def _attempt(self, event: dict[str, Any]) -> None:
        body = self.body(event)
        timestamp = str(int(time.time()))
        secret = self.store.webhook_secret(event["key_id"])
        headers = {
            ID_HEADER: event["id"],
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            "User-Agent": "Octavia-Webhooks/1",
        }
        number = event["attempts"] + 1
        try:
            attempt = post(event["url"], body, headers, allow_private=self.allow_private,
                           resolver=self.resolver, timeout_s=self.timeout_s)  # fmt: skip
        except WebhookRefused as exc:
            self.store.record_webhook_attempt(
                event["id"], number, outcome="refused", error=str(exc), next_attempt_at=None
            )
            logger.warning("webhook of job %s refused: %s", event["job_id"], exc)
            return
        if attempt.delivered:
            outcome, next_at = "delivered", None
        else:
            next_at = time.time() + backoff_s(number, self.retry_s)
            outcome = "failed"
            if next_at > event["created_at"] + self.give_up_s:
                next_at = None  # retried for as long as it may be: given up
        self.store.record_webhook_attempt(
            event["id"], number, outcome=outcome, status=attempt.status, error=attempt.error,
            address=attempt.address, duration_ms=attempt.duration_ms, next_attempt_at=next_at,
        )  # fmt: skip
