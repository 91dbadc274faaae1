"""Each API key's own voice library (``<data dir>/voices/<key id>/``, encrypted at rest):
list, import (a voice exported by ``octavia voices export``, with its passphrase), rename
and delete. A key reaches its own library only: another key's voices are neither listed
nor usable, and asking for one answers exactly as for a voice that does not exist."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field

from octavia_cli.errors import InputError, OutputExistsError
from octavia_cli.server.jobs import key_voices
from octavia_cli.server.routes.deps import Server, Who, error, key_id

router = APIRouter(prefix="/api/v1")
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024


def _library(server: Server, who: str) -> Any:  # -> VoiceLibrary
    from octavia_cli.models.voices import VoiceLibrary

    return VoiceLibrary(key_voices(server.options.data_dir, key_id(who)))


def _public(profile: Any) -> dict[str, Any]:
    data = profile.to_dict()
    return {k: data[k] for k in ("name", "engine", "model", "created_at", "source")} | {
        "speech_s": round(sum(r["speech_s"] for r in data["references"]), 2)
    }


def _refused(exc: InputError | OutputExistsError, name: str) -> Any:
    if isinstance(exc, OutputExistsError):
        return error(409, "voice exists", name)
    if "There is no voice" in exc.message or "not a usable voice name" in exc.message:
        return error(404, "unknown voice", name)
    return error(422, "invalid voice", exc.message)


@router.get("/voices")
def list_voices(server: Server, who: Who) -> list[dict[str, Any]]:
    return [_public(p) for p in _library(server, who).list_voices()]


@router.delete("/voices/{name}")
def delete_voice(name: str, server: Server, who: Who) -> dict[str, Any]:
    try:
        _library(server, who).remove(name)
    except (InputError, OutputExistsError) as exc:
        raise _refused(exc, name) from None
    return {"deleted": name}


class Rename(BaseModel):
    name: str = Field(min_length=1, max_length=64)


@router.post("/voices/{name}/rename")
def rename_voice(name: str, body: Rename, server: Server, who: Who) -> dict[str, Any]:
    from octavia_cli.models.voices import check_name

    library = _library(server, who)
    try:
        library.rename(name, check_name(body.name))
        return _public(library.load(body.name))
    except (InputError, OutputExistsError) as exc:
        raise _refused(exc, body.name) from None


@router.put("/voices", status_code=201)
async def import_voice(
    request: Request, server: Server, who: Who,
    passphrase: Annotated[str, Header(alias="Octavia-Voice-Passphrase", max_length=1024)] = "",
) -> dict[str, Any]:  # fmt: skip
    """The body: a file made by ``octavia voices export`` (sealed with the passphrase the
    header gives)."""
    with tempfile.TemporaryDirectory(prefix="octavia-voice-") as scratch:
        archive = Path(scratch) / "voice"
        size = 0
        with open(archive, "wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_ARCHIVE_BYTES:
                    raise error(413, "too large", f"a voice file is at most {MAX_ARCHIVE_BYTES} B")
                handle.write(chunk)
        try:
            profile = _library(server, who).import_voice(archive, passphrase)
        except OutputExistsError as exc:
            raise error(409, "voice exists", exc.message) from None
        except InputError as exc:
            raise error(422, "not a voice", exc.message.replace(str(archive), "the file")) from None
    return _public(profile)
