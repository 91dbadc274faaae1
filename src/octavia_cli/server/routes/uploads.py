"""``PUT /uploads``: media streamed to disk, held to the size limit and the key's quota as
it arrives, and kept only if ffprobe reads it as media with audio."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from octavia_cli.errors import InputError
from octavia_cli.media.ffmpeg import MediaInfo, probe
from octavia_cli.server.jobs import name_suffix
from octavia_cli.server.retention import Retention
from octavia_cli.server.routes.deps import Server, Who, error, key_id

router = APIRouter(prefix="/api/v1")

SAFE_NAME = re.compile(r"[\w][\w .()+-]{0,200}")  # whole names only: fullmatch


@router.put("/uploads", status_code=201)
async def upload(
    request: Request, server: Server, who: Who, filename: str = Query(...)
) -> dict[str, Any]:
    options, store = server.options, server.store
    if not SAFE_NAME.fullmatch(filename) or ".." in filename or filename.startswith("."):
        raise error(400, "bad file name", "Use a plain file name, no folders.")
    declared = int(request.headers.get("content-length") or 0)
    if declared > options.max_upload_bytes:
        raise error(413, "upload too large", f"at most {options.max_upload_bytes} bytes")
    quota = options.upload_quota_bytes
    kept = store.upload_bytes(key_id(who)) if quota else 0
    if quota and kept + declared > quota:
        raise _over_quota(kept, quota, options.retention)
    upload_id = uuid.uuid4().hex[:16]
    folder = options.data_dir / "uploads" / upload_id
    folder.mkdir(parents=True)
    # Stored under a short safe name; the original is kept in the database (results are
    # named from it, cut to fit in a file name).
    path = folder / f"input{name_suffix(filename)}"
    size = 0
    try:
        with open(path, "wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > options.max_upload_bytes:
                    raise error(413, "upload too large",
                                f"at most {options.max_upload_bytes} bytes")  # fmt: skip
                if quota and kept + size > quota:
                    raise _over_quota(kept, quota, options.retention)
                handle.write(chunk)
        media = await asyncio.to_thread(_probe, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    store.add_upload(upload_id, key_id(who), filename, path, size, media.duration_s)
    return {"id": upload_id, "filename": filename, "size": size,
            "duration_s": media.duration_s, "has_video": media.has_video}  # fmt: skip


def _over_quota(kept: int, quota: int, retention: Retention) -> HTTPException:
    megabyte = 1024 * 1024
    after = (
        f"; uploads no queued job needs are deleted {retention.upload_s / 3600:g} h after "
        "they were made"
        if retention.upload_s
        else ""
    )
    return error(
        413, "upload quota exceeded",
        f"This key keeps {kept / megabyte:.1f} MB of uploads on the server and may keep "
        f"{quota / megabyte:.1f} MB{after}.",
    )  # fmt: skip


def _probe(path: Path) -> MediaInfo:
    try:
        media = probe(path)
    except InputError:
        raise error(415, "not media", "ffprobe cannot read the upload as audio or video.") from None
    if not media.has_audio:
        raise error(415, "no audio", "The upload has no audio track.")
    return media
