"""The voice library: cloned voices stored once and used on every line and every episode.

A voice is a folder in the user data dir (``<data>/voices/<name>/``) holding
``profile.json`` (name, engine and model, the references' hashes and lengths, creation
time, schema version) and the engine's conditioning (for XTTS, the GPT conditioning latents
and the speaker embedding, saved with ``torch.save``). The conditioning is computed once,
when the voice is cloned, so a voice sounds the same on every line.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from octavia_cli.errors import InputError, OutputExistsError
from octavia_cli.files import atomic_path, atomic_write_bytes, check_output_path
from octavia_cli.media.ffmpeg import extract_audio

logger = logging.getLogger(__name__)

SCHEMA = 1
PROFILE = "profile.json"
CONDITIONING = "conditioning.pt"
REFERENCE = "reference.wav"  # the first reference, 16 kHz mono, for similarity checks
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Reference:
    name: str
    sha256: str
    duration_s: float
    speech_s: float


@dataclass
class VoiceProfile:
    name: str
    engine: str
    model: str
    references: list[Reference] = field(default_factory=list)
    created_at: str = ""
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def voices_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path("octavia", appauthor=False) / "voices"


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InputError(
            f"'{name}' is not a usable voice name.",
            "Use letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit.",
        )
    return name


def folder_of(name: str) -> Path:
    return voices_dir() / check_name(name)


def load(name: str) -> VoiceProfile:
    """A stored voice's profile.

    Raises:
        InputError: there is no such voice, or its files are damaged.
    """
    folder = folder_of(name)
    if not (folder / PROFILE).exists():
        known = ", ".join(p.name for p in list_voices()) or "none yet"
        raise InputError(
            f"There is no voice called '{name}' (stored voices: {known}).",
            "Clone one with: octavia clone-voice NAME reference.wav",
        )
    try:
        data = json.loads((folder / PROFILE).read_text(encoding="utf-8"))
        data["references"] = [Reference(**r) for r in data.get("references", [])]
        profile = VoiceProfile(**data)
    except (ValueError, TypeError, KeyError):
        raise InputError(
            f"The voice '{name}' is damaged ({folder / PROFILE} is not a voice profile).",
            f"Remove it (octavia voices rm {name}) and clone it again.",
        ) from None
    if profile.schema > SCHEMA:
        raise InputError(
            f"The voice '{name}' was made by a newer Octavia (schema {profile.schema}).",
            "Upgrade Octavia to use it.",
        )
    if not (folder / CONDITIONING).exists():
        raise InputError(
            f"The voice '{name}' is damaged (its conditioning is missing).",
            f"Remove it (octavia voices rm {name}) and clone it again.",
        )
    return profile


def list_voices() -> list[VoiceProfile]:
    root = voices_dir()
    if not root.is_dir():
        return []
    profiles = []
    for folder in sorted(root.iterdir()):
        if (folder / PROFILE).exists():
            try:
                profiles.append(load(folder.name))
            except InputError as exc:
                logger.warning("%s", exc)
    return profiles


def save(
    profile: VoiceProfile,
    conditioning: Any,
    *,
    force: bool = False,
    reference: Path | None = None,
) -> Path:
    """Store a voice (atomically: a half-written voice never appears under its name)."""
    import torch

    folder = folder_of(profile.name)
    if folder.exists() and not force:
        raise OutputExistsError(
            f"A voice called '{profile.name}' exists.", "Pass --force to replace it."
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{profile.name}.", dir=folder.parent))
    try:
        torch.save(conditioning, staging / CONDITIONING)
        if reference is not None:
            extract_audio(reference, staging / REFERENCE, sample_rate_hz=16_000, channels=1)
        profile.created_at = profile.created_at or time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime())  # fmt: skip
        atomic_write_bytes(staging / PROFILE, json.dumps(profile.to_dict(), indent=2).encode())
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def conditioning(name: str) -> Any:
    import torch

    load(name)
    return torch.load(folder_of(name) / CONDITIONING, map_location="cpu", weights_only=True)


def remove(name: str) -> None:
    load(name)
    shutil.rmtree(folder_of(name))


def export(name: str, destination: Path, *, force: bool = False) -> Path:
    """A voice as one ``.tar.gz`` file, to move to another machine."""

    load(name)
    check_output_path(destination, force=force)
    with atomic_path(destination) as tmp, tarfile.open(tmp, "w:gz") as archive:
        archive.add(folder_of(name), arcname=name)
    return destination


def import_voice(archive_path: Path, *, force: bool = False) -> VoiceProfile:
    """Store a voice exported by :func:`export` (checked before it is stored)."""
    if not archive_path.exists():
        raise InputError(f"{archive_path} does not exist.", "Check the file name.")
    try:
        with tempfile.TemporaryDirectory(prefix="octavia-voice-") as scratch:
            with tarfile.open(archive_path, "r:gz") as archive:
                archive.extractall(scratch, filter="data")  # refuses links and ../ paths
            folders = [p for p in Path(scratch).iterdir() if p.is_dir()]
            if len(folders) != 1 or not (folders[0] / PROFILE).exists():
                raise InputError(f"{archive_path} is not an exported voice.")
            name = check_name(folders[0].name)
            target = folder_of(name)
            if target.exists() and not force:
                raise OutputExistsError(
                    f"A voice called '{name}' exists.", "Pass --force to replace it."
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(folders[0], target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{archive_path} is not an exported voice ({exc}).") from None
    try:
        return load(name)
    except InputError:
        shutil.rmtree(target, ignore_errors=True)
        raise
