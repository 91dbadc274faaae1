"""Where jobs read their inputs and write their results.

A storage maps a job to its folder (the dub project and ``out/``) and an upload to its file.
``LocalStorage`` is a folder: on one machine, serve's data dir; across machines, a shared
mount that serve and every worker see at the same or another path (messages carry paths
relative to the root). An object store would implement the same methods, staging files to
a local cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def job_folder(self, job_id: str) -> Path: ...

    def resolve(self, relative: str) -> Path: ...

    def relative(self, path: Path) -> str: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def job_folder(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def resolve(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"{relative} is outside the storage")
        return path

    def relative(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.root.resolve()))
