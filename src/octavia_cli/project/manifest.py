"""The dub project: a folder with one manifest (``project.json``) and the audio it points to.

Every stage reads the manifest, adds to it and saves it atomically, recording the hash of
the inputs it worked from. A stage whose recorded inputs hash equals the one it would
compute now is finished and is skipped, so re-running a command resumes where the last run
stopped, and an edit to the manifest re-runs only what depends on the edited data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octavia_cli import __version__
from octavia_cli.errors import InputError, StageError
from octavia_cli.files import NAME_MAX, atomic_write_bytes, fingerprint_file, short_name
from octavia_cli.media.ffmpeg import MediaInfo
from octavia_cli.project.records import (
    STAGE_INFOS,
    Clip,
    Fit,
    SchemaError,
    Segment,
    Speaker,
    Transcript,
    Translation,
    Word,
    check_keys,
    stage_info,
)

logger = logging.getLogger(__name__)

# 2: strict (an unknown key is an error), typed stage infos (fit's totals nested).
# 3: each line's checks (``checks``), a clip's take, the check stage (all optional: a
# version 2 file reads as it is; an older Octavia refuses a version 3 file by its number).
SCHEMA_VERSION = 3
MANIFEST = "project.json"
PROJECT_SUFFIX = ".octavia"


@dataclass
class StageRecord:
    """A finished stage: what it was computed from and what it reported (``info``: the
    stage's own record type, ``records.STAGE_INFOS``)."""

    inputs_hash: str
    finished_at: str
    seconds: float
    info: Any

    def to_dict(self) -> dict[str, Any]:
        return {"inputs_hash": self.inputs_hash, "finished_at": self.finished_at,
                "seconds": self.seconds, "info": self.info.to_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, stage: str, data: dict[str, Any], where: str) -> StageRecord:
        values = check_keys(data, cls, where)
        return cls(values["inputs_hash"], values["finished_at"], values["seconds"],
                   stage_info(stage, values["info"], f"{where}.info"))  # fmt: skip


# The keys of project.json and of its source section.
TOP_KEYS = ("schema_version", "octavia_version", "created_at", "updated_at", "source",
            "speakers", "transcript", "stages", "outputs")  # fmt: skip
SOURCE_KEYS = ("path", "fingerprint", "media")


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` brought up to :data:`SCHEMA_VERSION`, one version at a time."""
    version = data.get("schema_version")
    while version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1: read leniently (a key the record did not know was dropped), and the fit
    stage's info held the timing totals at its top level; version 2 nests them under
    ``totals``. So: keys version 2 does not know are dropped here as version 1 dropped
    them, and a stage record whose info lacks what version 2 needs (written by an early
    release) is dropped too: that stage runs again, as it would for a changed input."""
    stages = {}
    for name, record in (data.get("stages") or {}).items():
        record = _known(record, StageRecord)
        info = dict(record.get("info") or {})
        kind = name.partition(":")[0]
        if kind == "fit":
            own = {k: info.pop(k) for k in ("refitted", "report", "stretches", "added_s")
                   if k in info}  # fmt: skip
            info = own | {"totals": info}
        info_type = STAGE_INFOS.get(kind)
        if info_type is None:
            continue
        info = _known(info, info_type)
        if any(f.name not in info for f in _required(info_type)):
            logger.info("project.json (version 1): the %s stage will run again", name)
            continue
        stages[name] = record | {"info": info}
    source = _known(data.get("source") or {}, None, SOURCE_KEYS)
    if source.get("media"):
        source["media"] = _known(source["media"], MediaInfo)
    transcript = data.get("transcript")
    if transcript:
        transcript = _known(transcript, Transcript) | {
            "segments": [_segment_v1(s) for s in transcript.get("segments") or []]
        }
    return {k: v for k, v in data.items() if k in TOP_KEYS} | {
        "schema_version": 2,
        "source": source,
        "speakers": [_known(x, Speaker) for x in data.get("speakers") or []],
        "transcript": transcript,
        "stages": stages,
        "outputs": {k: _known(v, OutputRecord) for k, v in (data.get("outputs") or {}).items()},
    }


def _segment_v1(data: dict[str, Any]) -> dict[str, Any]:
    segment = _known(data, Segment)
    segment["words"] = [_known(w, Word) for w in segment.get("words") or []]
    for key, record in (("translations", Translation), ("clips", Clip), ("fits", Fit)):
        segment[key] = {k: _known(v, record) for k, v in (segment.get(key) or {}).items()}
    return segment


def _known(data: Any, cls: Any, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` with only the keys the dataclass ``cls`` (or ``names``) knows."""
    known = names or tuple(f.name for f in dataclasses.fields(cls))
    return {k: v for k, v in data.items() if k in known} if isinstance(data, dict) else {}


def _required(cls: Any) -> list[dataclasses.Field]:
    return [
        f for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip


def _from_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 only added optional keys: a version 2 file is a version 3 one."""
    return data | {"schema_version": 3}


MIGRATIONS = {1: _from_v1, 2: _from_v2}


@dataclass
class OutputRecord:
    """A file this project wrote outside its folder; it may replace it later without --force."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str

    @classmethod
    def of(cls, path: Path, final_path: Path | None = None) -> OutputRecord:
        """Record ``path``; ``final_path`` is where it will be renamed to (a rename keeps the
        size, mtime and content, so the record can be saved before the rename)."""
        stat = path.stat()
        return cls(
            str((final_path or path).resolve()),
            stat.st_size,
            stat.st_mtime_ns,
            fingerprint_file(path),
        )

    def matches(self, path: Path) -> bool:
        """True if ``path`` is still exactly the file we wrote."""
        try:
            stat = path.stat()
        except OSError:
            return False
        return (
            str(path.resolve()) == self.path
            and stat.st_size == self.size
            and stat.st_mtime_ns == self.mtime_ns
            and fingerprint_file(path) == self.fingerprint
        )


def default_project_folder(source: Path, workdir: Path | None = None) -> Path:
    """``<stem>.octavia/`` beside ``source``, or inside ``workdir`` when given."""
    base = workdir if workdir is not None else source.parent
    return base / short_name(source.stem, NAME_MAX, PROJECT_SUFFIX)


def check_project_place(folder: Path, outputs: tuple[Path, ...] = ()) -> None:
    """Raise before any work unless the project ``folder`` can be made (or written) where it
    goes; when the outputs would go to the same unwritable folder, the sentence says how to
    put both elsewhere, so one failed run tells all there is to change.

    Raises:
        InputError: the folder (or, for a new one, the folder it goes in) is not writable.
    """
    place = folder if folder.exists() else folder.parent
    if not place.exists() or os.access(place, os.W_OK | os.X_OK):
        return
    with_outputs = any(o.parent.resolve() == folder.parent.resolve() for o in outputs)
    raise InputError(
        f"Cannot write to {place}: permission denied or read-only, so the project folder "
        f"{folder.name} cannot be made there.",
        "Put the project folder elsewhere with --workdir DIR"
        + (" and the output with -o (e.g. --workdir /tmp -o /tmp/NAME)." if with_outputs else "."),
    )


class Project:
    """A dub project folder. Open it with :meth:`open`; save after each stage."""

    def __init__(self, folder: Path, data: dict[str, Any]) -> None:
        """Raises :class:`SchemaError` where ``data`` does not fit the schema."""
        self.folder = folder
        for key in data:
            if key not in TOP_KEYS:
                raise SchemaError("the top level", f"unknown key '{key}'", TOP_KEYS)
        source = data["source"]
        for key in source:
            if key not in SOURCE_KEYS:
                raise SchemaError("source", f"unknown key '{key}'", SOURCE_KEYS)
        self.source_path: str = source["path"]
        self.source_fingerprint: str = source["fingerprint"]
        media = source.get("media")
        self.media: MediaInfo | None = _media(media) if media else None
        transcript = data.get("transcript")
        self.transcript: Transcript | None = (
            Transcript.from_dict(transcript) if transcript else None
        )
        self.speakers: list[Speaker] = [
            Speaker.from_dict(x, f"speakers[{i}]") for i, x in enumerate(data.get("speakers", []))
        ]
        self.stages: dict[str, StageRecord] = {
            name: StageRecord.from_dict(name, record, f"stages.{name}")
            for name, record in data.get("stages", {}).items()
        }
        self.outputs: dict[str, OutputRecord] = {
            name: OutputRecord(**check_keys(record, OutputRecord, f"outputs[{name!r}]"))
            for name, record in data.get("outputs", {}).items()
        }
        self.created_at: str = data.get("created_at", _now())

    # -- opening and saving --------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path, source: Path) -> Project:
        """Open the project at ``folder`` for ``source``, creating it if needed.

        Raises:
            InputError: the folder holds another input's project, or a newer schema.
        """
        folder = Path(folder)
        manifest = folder / MANIFEST
        fingerprint = fingerprint_file(source)
        if manifest.exists():
            data = cls._read_manifest(manifest)
            project = cls._from_manifest(folder, data)
            if project.source_fingerprint != fingerprint:
                if Path(project.source_path).resolve() != source.resolve():
                    raise InputError(
                        f"{folder} is the project of another input ({project.source_path}).",
                        "Use --workdir to put this input's project elsewhere.",
                    )
                logger.info("%s changed since the last run: starting the project over", source)
                project = cls(folder, cls._new_data(source, fingerprint))
            project.source_path = str(source.resolve())
            return project
        if folder.exists() and any(not _is_our_leftover(p) for p in folder.iterdir()):
            raise InputError(
                f"{folder} exists and is not an Octavia project.",
                "Move it away, or choose another folder with --workdir.",
            )
        return cls(folder, cls._new_data(source, fingerprint))

    @classmethod
    def load(cls, folder: Path) -> Project:
        """Open an existing project folder without its source (for inspection)."""
        manifest = Path(folder) / MANIFEST
        if not manifest.exists():
            raise InputError(f"{folder} is not an Octavia project (no {MANIFEST}).")
        return cls._from_manifest(Path(folder), cls._read_manifest(manifest))

    @staticmethod
    def _read_manifest(manifest: Path) -> dict[str, Any]:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(
                f"{manifest} cannot be read: {exc}.",
                "Fix the JSON (if you edited it), or delete the project folder to start over.",
            ) from None
        version = data.get("schema_version") if isinstance(data, dict) else None
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise InputError(
                f"{manifest} has schema version {version!r}; this Octavia reads up to "
                f"{SCHEMA_VERSION}.",
                "Upgrade Octavia, or delete the project folder to start over.",
            )
        try:
            data["source"]["path"], data["source"]["fingerprint"]
        except (KeyError, TypeError):
            raise InputError(
                f"{manifest} has no source section.", "Delete the project folder to start over."
            ) from None
        return migrate(data)

    @classmethod
    def _from_manifest(cls, folder: Path, data: dict[str, Any]) -> Project:
        """The project of a manifest read from ``folder``; a record that does not fit the
        schema is one sentence naming it and the file."""
        try:
            return cls(folder, data)
        except SchemaError as exc:
            known = f" Known keys there: {', '.join(exc.known)}." if exc.known else ""
            raise InputError(
                f"{folder / MANIFEST}: {exc.problem} in {exc.where}.{known}",
                "Fix it (if you edited it), or delete the project folder to start over.",
            ) from None

    @staticmethod
    def _new_data(source: Path, fingerprint: str) -> dict[str, Any]:
        return {"source": {"path": str(source.resolve()), "fingerprint": fingerprint}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "octavia_version": __version__,
            "created_at": self.created_at,
            "updated_at": _now(),
            "source": {
                "path": self.source_path,
                "fingerprint": self.source_fingerprint,
                "media": self.media.__dict__ if self.media else None,
            },
            "speakers": [speaker.to_dict() for speaker in self.speakers],
            "transcript": self.transcript.to_dict() if self.transcript else None,
            "stages": {name: record.to_dict() for name, record in self.stages.items()},
            "outputs": {name: record.__dict__ for name, record in self.outputs.items()},
        }

    def save(self) -> None:
        """Write the manifest atomically."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        atomic_write_bytes(self.folder / MANIFEST, text.encode("utf-8"))

    @contextlib.contextmanager
    def locked(self) -> Iterator[Project]:
        """Hold an exclusive lock on the project for the duration of a run."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not (self.folder / MANIFEST).exists():
                self.save()  # first, so a folder of ours is recognisable from the start
            handle = open(self.folder / ".lock", "w")  # noqa: SIM115
        except OSError as exc:
            raise InputError(
                f"Cannot create the project folder {self.folder}: {exc.strerror}.",
                "Choose a writable place for it with --workdir.",
            ) from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(
                    f"Another Octavia run is using {self.folder}.",
                    "Wait for it to finish, or stop it.",
                ) from None
            for stale in self.folder.rglob(".*.tmp*"):  # left by a killed run
                stale.unlink(missing_ok=True)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- stages ----------------------------------------------------------------------------

    def path(self, relative: str) -> Path:
        return self.folder / relative

    def is_current(self, stage: str, inputs_hash: str) -> bool:
        record = self.stages.get(stage)
        return record is not None and record.inputs_hash == inputs_hash

    def mark_done(self, stage: str, inputs_hash: str, seconds: float, info: Any) -> None:
        """Record ``stage`` as finished with its typed ``info`` (``records.STAGE_INFOS``)."""
        assert isinstance(info, STAGE_INFOS[stage.partition(":")[0]]), (stage, info)
        self.stages[stage] = StageRecord(inputs_hash, _now(), round(seconds, 3), info)
        self.save()

    def speaker_groups(self) -> dict[str, str]:
        """Speaker id -> the id that speaks for them: speakers sharing a label are one person
        (merged by editing the project), voiced as the first of them."""
        first_of_label: dict[str, str] = {}
        groups = {}
        for speaker in self.speakers:
            groups[speaker.id] = first_of_label.setdefault(speaker.label, speaker.id)
        return groups

    def voice_of(self, speaker_id: str) -> str:
        """The speaker who voices ``speaker_id``'s lines (itself unless merged)."""
        return self.speaker_groups().get(speaker_id, speaker_id)

    def speaker(self, speaker_id: str) -> Speaker | None:
        return next((s for s in self.speakers if s.id == speaker_id), None)

    def require_transcript(self) -> Transcript:
        if self.transcript is None:
            raise StageError("The project has no transcript yet.", "Run the transcribe stage.")
        return self.transcript

    def relative(self, path: Path) -> str:
        return os.path.relpath(path, self.folder)


def _media(data: dict[str, Any]) -> MediaInfo:
    return MediaInfo(**check_keys(data, MediaInfo, "source.media"))


def _is_our_leftover(path: Path) -> bool:
    """The lock file, or a temporary of an atomic write that a killed run left behind."""
    return path.name == ".lock" or (path.name.startswith(".") and ".tmp" in path.name)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
