"""Atomic file writes and the rules about which files Octavia may touch.

Every file Octavia writes goes to a temporary file in the destination's folder first and is
then renamed over the destination, so a killed process leaves either the old file or the new
one, never half of one. Inputs are only ever read.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from octavia_cli.errors import InputError, OctaviaError, OutputExistsError, StageError


def _explain_os_error(exc: OSError, path: Path) -> Exception:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return InputError(
            f"Cannot write to {path.parent}: permission denied or read-only.",
            "Choose another output with -o, or another project folder with --workdir.",
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full(path)
    return StageError(f"Cannot write {path}: {exc.strerror or exc}.")


# What a program (ffmpeg, espeak-ng) or a library prints when a write hits a full disk.
DISK_FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")


def disk_full(path: Path | None) -> StageError:
    """The error for a write to ``path`` that found its disk full."""
    where = f"The disk holding {path.parent}" if path is not None else "The disk"
    return StageError(
        f"{where} is full.",
        "Free some space and run the same command again; finished stages are kept.",
    )


def is_disk_full(message: str) -> bool:
    return any(text in message for text in DISK_FULL_MESSAGES)


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (setting it to
    read it back would race with threads creating files)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


def name_limit(folder: Path) -> int:
    """The longest file name, in bytes, that ``folder``'s file system takes (its nearest
    existing ancestor's, for a folder still to be made)."""
    for candidate in (folder, *folder.parents):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if candidate.exists():
                return int(os.pathconf(candidate, "PC_NAME_MAX"))
    return NAME_MAX


def check_name_length(path: Path) -> None:
    """Raise unless ``path``'s file name fits its file system's limit.

    Raises:
        InputError: the name is longer than the limit (the limit is said).
    """
    limit = name_limit(path.parent if str(path.parent) else Path("."))
    size = len(os.fsencode(path.name))
    if size > limit:
        raise InputError(
            f"The output name {path.name[:40]}… is {size} bytes long; the file system "
            f"takes at most {limit}.",
            "Choose a shorter name with -o, or rename the input.",
        )


def short_name(name: str, limit: int, suffix: str = "") -> str:
    """``name`` + ``suffix`` if it fits in ``limit`` bytes, else the start of ``name`` (cut at
    a character, not inside one) with a hash of the whole, then ``suffix``: deterministic,
    so the same long name always maps to the same short one."""
    if len(os.fsencode(name + suffix)) <= limit:
        return name + suffix
    tag = "~" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    room = limit - len(os.fsencode(tag + suffix))
    head = os.fsencode(name)[: max(room, 0)].decode("utf-8", "ignore")
    return head + tag + suffix


def _temporary_prefix(path: Path) -> str:
    """The name start of :func:`atomic_path`'s temporaries for ``path``: ``.<stem>.``, or a
    short form when ``.<stem>.XXXXXXXX.tmp<suffix>`` would not fit in a file name."""
    room = NAME_MAX - len(os.fsencode(f"..12345678.tmp{path.suffix}"))
    return f".{short_name(path.stem, room)}."


@contextlib.contextmanager
def atomic_path(path: Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so tools infer the format);
    rename it over ``path`` when the block succeeds, delete it when it fails.

    The file gets the permissions of any new file (0666 less the umask), or 0600 when
    ``private`` (it holds a secret)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=_temporary_prefix(path), suffix=f".tmp{path.suffix}", dir=path.parent
        )
        os.close(fd)
    except OSError as exc:
        raise _explain_os_error(exc, path) from exc
    tmp = Path(tmp_name)
    try:
        with writing(path):  # the temporary still takes its space while this looks
            yield tmp
        os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _explain_os_error(exc, path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Around a write to ``path`` that is not an :func:`atomic_path`: a library's failure
    (libsndfile says only "System error.") on a full disk is said as a full disk."""
    try:
        yield
    except OctaviaError:
        raise
    except Exception as exc:
        if _out_of_space(path):
            raise disk_full(path) from exc
        raise


def _out_of_space(path: Path, margin_bytes: int = 1 << 20) -> bool:
    """Whether the disk holding ``path`` has (next to) nothing left: the likely reason a
    write there just failed."""
    import shutil

    try:
        return shutil.disk_usage(path.parent).free < margin_bytes
    except OSError:
        return False


def remove_stale_temporaries(path: Path) -> int:
    """Delete temporaries that :func:`atomic_path` left for ``path`` when a process was
    killed (SIGKILL gives no chance to clean up). Call it only while holding the lock of the
    project that writes ``path``. Returns how many were removed."""
    removed = 0
    pattern = f"{glob_escape(_temporary_prefix(path))}*.tmp{glob_escape(path.suffix)}"
    for stale in path.parent.glob(pattern):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed


def glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


def atomic_write_bytes(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (fsynced before the rename); ``private``: 0600."""
    with atomic_path(path, private=private) as tmp:
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise _explain_os_error(exc, path) from exc


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_file(path: Path, edge_bytes: int = 1 << 20) -> str:
    """A cheap identity for large media: size, plus SHA-256 of the first and last MiB.

    Hashing a two-hour video in full on every run would cost seconds for nothing; a changed
    recording virtually always differs in size or at its ends.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(edge_bytes))
        if size > edge_bytes:
            handle.seek(max(edge_bytes, size - edge_bytes))
            digest.update(handle.read(edge_bytes))
    return digest.hexdigest()


def check_output_path(path: Path, *, force: bool, owned_digest: str | None = None) -> None:
    """Refuse to replace a file the user owns.

    Args:
        path: Where an output will be written.
        force: The user passed ``--force``.
        owned_digest: SHA-256 of the file this project wrote at ``path`` last time, if any;
            an unchanged file that we wrote ourselves may be replaced.

    Raises:
        OutputExistsError: ``path`` exists, is not ours, and ``force`` is false.
        InputError: ``path`` is a folder, or its folder cannot be written.
    """

    check_name_length(path)  # first: a name too long fails even to be looked up
    if path.is_dir():
        raise InputError(f"The output {path} is a folder.", "Give a file name with -o.")
    if (
        path.exists()
        and not force
        and not (owned_digest is not None and sha256_file(path) == owned_digest)
    ):
        raise OutputExistsError(
            f"{path} already exists.",
            "Pass --force to replace it, or choose another name with -o.",
        )
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"Cannot write to {folder}: permission denied or read-only.",
            "Choose another output with -o.",
        )
