"""The review pages on ``octavia serve``: a login turns an API key into a session cookie,
each key sees and edits only its own dubs, every change needs the session's CSRF token,
export refreshes the job's results; and the same page driven in headless Chromium under
the server's prefix."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from test_serve import InProcessServer


def _dub(server: InProcessServer, key: str, talk: Path) -> str:
    client = server.http(key)
    upload = client.put("/uploads", params={"filename": "talk.mp4"},
                        content=talk.read_bytes()).json()  # fmt: skip
    job = client.post("/jobs", json={"kind": "dub", "upload_id": upload["id"],
                                     "options": {"to": ["es"], "from": "en"}}).json()  # fmt: skip
    deadline = time.monotonic() + 120
    while client.get(f"/jobs/{job['id']}").json()["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "succeeded"
    return str(job["id"])


def _browser_client(server: InProcessServer):  # -> TestClient at the server's root
    from fastapi.testclient import TestClient

    return TestClient(server.app, base_url=server.url, follow_redirects=False)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _sign_in(server: InProcessServer, key: str):
    browser = _browser_client(server)
    signed = browser.post("/review/login", content=f"key={key}", headers=FORM)
    assert signed.status_code == 303 and signed.headers["location"] == "/review/"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/review" in cookie and "samesite=strict" in cookie.lower()
    return browser


def test_review_pages_per_key_with_login_and_csrf(tmp_path: Path, talk: Path, fake_engines) -> None:
    with InProcessServer(tmp_path / "data") as server:
        alice = server.key("alice", 10)[1]
        bob = server.key("bob", 10)[1]
        job = _dub(server, alice, talk)
        anonymous = _browser_client(server)
        assert anonymous.get(f"/review/jobs/{job}/").status_code == 401
        assert anonymous.get(f"/review/jobs/{job}/api/project").status_code == 401
        assert anonymous.get("/review/").headers["location"] == "/review/login"
        wrong = anonymous.post("/review/login", content="key=oct_nope", headers=FORM)
        assert wrong.status_code == 401 and "not valid" in wrong.text

        browser = _sign_in(server, alice)
        assert f"/review/jobs/{job}/" in browser.get("/review/").text
        page = browser.get(f"/review/jobs/{job}/").text
        assert f'name="octavia-base" content="/review/jobs/{job}"' in page
        assert f'"/review/jobs/{job}/static/review.js"' in page
        csrf = page.split('name="octavia-csrf" content="')[1].split('"')[0]
        project = browser.get(f"/review/jobs/{job}/api/project").json()
        line = project["lines"][0]
        edit = {"lang": "es", "text": "Hola a todos.", "version": project["version"]}
        forged = browser.post(f"/review/jobs/{job}/api/lines/{line['id']}/redub", json=edit)
        assert forged.status_code == 403  # no CSRF token
        done = browser.post(f"/review/jobs/{job}/api/lines/{line['id']}/redub", json=edit,
                            headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert done.status_code == 200, done.text
        assert done.json()["lines"][0]["dub"]["es"]["text"] == "Hola a todos."
        # Export: the job's own results written again, its subtitles added to them.
        exported = browser.post(f"/review/jobs/{job}/api/export", json={"force": False},
                                headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert exported.status_code == 200, exported.text
        assert exported.json()["written"] == ["talk.es.mp4", "talk.es.srt"]  # names, no paths
        results = server.http(alice).get(f"/jobs/{job}").json()["results"]
        assert {r["name"] for r in results} == {"talk.es.mp4", "talk.es.srt"}
        srt = server.http(alice).get(f"/jobs/{job}/results/talk.es.srt")
        assert srt.status_code == 200 and "Hola a todos." in srt.text

        # Another key: the job is not theirs, as if it did not exist.
        other = _sign_in(server, bob)
        assert f"/review/jobs/{job}/" not in other.get("/review/").text
        for path in ("/", "/api/project", "/audio/source", "/api/energy"):
            assert other.get(f"/review/jobs/{job}{path}").status_code == 404, path
        stolen = other.post(f"/review/jobs/{job}/api/lines/{line['id']}/redub", json=edit,
                            headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert stolen.status_code in (403, 404)
        assert browser.post("/review/logout").status_code == 303
        assert browser.get(f"/review/jobs/{job}/api/project").status_code == 401


@pytest.mark.slow
def test_the_same_page_in_chromium_on_serve(tmp_path: Path, talk: Path, fake_engines) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if chromium is None:
        pytest.skip("no Chromium here (scripts/install-system-deps.sh installs it)")
    import uvicorn

    from octavia_cli.cli.serve_cmd import _listen

    listening = _listen("127.0.0.1", 0)
    port = listening.getsockname()[1]
    with InProcessServer(tmp_path / "data") as server:
        key = server.key("carol", 10)[1]
        job = _dub(server, key, talk)
        web = uvicorn.Server(uvicorn.Config(server.app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=web.run, kwargs={"sockets": [listening]}, daemon=True)
        thread.start()
        while not web.started:
            time.sleep(0.05)
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium,
                                                     args=["--no-sandbox"])  # fmt: skip
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"http://127.0.0.1:{port}/review/login")
                page.fill("input[name=key]", key)
                page.click("button")
                page.click(f"a[href='/review/jobs/{job}/']")
                page.wait_for_selector("#rows .row")
                page.click("#rows .row")
                with page.expect_response(lambda r: r.url.endswith(
                        f"/review/jobs/{job}/audio/source")) as answer:  # fmt: skip
                    page.click("#play-source")
                assert answer.value.status in (200, 206)
                assert errors == []
                browser.close()
        finally:
            web.should_exit = True
            thread.join(10)
