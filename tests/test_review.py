"""``octavia review``: the page of a dubbed shared dialogue driven in headless Chromium
(Playwright, Debian's chromium-headless-shell), its one-time link and Host check, and the
one-sentence refusals (no project, a project still being dubbed, a port in use)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

DIALOGUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "dialogues"


def _browser() -> str:
    for name in ("chromium-headless-shell", "chromium"):
        if found := shutil.which(name):
            return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: scripts/install-system-deps.sh installs it")
    pytest.skip("no Chromium here (scripts/install-system-deps.sh installs it)")


class Review:
    """The review app served by uvicorn on a thread, on a free port of 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        import secrets

        import uvicorn

        from octavia_cli.cli.serve_cmd import _listen
        from octavia_cli.server.review import create_review_app

        self.socket = _listen("127.0.0.1", 0)
        self.port = self.socket.getsockname()[1]
        self.token = secrets.token_urlsafe(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/?token={self.token}"
        app = create_review_app(folder, self.token, self.port)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       daemon=True)  # fmt: skip

    def __enter__(self) -> Review:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the review server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _open(playwright, review: Review) -> tuple:
    """Chromium on the review page, signed in, its lines drawn; and the page's errors."""
    browser = playwright.chromium.launch(executable_path=_browser(), args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(review.url)
    page.wait_for_selector("#rows .row")
    return browser, page, errors


@pytest.fixture(scope="module")
def dubbed_dialogue(tmp_path_factory: pytest.TempPathFactory, isolated_module) -> Path:
    """two-on-the-phone dubbed offline into Spanish: its project folder."""
    if not (DIALOGUE / "two-on-the-phone.flac").exists():
        pytest.skip("needs ../shared/data/dialogues")
    from octavia_cli.cli import run

    folder = tmp_path_factory.mktemp("review")
    source = Path(shutil.copy(DIALOGUE / "two-on-the-phone.flac", folder / "call.flac"))
    assert run(["--quiet", "dub", str(source), "--to", "es", "--from", "en"]) == 0
    return folder / "call.octavia"


@pytest.fixture
def page(dubbed_dialogue: Path) -> Iterator[tuple]:
    sync_api = pytest.importorskip("playwright.sync_api")
    browser_path = _browser()
    with Review(dubbed_dialogue) as review, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path,
            args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield review, page, errors
        browser.close()


@pytest.mark.slow
def test_the_page_shows_the_dub_and_plays_each_line(page, dubbed_dialogue: Path) -> None:
    import json

    review, page, errors = page
    project = json.loads((dubbed_dialogue / "project.json").read_text())
    lines = project["transcript"]["segments"]
    page.goto(review.url)
    assert page.url == f"{review.base}/"  # the token is exchanged and gone from the URL
    page.wait_for_selector("#rows .row")
    assert page.inner_text("#source") == "call.flac"
    assert page.inner_text("#summary").startswith(f"{len(lines)} lines · 2 speakers")
    shown = page.eval_on_selector_all("#rows .row", "rows => rows.map(r => r.dataset.id)")
    assert shown == [line["id"] for line in lines][: len(shown)] and shown
    # Click the third line's block on the timeline: it is selected, its dub shown.
    line = lines[2]
    box = page.locator("#timeline").bounding_box()
    lanes = page.eval_on_selector_all("#labels div", "divs => divs.map(d => d.textContent)")
    label = next(s["label"] for s in project["speakers"] if s["id"] == line["speaker"])
    lane = lanes.index(f"{label} source")
    page.wait_for_function("() => document.querySelector('#timeline').width > 0")
    x = (line["start_s"] + line["end_s"]) / 2 * 40  # 40 px a second, not scrolled
    page.mouse.click(box["x"] + x, box["y"] + lane * 24 + 12)
    assert page.inner_text("#detail h2").startswith(line["id"])
    detail = page.inner_text("#detail")
    assert line["text"] in detail and line["translations"]["es"]["text"] in detail
    assert page.locator("#rows .row.selected").get_attribute("data-id") == line["id"]
    if os.environ.get("REVIEW_SCREENSHOT"):  # docs/review.png is made this way
        page.screenshot(path=os.environ["REVIEW_SCREENSHOT"])
    # Each player fetches its audio, by range requests.
    for button, path in (("#play-source", "/audio/source"),
                         ("#play-dub", f"/audio/clip/es/{line['id']}"),
                         ("#play-mix", "/audio/mix/es")):  # fmt: skip
        with page.expect_response(lambda r, p=path: r.url.endswith(p)) as answer:
            page.click(button)
        assert answer.value.status in (200, 206)
        assert answer.value.request.headers.get("range", "").startswith("bytes=")
    # The energy lanes came from the project's own audio, computed once.
    assert (dubbed_dialogue / "review" / "energy.json").exists()
    # Zoom keeps working on a long timeline; no script error anywhere.
    page.click("#zoom-out")
    page.click("#zoom-in")
    assert errors == []


def _hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "clips" / "es").glob("*.wav"))}  # fmt: skip


@pytest.mark.slow
def test_a_line_edited_and_redubbed_from_the_page(dubbed_dialogue: Path, tmp_path: Path) -> None:
    """A new translation typed on the page is spoken again in context: only that line's
    clip and the mix change, project.json holds the edit, the page shows the new take, and
    the earlier one comes back; an edit from a stale page is refused (409)."""
    import hashlib
    import json

    sync_api = pytest.importorskip("playwright.sync_api")
    folder = tmp_path / "call.octavia"
    shutil.copytree(dubbed_dialogue, folder)
    before = _hashes(folder)
    mix = folder / "mix" / "dub.es.wav"
    mix_before = hashlib.sha256(mix.read_bytes()).hexdigest()
    project = json.loads((folder / "project.json").read_text())
    line = project["transcript"]["segments"][2]
    old_text = line["translations"]["es"]["text"]
    # The line's clip: its first take's file, or a later take's the check chose.
    old_clip = hashlib.sha256((folder / line["clips"]["es"]["path"]).read_bytes()).hexdigest()
    new_text = "Langostas, y más langostas, por todas partes."
    with Review(folder) as review, sync_api.sync_playwright() as playwright:
        browser, page, errors = _open(playwright, review)
        page.click(f"#rows .row[data-id='{line['id']}']")
        page.fill("#edit-text", new_text)
        assert page.inner_text("#estimate").startswith("about ")
        post = """async ([id, headers]) => (await fetch(`/api/lines/${id}/redub`, {
            method: 'POST', headers: {'Content-Type': 'application/json', ...headers},
            body: JSON.stringify({lang: 'es', text: 'x', version: '1'})})).status"""
        csrf = page.get_attribute("meta[name='octavia-csrf']", "content")
        stale = page.evaluate(post, [line["id"], {"X-CSRF-Token": csrf}])
        assert stale == 409  # a version the project is no longer at
        forged = page.evaluate(post, [line["id"], {}])
        assert forged == 403  # without the session's CSRF token
        page.click("#redub")
        page.wait_for_function(
            "text => document.querySelector('#detail') && "
            "document.querySelector('#detail').innerText.includes(text) && "
            "document.querySelector('#takes li')", arg=new_text, timeout=120_000,
        )  # fmt: skip
        assert old_text in page.inner_text("#takes")  # the earlier take, to bring back
        saved = json.loads((folder / "project.json").read_text())
        assert saved["transcript"]["segments"][2]["translations"]["es"]["text"] == new_text
        after = _hashes(folder)
        changed = {name for name in after if after[name] != before.get(name)}
        assert changed == {f"{line['id']}.wav"} or changed <= {
            f"{line['id']}.wav",
            *(n for n in after if n.startswith(f"{line['id']}.t")),
        }  # its clip (and its retakes, if the check asked for one), nothing else
        assert f"{line['id']}.wav" in changed
        assert hashlib.sha256(mix.read_bytes()).hexdigest() != mix_before
        # Bring the earlier take back: its text and its very audio.
        page.click("#takes .restore")
        page.wait_for_function(
            "text => document.querySelector('#edit-text') && "
            "document.querySelector('#edit-text').value === text", arg=old_text,
            timeout=120_000,
        )  # fmt: skip
        restored = json.loads((folder / "project.json").read_text())
        assert restored["transcript"]["segments"][2]["translations"]["es"]["text"] == old_text
        clip = folder / restored["transcript"]["segments"][2]["clips"]["es"]["path"]
        assert hashlib.sha256(clip.read_bytes()).hexdigest() == old_clip
        assert errors == []
        browser.close()


@pytest.mark.slow
def test_speakers_subtitles_and_export_from_the_page(dubbed_dialogue: Path, tmp_path: Path) -> None:
    """Rename a speaker, merge two (the second's lines spoken again in the first's voice),
    edit a subtitle, and export the dub and its subtitles where octavia dub writes them."""
    import json

    sync_api = pytest.importorskip("playwright.sync_api")
    folder = tmp_path / "call.octavia"
    shutil.copytree(dubbed_dialogue, folder)
    source = Path(shutil.copy(dubbed_dialogue.parent / "call.flac", tmp_path / "call.flac"))
    manifest = json.loads((folder / "project.json").read_text())
    manifest["source"]["path"] = str(source)
    manifest["outputs"] = {}
    (folder / "project.json").write_text(json.dumps(manifest))
    s1_voice = next(s["clips"]["es"]["voice"] for s in manifest["transcript"]["segments"]
                    if s["speaker"] == "S1")  # fmt: skip
    with Review(folder) as review, sync_api.sync_playwright() as playwright:
        browser, page, errors = _open(playwright, review)
        page.click(".tab[data-panel='speakers-panel']")
        page.wait_for_selector("#voice-choices option", state="attached")
        choices = page.eval_on_selector_all("#voice-choices option", "os => os.map(o => o.value)")
        assert "es+m3" in choices and "es+f4" in choices  # espeak-ng's Spanish voices
        page.fill("#speakers tr[data-id='S1'] .label", "Ann")
        page.click("#speakers tr[data-id='S1'] .save-speaker")
        saved = "() => document.querySelector('#speakers-status').textContent === 'Saved.'"
        page.wait_for_function(saved)
        assert json.loads((folder / "project.json").read_text())["speakers"][0]["label"] == "Ann"
        assert "Ann es" in page.inner_text("#labels")
        page.fill("#speakers tr[data-id='S2'] .label", "Ann")  # the same person: merged
        page.click("#speakers tr[data-id='S2'] .save-speaker")
        page.wait_for_function(saved, timeout=120_000)
        merged = json.loads((folder / "project.json").read_text())
        assert {s["label"] for s in merged["speakers"]} == {"Ann"}
        voices = {s["clips"]["es"]["voice"] for s in merged["transcript"]["segments"]}
        assert voices == {s1_voice}  # one voice for the one person
        # A subtitle edited, kept, and written out on export.
        page.click(".tab[data-panel='subtitles-panel']")
        page.wait_for_selector("#cues .cue-text")
        page.fill("#cues tr:first-child .cue-text", "Unos cantaban a voces.")
        assert "chars/s" in page.inner_text("#cues tr:first-child td:last-child")
        page.fill("#cues tr:first-child .end_s", "0.9")  # too short to read: said live
        assert "shorter than" in page.inner_text("#cues tr:first-child td:last-child")
        page.fill("#cues tr:first-child .end_s", "3.5")
        page.click("#save-subtitles")
        page.wait_for_function(
            "() => document.querySelector('#subtitles-status').textContent.startsWith('Saved')"
        )
        page.click(".tab[data-panel='export-panel']")
        page.click("#export")
        status = "() => document.querySelector('#export-status').textContent"
        page.wait_for_function(f"{status} === 'Written:'", timeout=120_000)
        written = page.inner_text("#exported")
        assert (
            str(tmp_path / "call.es.flac") in written and str(tmp_path / "call.es.srt") in written
        )
        srt = (tmp_path / "call.es.srt").read_text()
        assert "Unos cantaban a voces." in srt and "00:00:03,500" in srt
        assert (tmp_path / "call.es.flac").stat().st_size > 10_000
        # A file of the user's is not replaced without the box ticked (--force).
        (tmp_path / "call.es.srt").write_text("mine")
        manifest = json.loads((folder / "project.json").read_text())
        manifest["outputs"].pop(str((tmp_path / "call.es.srt").resolve()), None)
        (folder / "project.json").write_text(json.dumps(manifest))
        page.reload()
        page.wait_for_selector("#rows .row")
        page.click(".tab[data-panel='export-panel']")
        page.click("#export")
        page.wait_for_function(
            "() => document.querySelector('#export-status').textContent.startsWith('Not exported')"
        )
        assert "--force" in page.inner_text("#export-status") or "exists" in page.inner_text(
            "#export-status"
        )
        assert (tmp_path / "call.es.srt").read_text() == "mine"
        assert errors == []
        browser.close()


@pytest.mark.slow
def test_a_line_moved_or_given_to_another_speaker_and_the_mix_redone(
    dubbed_dialogue: Path, tmp_path: Path
) -> None:
    import json

    import httpx

    folder = tmp_path / "call.octavia"
    shutil.copytree(dubbed_dialogue, folder)
    project = json.loads((folder / "project.json").read_text())
    line = project["transcript"]["segments"][2]
    s1_voice = next(s["clips"]["es"]["voice"] for s in project["transcript"]["segments"]
                    if s["speaker"] == "S1")  # fmt: skip
    with Review(folder) as review:
        session = httpx.get(review.url, follow_redirects=False).cookies["octavia_review"]
        api = httpx.Client(base_url=review.base, cookies={"octavia_review": session},
                           timeout=120)  # fmt: skip
        page = api.get("/").text
        csrf = page.split('name="octavia-csrf" content="')[1].split('"')[0]
        api.headers["X-CSRF-Token"] = csrf
        version = api.get("/api/project").json()["version"]
        assert api.get("/api/progress").json() == {"message": ""}  # no export running
        # While a CLI run holds the project, the page is read-only: it is told, and an edit
        # is refused with the CLI's sentence.
        from octavia_cli.project.manifest import Project

        with Project.load(folder).locked():
            assert api.get("/api/status").json()["locked"] is True
            held = api.post(f"/api/lines/{line['id']}", json={"shift_s": 0.1, "version": version})
            assert held.status_code == 409 and "Another Octavia run" in held.json()["detail"]
        assert api.get("/api/status").json()["locked"] is False
        moved = api.post(f"/api/lines/{line['id']}", json={"shift_s": 0.1, "version": version})
        assert moved.status_code == 200, moved.text
        after = next(x for x in json.loads((folder / "project.json").read_text())["transcript"][
            "segments"] if x["id"] == line["id"])  # fmt: skip
        assert after["start_s"] == pytest.approx(line["start_s"] + 0.1, abs=1e-3)
        assert after["fits"]["es"]["slot_start_s"] == pytest.approx(after["start_s"], abs=1e-3)
        given = api.post(f"/api/lines/{line['id']}",
                         json={"speaker": "S1", "version": moved.json()["version"]})  # fmt: skip
        assert given.status_code == 200, given.text
        after = next(x for x in json.loads((folder / "project.json").read_text())["transcript"][
            "segments"] if x["id"] == line["id"])  # fmt: skip
        assert after["speaker"] == "S1" and after["clips"]["es"]["voice"] == s1_voice
        remixed = api.post("/api/remix", json={"ducking": "cinematic", "loudness": "-16",
                                               "version": given.json()["version"]})  # fmt: skip
        assert remixed.status_code == 200, remixed.text
        chosen = {"ducking": "cinematic", "loudness": "-16", "separated": False}
        assert remixed.json()["mix"]["es"] == chosen
        mix = json.loads((folder / "project.json").read_text())["stages"]["mix:es"]["info"]
        assert mix["target_lufs"] == -16  # (no separation: the voices ducked deep anyway)
        bad = api.post("/api/remix", json={"ducking": "soft", "loudness": "loud",
                                           "version": remixed.json()["version"]})  # fmt: skip
        assert bad.status_code == 422 and "mix.loudness" in bad.json()["detail"]
        # A line re-dubbed afterwards keeps the mix it was given.
        again = api.post(
            f"/api/lines/{line['id']}/redub",
            json={"lang": "es", "text": "Langostas.", "version": remixed.json()["version"]},
        )
        assert again.status_code == 200, again.text
        assert again.json()["mix"]["es"] == chosen
        mix = json.loads((folder / "project.json").read_text())["stages"]["mix:es"]["info"]
        assert mix["target_lufs"] == -16


def test_the_link_opens_one_session_and_only_on_this_address(dubbed_dialogue: Path) -> None:
    import httpx

    with Review(dubbed_dialogue) as review:
        first = httpx.get(review.url, follow_redirects=False)
        assert first.status_code == 303
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        session = first.cookies["octavia_review"]
        again = httpx.get(review.url, follow_redirects=False)
        assert again.status_code == 401 and "used already" in again.text
        assert httpx.get(f"{review.base}/api/project").status_code == 401
        assert httpx.get(f"{review.base}/audio/source").status_code == 401
        ok = httpx.get(f"{review.base}/api/project", cookies={"octavia_review": session})
        assert ok.status_code == 200 and ok.json()["languages"] == ["es"]
        rebound = httpx.get(f"{review.base}/api/project", cookies={"octavia_review": session},
                            headers={"Host": "attacker.example:80"})  # fmt: skip
        assert rebound.status_code == 421


def test_review_refuses_in_one_sentence(cli, tmp_path: Path, talk: Path, fake_engines) -> None:
    code, out, err = cli("review", str(tmp_path / "nothing.mp4"), "--no-browser")
    assert code == 1 and out == "" and "There is no Octavia project" in err
    assert "Traceback" not in err
    # A project whose first dub is still running: its lock is held.
    from octavia_cli.project.manifest import Project, default_project_folder

    folder = default_project_folder(talk)
    project = Project.open(folder, talk)
    with project.locked():
        code, _, err = cli("review", str(talk), "--no-browser")
    assert code == 1 and "is still being dubbed" in err
    code, _, err = cli("review", str(folder), "--no-browser")
    assert code == 1 and "has nothing dubbed yet" in err
    # A port in use, once there is something to review.
    assert cli("dub", str(talk), "--to", "es", "--from", "en")[0] == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli("review", str(talk), "--no-browser", "--port", str(port))
    assert code == 1 and f"Port {port} on 127.0.0.1 is already in use" in err
