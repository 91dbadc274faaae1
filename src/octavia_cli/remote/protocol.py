"""What travels between a client and ``octavia serve``, and between serve and its Celery
workers: job kinds and states, the events of a job's stream, and its results. Both sides
build and read them here, so a field has one name.

Events (each a JSON object with ``type``):

- ``progress``: a stage's progress (the fields of :class:`octavia_cli.progress.ProgressEvent`);
- ``state``: the job's state changed; a final one carries ``error`` and ``results``;
- ``end``: a worker's last word on a job (Celery workers to serve only): its final state,
  error and results; serve records it and publishes the final ``state``.

A result is ``{"name", "size"}`` and, for a dub, ``"language"``: the target language it
is the dub of, so a client places each file without predicting its name.
"""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["transcribe", "translate", "subtitles", "dub", "synthesize"]
KINDS: tuple[Kind, ...] = ("dub", "transcribe", "translate", "subtitles", "synthesize")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "cancelled"
)  # fmt: skip
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

# GET /jobs answers a JSON list (as before pages existed) and, when there are more, the
# next page's cursor in this header and in a Link header (rel="next").
NEXT_CURSOR_HEADER = "Octavia-Next-Cursor"


def progress_event(fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "progress", **fields}


def state_event(
    state: str, *, error: str | None = None, results: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A job's new state; a final one says why it failed and what it made."""
    if state not in TERMINAL:
        return {"type": "state", "state": state}
    return {"type": "state", "state": state, "error": error, "results": results or []}


def end_event(
    state: str, *, error: str | None = None, results: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A worker's final word on its job."""
    return {"type": "end", "state": state, "error": error, "results": results or []}


def is_final(event: dict[str, Any]) -> bool:
    return event.get("type") == "state" and event.get("state") in TERMINAL


def language_of(result: dict[str, Any], languages: list[str]) -> str | None:
    """The language (one of ``languages``) that ``result`` is in: as the server says, or,
    from a server of before results carried it, as its name says (``talk.es.mp4``); with
    one language asked for, that one."""
    if result.get("language"):
        return str(result["language"])
    name = str(result.get("name", ""))
    found = [lang for lang in languages if f".{lang}." in name]
    if len(found) == 1:
        return found[0]
    return languages[0] if len(languages) == 1 else None
