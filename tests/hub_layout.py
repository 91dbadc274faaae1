"""Model files laid out exactly as their real homes keep them, and a guard that fails a test
on any network connection.

The Hugging Face hub cache (``huggingface_hub.file_download``) keeps a repository in
``models--{org}--{name}/``: ``blobs/<etag>`` holds each file's bytes once, named by its etag
(an LFS file's is the sha256 of its content, a file kept in git its git blob sha1);
``snapshots/<commit>/<path>`` are relative symlinks into ``blobs`` (``../../blobs/<etag>``,
one more ``..`` per subfolder); ``refs/<revision>`` holds the commit a branch resolved to.
Which files are LFS is the repository's ``.gitattributes``; :data:`LFS_SUFFIXES` is the
hub's default one (weights, sentencepiece ``.model``, ``.npz``; not ``.json``, ``.yaml``,
``.spm``, ``.txt``). A snapshot written by ``snapshot_download`` has no ``.no_exist``
markers (those come from single-file lookups that found nothing).

torchaudio's bundles and torch.hub checkpoints are plain files in ``<torch hub>/checkpoints``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

# The hub's default .gitattributes (the patterns that matter for model repositories).
LFS_SUFFIXES = (
    ".bin", ".pt", ".pth", ".safetensors", ".ckpt", ".h5", ".msgpack", ".onnx", ".model",
    ".npz", ".npy", ".pkl", ".pickle", ".ot", ".tflite", ".zip", ".gz", ".tar",
)  # fmt: skip


def is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


def etag(content: bytes, lfs: bool) -> str:
    """The name the hub cache gives a file's blob: sha256 for LFS, git's blob sha1 else."""
    if lfs:
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def repo_folder(cache: Path, repo_id: str, kind: str = "model") -> Path:
    return cache / f"{kind}s--{repo_id.replace('/', '--')}"


def write_hub_repo(
    cache: Path,
    repo_id: str,
    files: Mapping[str, bytes | Path],
    *,
    commit: str | None = None,
    revision: str = "main",
) -> Path:
    """Put ``files`` (path in the repository -> bytes, or a file to copy) into the hub cache
    ``cache`` as one commit of ``repo_id`` that ``revision`` points at; returns the snapshot
    folder (what ``snapshot_download`` returns)."""
    commit = commit or secrets.token_hex(20)
    repo = repo_folder(cache, repo_id)
    snapshot = repo / "snapshots" / commit
    for name, source in files.items():
        content = source.read_bytes() if isinstance(source, Path) else source
        blob = repo / "blobs" / etag(content, is_lfs(name))
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    if revision != commit:
        (repo / "refs" / revision).write_text(commit)  # no newline, as the hub writes it
    return snapshot


def write_folder(cache: Path, repo_id: str, folder: Path, **options: str) -> Path:
    """Every file under ``folder`` (a model saved with ``save_pretrained``) as a hub commit."""
    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    return write_hub_repo(cache, repo_id, files, **options)


def assert_blobs_intact(cache: Path) -> None:
    """Every blob under ``cache`` still hashes to its name (nothing rewrote one in place)."""
    blobs = sorted(cache.glob("*--*--*/blobs/*"))
    assert blobs, f"no blobs under {cache}"
    for blob in blobs:
        content = blob.read_bytes()
        names = {etag(content, lfs=True), etag(content, lfs=False)}
        assert blob.name in names, f"{blob} no longer holds what its name says"


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (links not followed) with its size and modification time, to
    compare before and after: equal means nothing was added, removed or rewritten."""
    state: dict[str, tuple[int, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        state[path.relative_to(root).as_posix()] = (info.st_size, info.st_mtime_ns)
    return state


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any TCP/UDP connection (huggingface_hub, torch.hub, urllib, requests: they all end in
    ``socket.connect``) or name lookup fails at once, and the test fails at its end if it, or
    a thread started while it ran, tried one, even if the code caught the error. (Threads
    older than the test, such as an exporter an earlier test's library started, are refused
    too but not blamed on it.) Unix sockets stay allowed. Yields the attempts made."""
    attempts: list[str] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    older = set(threading.enumerate()) - {threading.main_thread()}

    def refuse(what: str) -> OSError:
        thread = threading.current_thread()
        if thread not in older:
            attempts.append(f"{what} from thread {thread.name}")
        return ConnectionRefusedError(f"the tests allow no network access ({what})")

    def guarded_connect(self: socket.socket, address: object) -> None:
        if self.family == socket.AF_UNIX:
            return connect(self, address)  # type: ignore[arg-type]
        raise refuse(f"connect {address!r}")

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        if self.family == socket.AF_UNIX:
            return connect_ex(self, address)  # type: ignore[arg-type]
        raise refuse(f"connect {address!r}")

    def guarded_lookup(host: object, *args: object, **kwargs: object) -> list[object]:
        raise refuse(f"lookup {host!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    yield attempts
    if attempts:
        pytest.fail(f"the test opened network connections: {attempts}")
