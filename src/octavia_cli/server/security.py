"""What ``octavia serve`` checks before it trusts a request, and what it lets a client see.

- Whether the server listens on this machine only is decided from addresses
  (:mod:`ipaddress`, after resolving a host name), never by comparing strings: ``127.0.0.2``
  and ``::ffff:127.0.0.1`` are loopback, ``0.0.0.0`` and a name that resolves elsewhere
  are not.
- A server open without keys (``serve --no-auth``) answers only requests whose ``Host``
  header names the address it listens on. A web page the user visits cannot then reach it
  by DNS rebinding (its requests carry the page's own host name).
- Messages a client reads name files relative to the data dir (``uploads/<id>/x.mp4``),
  never by their absolute path on the server.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

Resolver = Callable[[str], list[str]]


def resolve_addresses(host: str) -> list[str]:
    """Every address ``host`` resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def is_loopback(host: str, resolve: Resolver = resolve_addresses) -> bool:
    """Whether every address ``host`` names is a loopback address (127.0.0.0/8, ::1).

    An unspecified address (``0.0.0.0``, ``::``: every interface) is not, nor is a name
    that does not resolve."""
    candidate = host.strip().strip("[]")
    literal = _address(candidate)
    if literal is not None:
        return literal.is_loopback
    try:
        addresses = [_address(a.split("%", 1)[0]) for a in resolve(candidate)]
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(a is not None and a.is_loopback for a in addresses)


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` headers a request to ``host:port`` on this machine carries: the bound
    address as given, and the loopback names a browser or client on this machine uses."""
    bare = host.strip().strip("[]").lower()
    names = {"127.0.0.1", "localhost", "[::1]", f"[{bare}]" if ":" in bare else bare}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:  # the default port is left out of the header
        hosts |= names
    return frozenset(hosts)


class HostCheck:
    """ASGI middleware: while ``active()``, a request whose ``Host`` header is not one of
    ``allowed`` is answered 421 (a plain ASGI class, so SSE streams pass untouched)."""

    def __init__(self, app: Any, allowed: frozenset[str], active: Callable[[], bool]) -> None:
        self.app, self.allowed, self.active = app, allowed, active

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.active():
            headers = dict(scope.get("headers") or ())
            host = headers.get(b"host", b"").decode("latin-1").strip().lower()
            if host not in self.allowed:
                from fastapi.responses import JSONResponse

                response = JSONResponse(
                    {
                        "error": "unexpected Host header",
                        "detail": f"This server runs without API keys and answers only "
                        f"requests addressed to {', '.join(sorted(self.allowed))}.",
                    },
                    status_code=421,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# An absolute path in a message: a '/' that no word, '.', ':' or '/' precedes (so not a
# URL's '//', a ratio's '1/2' or a relative path's inner '/'), up to a space or a quote.
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"/]+/)*([^\s'\"/]*)")


def relative_paths(message: str, root: Path) -> str:
    """``message`` with the paths under the data dir ``root`` made relative to it
    (``jobs/<id>/input/x.mp4``), and any other absolute path cut to ``…/name``."""
    prefixes = {str(Path(root)), str(Path(root).resolve())}
    for prefix in sorted(prefixes, key=len, reverse=True):
        message = message.replace(prefix.rstrip("/") + "/", "")
    return _ABSOLUTE.sub(lambda m: f"…/{m.group(1)}", message)
