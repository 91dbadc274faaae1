"""One small progress interface for every stage.

Stages call a :data:`ProgressHook` with :class:`ProgressEvent` values. The CLI renders them
with Rich on stderr; ``serve`` will stream the same events over Server-Sent Events; tests
collect them in a list. Events are plain data so they serialise to JSON as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class ProgressMode(StrEnum):
    """How the CLI shows progress on stderr."""

    AUTO = "auto"  # a live display when stdout and stderr are terminals, else nothing
    RICH = "rich"
    PLAIN = "plain"  # one line per finished stage
    NONE = "none"


class StageStatus(StrEnum):
    STARTED = "started"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"  # finished in an earlier run: nothing to do


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # e.g. "transcribe" or "synthesize:es"
    status: StageStatus
    completed: float = 0.0
    total: float | None = None  # None when the amount of work is unknown
    message: str | None = None
    time_s: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressHook = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """A hook that ignores every event."""


class StageReporter:
    """Convenience wrapper a stage uses to report on one named stage."""

    def __init__(self, hook: ProgressHook, stage: str) -> None:
        self.hook = hook
        self.stage = stage

    def started(self, total: float | None = None, message: str | None = None) -> None:
        self.hook(ProgressEvent(self.stage, StageStatus.STARTED, 0.0, total, message))

    def advance(
        self, completed: float, total: float | None = None, message: str | None = None
    ) -> None:
        self.hook(ProgressEvent(self.stage, StageStatus.RUNNING, completed, total, message))

    def done(self, message: str | None = None) -> None:
        self.hook(ProgressEvent(self.stage, StageStatus.DONE, 1.0, 1.0, message))

    def skipped(self, message: str | None = "already done") -> None:
        self.hook(ProgressEvent(self.stage, StageStatus.SKIPPED, 1.0, 1.0, message))
