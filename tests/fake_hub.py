"""A fake of the two Hugging Face hub calls ``octavia models pull`` makes (the hub is a network
peer the tests cannot reach): ``snapshot_download`` takes from a repository held in memory
the files its ``allow_patterns`` / ``ignore_patterns`` select (huggingface_hub's own
filter) and writes them into the hub cache as a download would (``tests/hub_layout.py``),
while a call with ``local_files_only`` (a loader looking in the cache) goes to the real
function; ``HfApi.list_repo_files`` lists a repository's files. Every download is
recorded."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hub_layout import write_hub_repo

COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class FakeHub:
    repos: dict[str, dict[str, bytes]]  # repo id -> path in the repository -> content
    real_snapshot_download: Any = None
    downloads: list[dict[str, Any]] = field(default_factory=list)
    listings: list[str] = field(default_factory=list)

    def fetched(self, repo_id: str) -> list[str]:
        """The files the last download of ``repo_id`` took."""
        return [call for call in self.downloads if call["repo_id"] == repo_id][-1]["files"]

    def snapshot_download(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        allow_patterns: list[str] | None = None,
        ignore_patterns: list[str] | None = None,
        **options: Any,
    ) -> str:
        from huggingface_hub.utils import filter_repo_objects

        if options.get("local_files_only"):
            return self.real_snapshot_download(
                repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=allow_patterns,
                ignore_patterns=ignore_patterns, **options,
            )  # fmt: skip
        files = self.repos[repo_id]
        chosen = sorted(filter_repo_objects(list(files), allow_patterns=allow_patterns,
                                            ignore_patterns=ignore_patterns))  # fmt: skip
        self.downloads.append({"repo_id": repo_id, "revision": revision, "files": chosen,
                               "allow": allow_patterns, "ignore": ignore_patterns,
                               "token": options.get("token")})  # fmt: skip
        pinned = bool(COMMIT.match(revision or ""))
        commit = revision if pinned else hashlib.sha1(repo_id.encode()).hexdigest()
        snapshot = write_hub_repo(
            Path(cache_dir or ""), repo_id, {name: files[name] for name in chosen},
            commit=commit, revision="main" if pinned else (revision or "main"),
        )  # fmt: skip
        return str(snapshot)

    def list_repo_files(self, repo_id: str, **options: Any) -> list[str]:
        self.listings.append(repo_id)
        return sorted(self.repos[repo_id])


def install_fake_hub(
    monkeypatch: pytest.MonkeyPatch, repos: dict[str, dict[str, bytes]]
) -> FakeHub:
    """Put a :class:`FakeHub` serving ``repos`` in place of the hub, with downloads on (no
    ``HF_HUB_OFFLINE``), so ``octavia models pull`` goes ahead."""
    import huggingface_hub

    hub = FakeHub(repos, real_snapshot_download=huggingface_hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)

    def list_repo_files(api: object, repo_id: str, **options: Any) -> list[str]:
        return hub.list_repo_files(repo_id, **options)

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return hub
