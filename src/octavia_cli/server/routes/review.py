"""The review pages (``octavia review``'s editor) on ``octavia serve``, for each key's own
finished dubs: ``/review/login`` turns an API key into a session (an HttpOnly, SameSite=Strict
cookie: a browser cannot send API-key headers), ``/review/`` lists the key's dubs, and
``/review/jobs/{id}/`` is the editor of one. Every change carries the session's CSRF token;
another key's job answers 404, as a job that does not exist. Export writes the dub again
under the job's own result names (what ``GET /jobs/{id}/results`` serves) with its subtitles.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from octavia_cli.server.review import COOKIE, Access, Session, Sessions, review_router
from octavia_cli.server.routes.deps import Services, identity, key_id

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Octavia review</title><style>body{{font:15px system-ui,sans-serif;margin:3em auto;
max-width:40em}}input{{width:28em}}li{{margin:.3em 0}}</style></head><body>{body}</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(body=body), status, headers={"Cache-Control": "no-store"})


def _login_form(message: str = "") -> str:
    note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    return (f"<h1>Octavia review</h1>{note}<form method='post' action='/review/login'>"
            "<p><label>API key <input name='key' type='password' autocomplete='off' "
            "autofocus></label></p><p><button>Sign in</button></p></form>")  # fmt: skip


def project_folder(services: Services, job_id: str, owner: str) -> Path:
    """The project of the owner's finished dub ``job_id``; 404 for anything else."""
    job = services.store.job(job_id)
    if job is None or job.key_id != key_id(owner) or job.kind != "dub" or job.state != "succeeded":
        raise HTTPException(404, {"error": "unknown job", "detail": job_id})
    folders = sorted((services.options.data_dir / "jobs" / job_id).glob("*.octavia"))
    if not folders:
        raise HTTPException(404, {"error": "no project", "detail": job_id})
    return folders[0]


def router(services: Services) -> APIRouter:
    sessions = Sessions()
    pages = APIRouter(prefix="/review", include_in_schema=False)

    @pages.get("/login")
    def login_page() -> HTMLResponse:
        return _page(_login_form())

    @pages.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0].strip()
        try:
            owner = identity(services, f"Bearer {key}" if key else None)
        except HTTPException:
            return _page(_login_form("That API key is not valid (or it was revoked)."), 401)
        response = RedirectResponse("/review/", status_code=303)
        secure = (
            request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        )
        response.set_cookie(COOKIE, sessions.open(owner), httponly=True, samesite="strict",
                            path="/review", secure=secure)  # fmt: skip
        return response

    @pages.post("/logout")
    def logout(request: Request) -> Response:
        sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/review/login", status_code=303)
        response.delete_cookie(COOKIE, path="/review")
        return response

    @pages.get("/")
    def jobs(request: Request) -> Response:
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return RedirectResponse("/review/login", status_code=303)
        dubs = [job for job in services.store.jobs(key_id(session.owner), 200)
                if job.kind == "dub" and job.state == "succeeded"]  # fmt: skip
        items = "".join(
            f'<li><a href="/review/jobs/{job.id}/">{html.escape(_name(job.results))}</a> '
            f"({html.escape(', '.join(job.options.get('to', [])))}, job {job.id})</li>"
            for job in dubs
        )
        body = (
            f"<h1>Your dubs</h1><ul>{items or '<li>None finished yet.</li>'}</ul>"
            "<form method='post' action='/review/logout'><button>Sign out</button></form>"
        )
        return _page(body)

    def folder_of(request: Request, session: Session) -> Path:
        return project_folder(services, request.path_params["job_id"], session.owner)

    def export(folder: Path, force: bool, hook: Any) -> list[Path]:
        return _export(services, folder, hook)

    access = Access(sessions, folder_of, "Sign in at /review/login.", export,
                    lambda request: f"/review/jobs/{request.path_params['job_id']}")  # fmt: skip
    pages.include_router(review_router(access), prefix="/jobs/{job_id}")
    return pages


def _name(results: list[dict[str, Any]]) -> str:
    return results[0]["name"] if results else "(no result)"


def _export(services: Services, folder: Path, hook: Any) -> list[Path]:
    """The job's dubs muxed again into its ``out/`` under their result names, and each
    language's subtitles beside them (added to its results)."""
    from octavia_cli.pipeline.lines import export_to

    job_folder = folder.parent
    job = services.store.job(job_folder.name)
    assert job is not None
    out = job_folder / "out"
    by_language = {r["language"]: out / r["name"] for r in job.results if r.get("language")}
    written = export_to(folder, by_language, hook=hook)
    names = {r["name"] for r in job.results}
    results = list(job.results)
    for path in written:
        if path.name not in names:
            language = next((lang for lang in by_language if f".{lang}." in path.name), None)
            results.append({"name": path.name, "size": path.stat().st_size, "language": language})
    for result in results:
        result["size"] = (out / result["name"]).stat().st_size
    services.store.set_results(job.id, results)
    return written
