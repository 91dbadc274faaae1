"""The voice library: cloned voices stored once and used on every line and every episode.

A library is a folder (``<user data>/voices/``; ``octavia serve`` keeps one per API key,
``<data dir>/voices/<key id>/``) of voices, each a folder named after the voice holding,
encrypted at rest (:mod:`octavia_cli.models.vault`, AES-GCM with this machine's voice key):

- ``profile.json.enc``: name, engine and model, the references' hashes and lengths,
  creation time, schema version;
- ``conditioning.pt.enc``: the engine's conditioning (for XTTS, the GPT conditioning
  latents and the speaker embedding, saved with ``torch.save``), computed once when the
  voice is cloned, so a voice sounds the same on every line;
- ``reference.wav.enc``: the first reference, 16 kHz mono, for similarity checks;
- ``embedding.npy.enc``: the speaker's embedding (GE2E, :mod:`octavia_cli.engines.voice_match`)
  by which a dub recognises the same person in another file.

Voices stored in the clear by an Octavia of before are encrypted the first time the library
is read. Nothing of a voice but its folder's name is ever written in the clear.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octavia_cli.errors import InputError, OutputExistsError
from octavia_cli.files import atomic_path, atomic_write_bytes, check_output_path
from octavia_cli.media.ffmpeg import extract_audio
from octavia_cli.models.vault import (
    Vault,
    is_sealed,
    load_key,
    open_with_passphrase,
    seal_with_passphrase,
)

logger = logging.getLogger(__name__)

SCHEMA = 2  # 2: encrypted at rest, with the speaker's embedding
PROFILE = "profile.json"
CONDITIONING = "conditioning.pt"
REFERENCE = "reference.wav"  # the first reference, 16 kHz mono, for similarity checks
EMBEDDING = "embedding.npy"
FILES = (PROFILE, CONDITIONING, REFERENCE, EMBEDDING)
SEALED = ".enc"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ARCHIVE_SUFFIX = ".octavia-voice"


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
    source: str = ""  # where a voice saved by a dub came from: "episode1.mp4 S2"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def voices_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path("octavia", appauthor=False) / "voices"


def key_file() -> Path:
    import platformdirs

    return platformdirs.user_config_path("octavia", appauthor=False) / "voice.key"


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InputError(
            f"'{name}' is not a usable voice name.",
            "Use letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit.",
        )
    return name


class VoiceLibrary:
    """The voices under ``root``, sealed with this machine's voice key."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else voices_dir()
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault(load_key(key_file()))
        return self._vault

    def folder_of(self, name: str) -> Path:
        return self.root / check_name(name)

    def exists(self, name: str) -> bool:
        folder = self.folder_of(name)
        return (folder / (PROFILE + SEALED)).exists() or (folder / PROFILE).exists()

    # -- reading ---------------------------------------------------------------------------

    def _read(self, folder: Path, role: str) -> bytes | None:
        """A voice file's plain bytes (None if the voice has none)."""
        sealed = folder / (role + SEALED)
        if sealed.exists():
            return self.vault.open(sealed.read_bytes(), role, str(sealed))
        if (folder / role).exists():  # stored in the clear by an Octavia of before
            self._encrypt_in_place(folder)
            return self._read(folder, role)
        return None

    def _write(self, folder: Path, role: str, data: bytes) -> None:
        atomic_write_bytes(folder / (role + SEALED), self.vault.seal(data, role))

    def _encrypt_in_place(self, folder: Path) -> None:
        """Seal the plain files of a voice stored before voices were encrypted."""
        for role in FILES:
            plain = folder / role
            if plain.exists():
                self._write(folder, role, plain.read_bytes())
                plain.unlink(missing_ok=True)
        for stale in folder.glob("*.embedding.npy"):  # a similarity cache beside a reference
            stale.unlink(missing_ok=True)
        logger.info("voice '%s' encrypted at rest", folder.name)

    def load(self, name: str) -> VoiceProfile:
        """A stored voice's profile.

        Raises:
            InputError: there is no such voice, or its files are damaged.
            VoiceKeyError: the voice was encrypted with another key.
        """
        folder = self.folder_of(name)
        if not self.exists(name):
            known = ", ".join(p.name for p in self.list_voices()) or "none yet"
            raise InputError(
                f"There is no voice called '{name}' (stored voices: {known}).",
                "Clone one with: octavia clone-voice NAME reference.wav",
            )
        try:
            data = json.loads(self._read(folder, PROFILE) or b"")
            data["references"] = [Reference(**r) for r in data.get("references", [])]
            data["schema"] = max(int(data.get("schema", 1)), SCHEMA)  # sealed now
            profile = VoiceProfile(**data)
        except (ValueError, TypeError, KeyError):
            raise InputError(
                f"The voice '{name}' is damaged ({folder} holds no voice profile).",
                f"Remove it (octavia voices rm {name}) and clone it again.",
            ) from None
        if profile.schema > SCHEMA:
            raise InputError(
                f"The voice '{name}' was made by a newer Octavia (schema {profile.schema}).",
                "Upgrade Octavia to use it.",
            )
        if not any((folder / (CONDITIONING + s)).exists() for s in (SEALED, "")):
            raise InputError(
                f"The voice '{name}' is damaged (its conditioning is missing).",
                f"Remove it (octavia voices rm {name}) and clone it again.",
            )
        return profile

    def list_voices(self) -> list[VoiceProfile]:
        if not self.root.is_dir():
            return []
        profiles = []
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and NAME.match(folder.name) and self.exists(folder.name):
                try:
                    profiles.append(self.load(folder.name))
                except InputError as exc:
                    logger.warning("%s", exc.message)
        return profiles

    def conditioning(self, name: str) -> Any:
        import torch

        self.load(name)
        data = self._read(self.folder_of(name), CONDITIONING)
        assert data is not None  # load checked it is there
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def reference_audio(self, name: str) -> bytes | None:
        """The voice's reference recording (a WAV file's bytes), if it has one."""
        self.load(name)
        return self._read(self.folder_of(name), REFERENCE)

    def embedding(self, name: str) -> np.ndarray | None:
        """The speaker embedding the voice was stored with (None for a voice of before)."""
        data = self._read(self.folder_of(name), EMBEDDING)
        return None if data is None else np.load(io.BytesIO(data), allow_pickle=False)

    def embeddings(self) -> dict[str, np.ndarray]:
        """Every voice's speaker embedding, by name (those stored with one)."""
        found = {}
        for profile in self.list_voices():
            embedding = self.embedding(profile.name)
            if embedding is not None:
                found[profile.name] = embedding
        return found

    # -- writing ---------------------------------------------------------------------------

    def save(
        self, profile: VoiceProfile, conditioning: Any, *, force: bool = False,
        reference: Path | None = None, embedding: np.ndarray | None = None,
    ) -> Path:  # fmt: skip
        """Store a voice (atomically: a half-written voice never appears under its name)."""
        import torch

        folder = self.folder_of(profile.name)
        if folder.exists() and not force:
            raise OutputExistsError(
                f"A voice called '{profile.name}' exists.", "Pass --force to replace it."
            )
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{profile.name}.", dir=self.root))
        try:
            buffer = io.BytesIO()
            torch.save(conditioning, buffer)
            self._write(staging, CONDITIONING, buffer.getvalue())
            if reference is not None:
                with tempfile.TemporaryDirectory(prefix="octavia-ref-") as scratch:
                    wav = Path(scratch) / REFERENCE
                    extract_audio(reference, wav, sample_rate_hz=16_000, channels=1)
                    self._write(staging, REFERENCE, wav.read_bytes())
            if embedding is not None:
                buffer = io.BytesIO()
                np.save(buffer, np.asarray(embedding, dtype=np.float32), allow_pickle=False)
                self._write(staging, EMBEDDING, buffer.getvalue())
            profile.schema = SCHEMA
            profile.created_at = profile.created_at or time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
            )
            self._write(staging, PROFILE, json.dumps(profile.to_dict(), indent=2).encode())
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return folder

    def remove(self, name: str) -> None:
        self.load(name)
        shutil.rmtree(self.folder_of(name))

    def rename(self, name: str, new_name: str, *, force: bool = False) -> None:
        """Give a voice another name (its profile says the new one)."""
        profile = self.load(name)
        target = self.folder_of(new_name)
        if self.exists(new_name) and not force:
            raise OutputExistsError(
                f"A voice called '{new_name}' exists.", "Pass --force to replace it."
            )
        folder = self.folder_of(name)
        profile.name = new_name
        self._write(folder, PROFILE, json.dumps(profile.to_dict(), indent=2).encode())
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)

    # -- moving between machines -------------------------------------------------------------

    def export(self, name: str, destination: Path, passphrase: str, *, force: bool = False) -> Path:
        """A voice as one file sealed with ``passphrase`` (AES-GCM, scrypt), to move to
        another machine: the voice key stays on this one."""
        if not passphrase:
            raise InputError("An exported voice needs a passphrase.", "Give one at the prompt.")
        self.load(name)
        check_output_path(destination, force=force)
        folder = self.folder_of(name)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for role in FILES:
                data = self._read(folder, role)
                if data is not None:
                    info = tarfile.TarInfo(f"{name}/{role}")
                    info.size, info.mtime = len(data), int(time.time())
                    archive.addfile(info, io.BytesIO(data))
        with atomic_path(destination) as tmp:
            tmp.write_bytes(seal_with_passphrase(buffer.getvalue(), passphrase))
        return destination

    def import_voice(
        self, archive_path: Path, passphrase: str = "", *, force: bool = False
    ) -> VoiceProfile:
        """Store a voice exported by :meth:`export` (or a plain ``.tar.gz`` export of an
        Octavia of before), checked before it is stored, sealed with this machine's key."""
        if not archive_path.exists():
            raise InputError(f"{archive_path} does not exist.", "Check the file name.")
        blob = archive_path.read_bytes()
        if is_sealed(blob):
            if not passphrase:
                raise InputError(f"{archive_path} is sealed with a passphrase.", "Give it.")
            blob = open_with_passphrase(blob, passphrase, str(archive_path))
        try:
            with tempfile.TemporaryDirectory(prefix="octavia-voice-") as scratch:
                with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
                    archive.extractall(scratch, filter="data")  # refuses links and ../ paths
                folders = [p for p in Path(scratch).iterdir() if p.is_dir()]
                if len(folders) != 1 or not (folders[0] / PROFILE).exists():
                    raise InputError(f"{archive_path} is not an exported voice.")
                name = check_name(folders[0].name)
                if self.exists(name) and not force:
                    raise OutputExistsError(
                        f"A voice called '{name}' exists.", "Pass --force to replace it."
                    )
                self.root.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
                for role in FILES:
                    if (folders[0] / role).exists():
                        self._write(staging, role, (folders[0] / role).read_bytes())
                target = self.folder_of(name)
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(f"{archive_path} is not an exported voice ({exc}).") from None
        try:
            return self.load(name)
        except InputError:
            shutil.rmtree(self.folder_of(name), ignore_errors=True)
            raise


def library_for(settings: Any) -> VoiceLibrary:
    """The library the settings name (``tts.voice_library``; default the user's)."""
    root = settings.tts.voice_library
    return VoiceLibrary(Path(root) if root else None)


def library_of(voice: str, root: str | Path = "") -> tuple[VoiceLibrary, str]:
    """The library and name of ``voice``: a stored voice's folder (what a dub resolves a
    name to: ``<library>/<name>``), or a name in the library at ``root`` (default: the
    user's)."""
    if os.sep in voice:
        folder = Path(voice)
        return VoiceLibrary(folder.parent), check_name(folder.name)
    return VoiceLibrary(Path(root) if root else None), voice


# The user's own library (the CLI's commands).


def folder_of(name: str) -> Path:
    return VoiceLibrary().folder_of(name)


def load(name: str) -> VoiceProfile:
    return VoiceLibrary().load(name)


def list_voices() -> list[VoiceProfile]:
    return VoiceLibrary().list_voices()


def conditioning(voice: str) -> Any:
    library, name = library_of(voice)
    return library.conditioning(name)
