"""``octavia review``: a dubbed project in the browser, served on this machine only.

The page (``static/review.*``: plain HTML, CSS and JavaScript, nothing to build) shows a
timeline of the source and the dub per speaker, drawn from energy envelopes computed once
per audio file (``review/energy.json`` in the project, 20 values a second), every line as a
block coloured by its speed and its line check, and a list of the lines drawn a screen at a
time (a film's thousands of lines stay fast). A line plays from a little before it to a
little after: the source, its dubbed clip, or the mix, each fetched with range requests.

Access: the server listens on 127.0.0.1 and answers only requests addressed to it (a
``Host`` check, so a web page cannot reach it by DNS rebinding); the URL it prints carries
a one-time token that the first visit exchanges for an HttpOnly, SameSite=Strict session
cookie. While another Octavia run holds the project's lock, the page says so and reloads
what changed when it ends.
"""

from __future__ import annotations

import fcntl
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from octavia_cli.errors import InputError, OctaviaError, OutputExistsError
from octavia_cli.files import atomic_write_bytes
from octavia_cli.pipeline import lines as editing
from octavia_cli.pipeline.lines import StaleEdit, redub_line, restore_take, takes, version
from octavia_cli.project.layout import SOURCE_WAV, mix_path, timing_report_path
from octavia_cli.project.manifest import MANIFEST, Project
from octavia_cli.server.errors import json_errors
from octavia_cli.server.security import HostCheck, allowed_hosts

STATIC = Path(__file__).with_name("static")
COOKIE = "octavia_review"
ENERGY = "review/energy.json"
ENERGY_RATE_HZ = 20
FLOOR_DB = -60.0


def languages(project: Project) -> list[str]:
    """The languages the project has a finished mix of."""
    return sorted(name.split(":", 1)[1] for name in project.stages if name.startswith("mix:"))


def check_reviewable(folder: Path) -> Project:
    """The project at ``folder``, if it can be reviewed.

    Raises:
        InputError: there is no project there, nothing is dubbed yet, or a run is dubbing it.
    """
    if not (folder / MANIFEST).is_file():
        raise InputError(
            f"There is no Octavia project at {folder}.",
            "Dub the file first (octavia dub FILE --to LANG), then review it.",
        )
    project = Project.load(folder)
    if is_locked(folder) and not languages(project):
        raise InputError(
            f"{folder} is still being dubbed (another Octavia run holds it).",
            "Review it once that run has finished.",
        )
    if not languages(project):
        raise InputError(
            f"{folder} has nothing dubbed yet.",
            f"Finish the dub first (octavia dub {project.source_path} --to LANG).",
        )
    return project


def is_locked(folder: Path) -> bool:
    """Whether another run holds the project's lock (asked without waiting, let go at once)."""
    lock = folder / ".lock"
    if not lock.exists():
        return False
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def envelope(path: Path) -> list[int]:
    """The loudness of ``path`` (any WAV), ENERGY_RATE_HZ values a second, 0-255 for
    FLOOR_DB-0 dBFS, read a block at a time (a film's audio never whole in memory)."""
    import soundfile

    values: list[int] = []
    with soundfile.SoundFile(str(path)) as audio:
        hop = max(1, audio.samplerate // ENERGY_RATE_HZ)
        for block in audio.blocks(blocksize=hop * 600, dtype="float32", always_2d=True):
            mono = block.mean(axis=1)
            count = len(mono) // hop
            if count:
                frames = mono[: count * hop].reshape(count, hop)
                rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
                level = np.clip((20 * np.log10(rms) - FLOOR_DB) / -FLOOR_DB, 0, 1)
                values.extend(np.round(level * 255).astype(int).tolist())
    return values


def energy(project: Project) -> dict[str, Any]:
    """The envelopes of the source and of each language's dubbed voice, computed once per
    file (kept in the project with the size and time of the file they were made from)."""
    cache_path = project.path(ENERGY)
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    wanted = {"source": project.path(SOURCE_WAV)} | {
        lang: project.path(f"mix/voice.{lang}.wav") for lang in languages(project)
    }
    changed = False
    for name, path in wanted.items():
        if not path.exists():
            continue
        stamp = [path.stat().st_size, path.stat().st_mtime_ns]
        if cache.get(name, {}).get("stamp") != stamp:
            cache[name] = {"stamp": stamp, "values": envelope(path)}
            changed = True
    if changed:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache_path, json.dumps(cache, separators=(",", ":")).encode())
    tracks = {name: cache[name]["values"] for name in wanted if name in cache}
    return {"rate": ENERGY_RATE_HZ, "tracks": tracks}


def view(project: Project) -> dict[str, Any]:
    """What the page shows: the source, speakers, and each line with its dub per language
    (times, text, speed, fit and check, from the timing report)."""
    transcript = project.require_transcript()
    dubs: dict[str, dict[str, Any]] = {}
    for lang in languages(project):
        report = json.loads(project.path(timing_report_path(lang)).read_text(encoding="utf-8"))
        dubs[lang] = {line["id"]: line for line in report["lines"]}
    duration = project.media.duration_s if project.media else 0.0
    lines = []
    for segment in transcript.segments:
        entry: dict[str, Any] = {
            "id": segment.id, "start": segment.start_s, "end": segment.end_s,
            "speaker": segment.speaker, "text": segment.text, "dub": {},
        }  # fmt: skip
        for lang, by_id in dubs.items():
            line = by_id.get(segment.id)
            clip = segment.clips.get(lang)
            if line is None:
                continue
            check = line.get("check") or {}
            entry["dub"][lang] = {
                "text": line["text"], "start": line["start_s"], "end": line["end_s"],
                "speed": line["speed"], "status": line["status"],
                "violations": line["violations"], "flagged": bool(check.get("flagged")),
                "cer": check.get("cer"), "heard": check.get("heard"),
                "takes": check.get("takes"), "clip": bool(clip and clip.path),
                "slot_s": line.get("slot_s"),
                "natural_s": clip.natural_s if clip is not None else None,
            }  # fmt: skip
        lines.append(entry)
        duration = max(duration, segment.end_s)
    return {
        "version": version(project.folder),
        "source": Path(project.source_path).name,
        "duration": duration,
        "languages": list(dubs),
        "speakers": [{"id": s.id, "label": s.label, "voice": s.voice} for s in project.speakers],
        "lines": lines,
        "mix": {lang: mix_view(project, lang) for lang in dubs},
    }


def mix_view(project: Project, lang: str) -> dict[str, Any]:
    from octavia_cli.config import load_settings
    from octavia_cli.pipeline.lines import mix_options

    options = mix_options(project, lang, load_settings({}))
    separated = bool(project.stages[f"mix:{lang}"].info.separated)
    return {"ducking": options.ducking, "loudness": options.loudness, "separated": separated}


class LineEdit(BaseModel):
    lang: str = Field(min_length=2, max_length=16)
    version: str | None = Field(None, max_length=40)  # what the page read: stale is 409
    text: str | None = Field(None, max_length=5000)
    take: int = Field(0, ge=0, le=10)


class SpeakerEdit(BaseModel):
    version: str | None = Field(None, max_length=40)
    label: str | None = Field(None, max_length=64)
    voice: str | None = Field(None, max_length=200)


class CueText(BaseModel):
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    text: str = Field(max_length=500)


class CueEdit(BaseModel):
    version: str | None = Field(None, max_length=40)
    cues: list[CueText] = Field(max_length=20_000)


class LineMove(BaseModel):
    version: str | None = Field(None, max_length=40)
    speaker: str | None = Field(None, max_length=64)
    shift_s: float | None = Field(None, ge=-5, le=5)


class Remix(BaseModel):
    version: str | None = Field(None, max_length=40)
    ducking: str = Field(max_length=20)
    loudness: str = Field(max_length=20)


class ExportRequest(BaseModel):
    force: bool = False


@dataclass
class Session:
    """A signed-in browser: whose it is (an API key's id on serve) and the token its page
    sends with every change (CSRF: another site's page can neither read nor send it)."""

    owner: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


class Sessions:
    """Browser sessions, by the id their HttpOnly cookie carries; the local review's
    one-time token makes the first."""

    def __init__(self, token: str | None = None) -> None:
        self._token = token
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, owner: str) -> str:
        with self._lock:
            cookie = secrets.token_urlsafe(32)
            self._sessions[cookie] = Session(owner)
            return cookie

    def exchange(self, token: str) -> str | None:
        """A new session for the one-time token, once; None for anything else."""
        with self._lock:
            if self._token is None or not secrets.compare_digest(token, self._token):
                return None
            self._token = None
        return self.open("local")

    def get(self, cookie: str | None) -> Session | None:
        with self._lock:
            return self._sessions.get(cookie or "")

    def close(self, cookie: str | None) -> None:
        with self._lock:
            self._sessions.pop(cookie or "", None)


@dataclass(frozen=True)
class Access:
    """How the review routes find their project and who may use it: the local review's
    one project, or (on serve) the project of the job in the path, for its key only."""

    sessions: Sessions
    folder_of: Callable[[Request, Session], Path]  # raises HTTPException(404) if not theirs
    signed_out: str  # what a request without a session is told
    # writes the outputs (reporting to the hook); returns their paths
    export: Callable[[Path, bool, Callable[[Any], None]], list[Path]]
    base: Callable[[Request], str] = lambda request: ""  # the pages' prefix in the URL


def render_page(access: Access, request: Request) -> Response:
    """The page, for a signed-in session of a project it may open: its prefix and the
    session's CSRF token in meta tags for the script."""
    current = access.sessions.get(request.cookies.get(COOKIE))
    if current is None:
        return Response(access.signed_out, 401)
    access.folder_of(request, current)
    base = access.base(request)
    html = (STATIC / "review.html").read_text(encoding="utf-8")
    html = html.replace('"/static/', f'"{base}/static/').replace(
        "<head>", f'<head>\n<meta name="octavia-base" content="{base}">\n'
                  f'<meta name="octavia-csrf" content="{current.csrf}">', 1)  # fmt: skip
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def review_router(access: Access) -> APIRouter:
    """The page and its API, for any project ``access`` lets a session open."""
    router = APIRouter()

    def session(request: Request) -> Session:
        found = access.sessions.get(request.cookies.get(COOKIE))
        if found is None:
            raise HTTPException(401, {"error": "not signed in", "detail": access.signed_out})
        return found

    def folder(request: Request) -> Path:
        return access.folder_of(request, session(request))

    @router.get("/")
    def page(request: Request) -> Response:
        return render_page(access, request)

    @router.get("/static/{name}")
    def static(name: str, request: Request) -> FileResponse:
        session(request)
        if name not in ("review.js", "review.css"):
            raise HTTPException(404, {"error": "not found"})
        return FileResponse(STATIC / name)

    @router.get("/api/project")
    def project_view(request: Request) -> dict[str, Any]:
        return view(Project.load(folder(request)))

    @router.get("/api/energy")
    def energy_view(request: Request) -> dict[str, Any]:
        return energy(Project.load(folder(request)))

    @router.get("/api/status")
    def status(request: Request) -> dict[str, Any]:
        where = folder(request)
        return {"locked": is_locked(where), "version": version(where)}

    def edit(request: Request, work: Callable[[Path], Any]) -> dict[str, Any]:
        """Run an edit: only with the session's CSRF token in ``X-CSRF-Token`` (the page
        has it; with the SameSite cookie, no other site can make edits in the user's name)."""
        current = session(request)
        sent = request.headers.get("x-csrf-token", "")
        if not secrets.compare_digest(sent, current.csrf):
            raise HTTPException(403, {"error": "missing CSRF token", "detail": "X-CSRF-Token"})
        where = access.folder_of(request, current)
        try:
            work(where)
        except StaleEdit as exc:
            raise HTTPException(409, {"error": "stale", "detail": exc.message}) from None
        except OctaviaError as exc:  # one sentence, as the CLI says it
            conflict = isinstance(exc, OutputExistsError) or "Another Octavia run" in exc.message
            detail = f"{exc.message} {exc.hint}".strip() if exc.hint else exc.message
            raise HTTPException(409 if conflict else 422, {"error": "refused", "detail": detail}
                                ) from None  # fmt: skip
        return view(Project.load(where))

    @router.post("/api/lines/{line_id}/redub")
    def redub(line_id: str, body: LineEdit, request: Request) -> dict[str, Any]:
        return edit(request, lambda f: redub_line(f, body.lang, line_id, body.text or "",
                                                  body.version))  # fmt: skip

    @router.post("/api/lines/{line_id}/restore")
    def restore(line_id: str, body: LineEdit, request: Request) -> dict[str, Any]:
        return edit(request, lambda f: restore_take(f, body.lang, line_id, body.take,
                                                    body.version))  # fmt: skip

    @router.post("/api/speakers/{speaker_id}")
    def speaker(speaker_id: str, body: SpeakerEdit, request: Request) -> dict[str, Any]:
        return edit(request, lambda f: editing.edit_speaker(f, speaker_id, body.label,
                                                            body.voice, body.version))  # fmt: skip

    @router.post("/api/lines/{line_id}")
    def line(line_id: str, body: LineMove, request: Request) -> dict[str, Any]:
        return edit(request, lambda f: editing.edit_line(f, line_id, body.speaker,
                                                         body.shift_s, body.version))  # fmt: skip

    @router.post("/api/remix")
    def remix(body: Remix, request: Request) -> dict[str, Any]:
        return edit(request, lambda f: editing.remix(f, body.ducking, body.loudness,
                                                     body.version))  # fmt: skip

    @router.get("/api/subtitles/{lang}")
    def subtitles(lang: str, request: Request) -> dict[str, Any]:
        where = folder(request)
        current = Project.load(where)
        if lang not in languages(current):
            raise HTTPException(404, {"error": "unknown language", "detail": lang})
        rules = editing.subtitle_rules()
        cues = editing.subtitle_cues(current, lang)
        return {"version": version(where),
                "rules": {"max_cps": rules.max_cps, "max_line_chars": rules.max_line_chars,
                          "max_lines": rules.max_lines, "min_duration_s": rules.min_duration_s,
                          "max_duration_s": rules.max_duration_s},
                "cues": [{"start_s": c.start_s, "end_s": c.end_s, "text": c.text}
                         for c in cues]}  # fmt: skip

    @router.put("/api/subtitles/{lang}")
    def save_subtitles(lang: str, body: CueEdit, request: Request) -> dict[str, Any]:
        cues = [cue.model_dump() for cue in body.cues]
        return edit(request, lambda f: editing.save_subtitles(f, lang, cues, body.version))

    progress: dict[Path, str] = {}  # what an export of each project is doing

    def reporter(where: Path) -> Callable[[Any], None]:
        def hook(event: Any) -> None:
            done = f" {event.completed / event.total:.0%}" if event.total else ""
            progress[where] = f"{event.stage} {event.status.value}{done}"

        return hook

    @router.get("/api/progress")
    def export_progress(request: Request) -> dict[str, Any]:
        return {"message": progress.get(folder(request), "")}

    @router.get("/api/voices/{lang}")
    def voices(lang: str, request: Request) -> list[str]:
        current = Project.load(folder(request))
        if lang not in languages(current):
            raise HTTPException(404, {"error": "unknown language", "detail": lang})
        return editing.voice_choices(current, lang)

    @router.post("/api/export")
    def export(body: ExportRequest, request: Request) -> dict[str, Any]:
        written: list[Path] = []

        def work(where: Path) -> None:
            try:
                written.extend(access.export(where, body.force, reporter(where)))
            finally:
                progress.pop(where, None)

        result = edit(request, work)
        return result | {"written": [path.name if access.base(request) else str(path)
                                     for path in written]}  # fmt: skip

    @router.get("/api/lines/{line_id}/takes")
    def line_takes(line_id: str, lang: str, request: Request) -> list[dict[str, Any]]:
        current = Project.load(folder(request))
        return [{k: v for k, v in take.items() if k != "clip"}
                for take in takes(current, lang, line_id)]  # fmt: skip

    @router.get("/audio/source")
    def source_audio(request: Request) -> FileResponse:
        return _audio(Project.load(folder(request)).path(SOURCE_WAV))

    @router.get("/audio/mix/{lang}")
    def mix_audio(lang: str, request: Request) -> FileResponse:
        current = Project.load(folder(request))
        if lang not in languages(current):
            raise HTTPException(404, {"error": "unknown language", "detail": lang})
        return _audio(current.path(mix_path(lang)))

    @router.get("/audio/clip/{lang}/{line_id}")
    def clip_audio(lang: str, line_id: str, request: Request) -> FileResponse:
        current = Project.load(folder(request))
        segment = next((s for s in current.require_transcript().segments if s.id == line_id),
                       None)  # fmt: skip
        clip = segment.clips.get(lang) if segment is not None else None
        if segment is None or clip is None or not clip.path:
            raise HTTPException(404, {"error": "no clip", "detail": f"{line_id} {lang}"})
        fitted = segment.fits.get(lang)
        path = current.path(fitted.path) if fitted is not None and fitted.path else None
        return _audio(path if path is not None and path.exists() else current.path(clip.path))

    return router


def create_review_app(folder: Path, token: str, port: int, host: str = "127.0.0.1") -> FastAPI:
    """``octavia review``'s app: one project, the session opened by the printed link."""
    sessions = Sessions(token)
    app = FastAPI(title="Octavia review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(HostCheck, allowed=allowed_hosts(host, port), active=lambda: True)
    json_errors(app)
    signed_out = "Open the link octavia review printed (it carries a one-time token)."

    access = Access(
        sessions,
        lambda request, session: folder,
        signed_out,
        lambda where, force, hook: editing.export(where, force, hook=hook),
    )

    @app.get("/", include_in_schema=False)
    def link(request: Request, token: str = "") -> Response:
        if not token:
            return render_page(access, request)
        cookie = sessions.exchange(token)
        if cookie is None:
            return Response("This link was used already: it opens one browser session. "
                            "Run octavia review again for a new one.", 401)  # fmt: skip
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/")
        return response

    app.include_router(review_router(access))
    return app


def _audio(path: Path) -> FileResponse:
    if not path.exists():
        raise HTTPException(404, {"error": "no audio", "detail": path.name})
    return FileResponse(path, media_type="audio/wav")
