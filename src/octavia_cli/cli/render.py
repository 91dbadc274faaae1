"""Render progress events on stderr. ``--progress auto`` (the default) draws a Rich display
when stdout and stderr are terminals and nothing otherwise, so CI logs and pipes stay clean;
``plain`` prints one line per finished stage (for logs that want it); ``none`` (or
``--quiet``) draws nothing. stdout is never used."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from octavia_cli.progress import ProgressEvent, ProgressMode, StageStatus


class ProgressRenderer:
    """A progress hook that draws events; use as a context manager around the work."""

    def __init__(self, console: Console, mode: ProgressMode = ProgressMode.AUTO) -> None:
        if mode is ProgressMode.AUTO:
            # Off when either stream is redirected: a pipe or a CI log gets results only.
            mode = (
                ProgressMode.RICH
                if console.is_terminal and sys.stdout.isatty()
                else ProgressMode.NONE
            )
        self.console = console
        self.quiet = mode is ProgressMode.NONE
        self.live = mode is ProgressMode.RICH
        self.progress = Progress(
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("[dim]{task.fields[note]}"),
            console=console,
            disable=not self.live,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started_at: dict[str, float] = {}

    def __enter__(self) -> ProgressRenderer:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def __call__(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        task = self.tasks.get(event.stage)
        if task is None:
            task = self.progress.add_task(event.stage, total=event.total or None, note="")
            self.tasks[event.stage] = task
            self.started_at[event.stage] = time.monotonic()
        elif event.status is StageStatus.STARTED:  # the stage again (a line check's retakes)
            self.started_at[event.stage] = time.monotonic()
            self.progress.reset(task, total=event.total or None)
        note = event.message or ""
        if event.status in (StageStatus.DONE, StageStatus.SKIPPED):
            label = (
                "done" if event.status is StageStatus.DONE
                else f"skipped ({event.message or 'already done'})"
            )  # fmt: skip
            self.progress.update(
                task, total=1, completed=1, note=note if event.status is StageStatus.DONE else label
            )
            if not self.live:
                seconds = time.monotonic() - self.started_at[event.stage]
                detail = f" ({note})" if note and event.status is StageStatus.DONE else ""
                self.console.print(
                    f"{event.stage}: {label}{detail} in {seconds:.1f} s",
                    highlight=False,
                    markup=False,
                )
            return
        self.progress.update(task, total=event.total or None, completed=event.completed, note=note)
