"""`octavia serve`: remote dubs, restarts, credits, keys, concurrency and bad requests.

Where the test is about the program (starting, refusing to start, being killed and
restarted, the CLI client against a real port, concurrent connections) it runs the real
``octavia serve`` (uvicorn on 127.0.0.1, a free port) in a subprocess; where it is about the
API's answers, the same app runs in this process through FastAPI's TestClient
(:class:`InProcessServer`). Either way the jobs run on the cheap engines of ``fakes.py``:
what is tested is the server, not the engines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
import httpx

from helpers import FAKE_OCTAVIA, stream_md5, streams


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str], *extra: str) -> None:
        self.data_dir, self.env, self.extra = data_dir, env, extra
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def octavia(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FAKE_OCTAVIA, *args], env=self.env, capture_output=True,
            text=True, check=False,
        )  # fmt: skip

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [*FAKE_OCTAVIA, "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.extra],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the server did not start")

    def open(self) -> Server:
        """Serve without keys (--no-auth): this machine only."""
        self.extra = (*self.extra, "--no-auth")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(10)

    def key(self, name: str, credits: float) -> tuple[str, str]:
        result = self.octavia("serve", "keys", "create", name, "--credits", str(credits),
                              "--data-dir", str(self.data_dir))  # fmt: skip
        assert result.returncode == 0, result.stderr
        key_id, key = result.stdout.strip().split("\t")
        return key_id, key

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)


class InProcessServer:
    """The server's app in this process, through FastAPI's TestClient: no port, no
    subprocess, its workers threads of this process (so they run the engines the test chose:
    use it with the ``fake_engines`` fixture). Requests carry the Host of a server on
    127.0.0.1:8000, which the app's Host check expects."""

    def __init__(self, data_dir: Path, **options: object) -> None:
        from fastapi.testclient import TestClient

        from octavia_cli.server.app import create_app
        from octavia_cli.server.options import ServerOptions
        from octavia_cli.server.store import Store

        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.url = "http://127.0.0.1:8000"
        self.app = create_app(ServerOptions(data_dir=data_dir, port=8000, **options))
        self.store = Store(data_dir / "octavia.db")
        self._lifespan = TestClient(self.app, base_url=self.url)

    def __enter__(self) -> InProcessServer:
        self._lifespan.__enter__()  # starts the worker pool and the cleaner
        return self

    def __exit__(self, *exc: object) -> None:
        self._lifespan.__exit__(*exc)

    def key(self, name: str, credits: float) -> tuple[str, str]:
        key, key_id = self.store.create_key(name, credits)
        return key_id, key

    def http(self, key: str | None = None):  # -> TestClient (an httpx.Client)
        from fastapi.testclient import TestClient

        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return TestClient(self.app, base_url=f"{self.url}/api/v1", headers=headers,
                          raise_server_exceptions=False)  # fmt: skip


@pytest.fixture
def api(tmp_path: Path, fake_engines) -> Iterator[InProcessServer]:
    """The API in this process, with keys (as ``server``'s upload limit of 2 MB)."""
    with InProcessServer(tmp_path / "data", max_upload_bytes=2 * 2**20) as instance:
        yield instance


@pytest.fixture
def open_api(tmp_path: Path, fake_engines) -> Iterator[InProcessServer]:
    """The API in this process, open without keys (``serve --no-auth``)."""
    with InProcessServer(tmp_path / "data", no_auth=True) as instance:
        yield instance


@pytest.fixture
def server_env(tmp_path: Path, session_cache: Path) -> dict[str, str]:
    home = tmp_path / "server-home"
    home.mkdir()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("OCTAVIA_")},
        "OCTAVIA_CONFIG": str(home / "config.toml"),
        "OCTAVIA_MODELS_CACHE_DIR": str(session_cache),
        "OCTAVIA_PRESET": "offline",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(home / "hf"),
        "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }


@pytest.fixture
def server(tmp_path: Path, server_env: dict[str, str]):
    instance = Server(tmp_path / "data", server_env, "--max-upload-mb", "2")
    yield instance
    if instance.process and instance.process.poll() is None:
        instance.kill(signal.SIGTERM)


def _wait(client: httpx.Client, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.mark.slow
def test_remote_dub_is_the_local_dub(
    cli, server: Server, talk: Path, tmp_path: Path, fake_engines
) -> None:
    _, key = server.key("alice", credits=5)
    server.start()
    code, _, err = cli("login", "--url", server.url, "--api-key", key)
    assert code == 0, err
    assert key not in err and key[:8] in err  # never printed in full
    config = Path(os.environ["OCTAVIA_CONFIG"])
    assert config.stat().st_mode & 0o777 == 0o600
    code, out, _ = cli("account", "--json")
    assert json.loads(out)["balance_minutes"] == 5.0
    code, out, _ = cli("dub", str(talk), "--to", "es", "--from", "en", "--estimate")
    assert code == 0 and "cost: 0.17 min; balance: 5.00 min" in out

    code, out, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--remote")
    assert code == 0, err
    remote = talk.with_name("talk.es.mp4")
    assert out.strip() == str(remote)
    for stage in ("upload: done", "transcribe: done", "mux:es: done", "download talk.es.mp4"):
        assert stage in err  # the server's progress, shown by the CLI
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    local_source = Path(shutil.copy(talk, local_dir / "talk.mp4"))
    assert cli("dub", str(local_source), "--to", "es", "--from", "en")[0] == 0
    local = local_dir / "talk.es.mp4"
    assert stream_md5(remote, "0:a") == stream_md5(local, "0:a")
    assert stream_md5(remote, "0:v") == stream_md5(local, "0:v")
    account = json.loads(cli("account", "--json")[1])
    assert account["balance_minutes"] == pytest.approx(5 - 10 / 60, abs=1e-3)
    assert [e["reason"] for e in account["usage"]] == ["job", "credit"]  # the ledger
    # An existing output is not replaced without --force, remotely either.
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--remote")
    assert code == 1 and "already exists" in err
    # synthesize --remote speaks plain text on the server.
    speech = tmp_path / "hola.mp3"
    code, out, err = cli("synthesize", "Hola a todos.", "--to", "es", "-o", str(speech),
                         "--remote")  # fmt: skip
    assert code == 0, err
    assert streams(speech)[0]["codec_name"] == "mp3"
    # transcribe --remote prints what a local transcribe prints.
    code, remote_json, err = cli("--quiet", "transcribe", str(talk), "-l", "en", "--remote",
                                 "--json")  # fmt: skip
    assert code == 0, err
    local_json = cli("--quiet", "transcribe", str(local_source), "-l", "en", "--json")[1]
    assert json.loads(remote_json)["segments"] == json.loads(local_json)["segments"]

    # Prometheus metrics: the jobs just run, by state and kind, and the stages' times.
    scrape = httpx.get(f"{server.url}/metrics", timeout=10)
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert 'octavia_jobs{kind="dub",state="succeeded"} 1.0' in text
    assert 'octavia_jobs{kind="transcribe",state="succeeded"} 1.0' in text
    assert "octavia_queue_depth 0.0" in text and "octavia_workers 1.0" in text
    assert 'octavia_stage_seconds_count{stage="mux"} 1.0' in text
    assert 'octavia_stage_seconds_count{stage="transcribe"}' in text
    assert key not in text and "talk" not in text  # nothing private


@pytest.mark.slow
def test_remote_dub_takes_the_mix_options(
    cli, server: Server, talk: Path, tmp_path: Path, fake_engines
) -> None:
    """--replace-audio, --loudness, --ducking and a glossary reach the server's job; options
    that name things on this machine (a device, a work folder) are refused, not dropped."""
    from webhook_receiver import Receiver, verify

    from helpers import decode
    from octavia_cli.media.ffmpeg import measure_loudness

    key_id, key = server.key("dan", 10)
    server.env["OCTAVIA_SERVE_WEBHOOKS_ALLOW_PRIVATE"] = "true"  # the receiver is on loopback
    server.start()
    receiver = Receiver()
    assert cli("login", "--url", server.url, "--api-key", key)[0] == 0
    code, out, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--remote",
                         "--replace-audio", "--loudness", "-16", "--ducking", "soft",
                         "-o", str(tmp_path / "dubbed.mkv"), "--json",
                         "--webhook", receiver.url)  # fmt: skip
    assert code == 0, err
    [entry] = json.loads(out)["dubbed"]
    assert entry["source"] == str(talk) and entry["job"]
    receiver.wait_for(3)
    receiver.close()
    assert [e["state"] for e in receiver.events()] == ["queued", "running", "succeeded"]
    secret = server.octavia("serve", "keys", "webhook-secret", key_id,
                            "--data-dir", str(server.data_dir)).stdout.strip()  # fmt: skip
    assert all(verify(secret, headers, body) for headers, body in receiver.requests)
    dubbed = Path(entry["outputs"]["es"])
    assert dubbed == tmp_path / "dubbed.mkv"  # in the format -o names, made by the server
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name", "-of", "csv=p=0",
         str(dubbed)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "matroska" in probe.stdout
    assert [s["codec_type"] for s in streams(dubbed)].count("audio") == 1
    assert abs(measure_loudness(decode(dubbed, 48_000, 2), 48_000) - -16.0) <= 1.0

    code, _, err = cli("dub", str(talk), "--to", "fr", "--remote", "--device", "cpu",
                       "--workdir", str(tmp_path / "w"))  # fmt: skip
    assert code == 1 and "--device, --workdir apply to local dubs only" in err
    # A glossary travels with the job: the server's translation keeps its terms.
    glossary = tmp_path / "terms.csv"
    glossary.write_text("source,target\nlibrary,mediateca\n")
    code, out, err = cli("subtitles", str(talk), "--to", "es", "--from", "en", "--remote",
                         "--glossary", str(glossary), "-o", str(tmp_path / "g.srt"))  # fmt: skip
    assert code == 0, err
    text = (tmp_path / "g.srt").read_text()
    assert "mediateca" in text and "biblioteca" not in text
    code, _, err = cli("dub", str(talk), "--to", "fr", "--remote", "--ducking", "loud")
    assert code != 0 and "loud" in err  # checked here, before anything is uploaded
    code, _, err = cli("dub", str(talk), "--to", "fr", "--webhook", receiver.url)
    assert code == 1 and "--webhook is for jobs on a server" in err


@pytest.mark.slow
def test_a_remote_batch_goes_on_past_a_broken_file(
    cli, server: Server, talk: Path, tmp_path: Path, fake_engines
) -> None:
    """dub a.mp4 broken.mp4 c.mp4 --remote: all queued first, the broken one listed at the
    end with a non-zero exit; run again, the dubbed ones are skipped, not re-bought."""
    key = server.key("erin", 10)[1]
    server.start()
    assert cli("login", "--url", server.url, "--api-key", key)[0] == 0
    folder = tmp_path / "episodes"
    folder.mkdir()
    good = [Path(shutil.copy(talk, folder / name)) for name in ("a.mp4", "c.mp4")]
    broken = folder / "b.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    code, _, err = cli("dub", str(folder), "--to", "es", "--from", "en", "--estimate")
    assert code == 1 and "b.mp4" in err  # a file that cannot be probed: no quote
    code, out, err = cli("dub", *map(str, good), "--to", "es", "--from", "en", "--estimate")
    assert code == 0 and "cost: 0.33 min; balance: 10.00 min" in out, err

    code, out, err = cli("dub", str(folder), "--to", "es", "--from", "en", "--remote")
    assert code != 0
    assert out.split() == [str(folder / "a.es.mp4"), str(folder / "c.es.mp4")]
    assert "1 of 3 files failed" in err and "b.mp4" in err
    assert all(streams(folder / f"{p.stem}.es.mp4") for p in good)
    jobs = server.http(key).get("/jobs").json()
    assert len(jobs) == 2 and {j["state"] for j in jobs} == {"succeeded"}

    code, out, err = cli("dub", str(folder), "--to", "es", "--from", "en", "--remote", "--json")
    assert code != 0 and err.count("already dubbed") == 2
    report = json.loads(out)
    assert report["dubbed"] == [] and report["skipped"] == [str(p) for p in good]
    assert [f["source"] for f in report["failed"]] == [str(broken)]
    assert len(server.http(key).get("/jobs").json()) == 2


def test_interrupting_a_remote_batch_cancels_its_jobs(
    server: Server, talk: Path, tmp_path: Path
) -> None:
    key = server.key("fay", 10)[1]
    server.start()
    config = Path(server.env["OCTAVIA_CONFIG"])
    config.write_text(f'[remote]\nurl = "{server.url}"\napi_key = "{key}"\n')
    files = [str(shutil.copy(talk, tmp_path / name)) for name in ("a.mp4", "b.mp4")]
    client = server.http(key)
    dub = subprocess.Popen(
        [*FAKE_OCTAVIA, "dub", *files, "--to", "es", "--from", "en",
         "--remote"], env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(client.get("/jobs").json()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    dub.send_signal(signal.SIGINT)
    _, err = dub.communicate(timeout=60)
    assert dub.returncode == 130 and "Interrupted" in err, err
    assert "2 unfinished job(s) on the server cancelled" in err
    states = {job["id"]: _wait(client, job["id"])["state"] for job in client.get("/jobs").json()}
    assert len(states) == 2 and set(states.values()) == {"cancelled"}, states
    # Ctrl-C was a decision: the same command starts over rather than re-attaching.
    runs = Path(server.env["XDG_CACHE_HOME"]) / "octavia" / "remote-runs.json"
    assert json.loads(runs.read_text()) == {}


def test_a_remote_dub_whose_client_died_re_attaches_without_a_second_upload(
    server: Server, talk: Path, tmp_path: Path
) -> None:
    """The client is killed (-9) once its job exists; the same command run again follows
    that job and downloads its result: one upload, one job, one charge."""
    key_id, key = server.key("gus", 10)
    server.start()
    Path(server.env["OCTAVIA_CONFIG"]).write_text(
        f'[remote]\nurl = "{server.url}"\napi_key = "{key}"\n'
    )
    source = Path(shutil.copy(talk, tmp_path / "episode.mp4"))
    command = [*FAKE_OCTAVIA, "--progress", "plain", "dub", str(source), "--to", "es", "--from",
               "en", "--remote"]  # fmt: skip
    client = server.http(key)
    dub = subprocess.Popen(command, env=server.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    runs = Path(server.env["XDG_CACHE_HOME"]) / "octavia" / "remote-runs.json"
    deadline = time.monotonic() + 60

    def remembered() -> bool:
        """The job exists and the client has written its id down (killed between the two,
        a client cannot know its job: on a loaded machine that window was hit)."""
        jobs = client.get("/jobs").json()
        return bool(jobs) and runs.exists() and jobs[0]["id"] in runs.read_text()

    while not remembered() and time.monotonic() < deadline:
        time.sleep(0.05)
    dub.kill()
    dub.wait(10)
    [job] = client.get("/jobs").json()
    assert job["state"] in ("queued", "running"), job  # killed before it could finish

    again = subprocess.run(command, env=server.env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert f"re-attached to job {job['id']}" in again.stderr
    assert streams(tmp_path / "episode.es.mp4")
    [only] = client.get("/jobs").json()
    assert only["id"] == job["id"] and only["state"] == "succeeded"
    from octavia_cli.server.store import Store

    store = Store(server.data_dir / "octavia.db")
    assert store.count_uploads() == 1
    assert [e["reason"] for e in store.ledger(key_id)] == ["job", "credit"]
    assert json.loads(runs.read_text()) == {}  # seen to its end: forgotten


def test_job_pages_are_stable_under_inserts(tmp_path: Path, monkeypatch) -> None:
    """Newest first; a cursor marks a place, so jobs created between pages neither repeat
    nor shift one; the body stays the list today's clients read."""
    from octavia_cli.remote.client import Client

    server = InProcessServer(tmp_path / "data")  # not entered: no workers take the jobs
    key_id, key = server.key("hal", 10)
    other = server.key("ivy", 10)[0]
    made = [server.store.add_job(key_id, "synthesize", {}, "", 0.0, 100) for _ in range(7)]
    server.store.add_job(other, "synthesize", {}, "", 0.0, 100)
    newest_first = [job.id for job in reversed(made)]  # type: ignore[union-attr]
    client = server.http(key)
    first = client.get("/jobs", params={"limit": 3})
    assert first.status_code == 200 and isinstance(first.json(), list)
    assert [j["id"] for j in first.json()] == newest_first[:3]
    cursor = first.headers["Octavia-Next-Cursor"]
    assert 'rel="next"' in first.headers["Link"] and cursor in first.headers["Link"]
    late = [server.store.add_job(key_id, "synthesize", {}, "", 0.0, 100) for _ in range(2)]
    second = client.get("/jobs", params={"limit": 3, "cursor": cursor})
    assert [j["id"] for j in second.json()] == newest_first[3:6]
    third = client.get(
        "/jobs", params={"limit": 3, "cursor": second.headers["Octavia-Next-Cursor"]}
    )
    assert [j["id"] for j in third.json()] == newest_first[6:]
    assert "Octavia-Next-Cursor" not in third.headers and "Link" not in third.headers
    assert len(client.get("/jobs").json()) == 9  # no limit: one page of up to 100
    for params, status in [({"cursor": "bm9wZQ"}, 400), ({"limit": 0}, 422),
                           ({"limit": 501}, 422), ({"cursor": "!!"}, 400)]:  # fmt: skip
        assert client.get("/jobs", params=params).status_code == status, params
    # The client follows the cursors.
    remote = Client(server.url, key)
    monkeypatch.setattr(
        remote,
        "_http",
        server.http(key).__class__(
            server.app, base_url=server.url, headers={"Authorization": f"Bearer {key}"}
        ),
    )
    listed = [j["id"] for j in remote.jobs(limit=50, page=2)]
    assert listed == [j.id for j in reversed(late)] + newest_first  # type: ignore[union-attr]
    assert [j["id"] for j in remote.jobs(limit=4, page=3)] == listed[:4]


@pytest.mark.slow
def test_restart_loses_no_queued_job_and_resumes_the_running_one(
    server: Server, talk: Path
) -> None:
    server.open().start()
    client = server.http()
    upload = client.put("/uploads", params={"filename": "talk.mp4"},
                        content=talk.read_bytes()).json()  # fmt: skip
    jobs = [
        client.post("/jobs", json={"kind": "transcribe", "upload_id": upload["id"],
                                   "options": {"from": "en"}}).json()
        for _ in range(3)
    ]  # fmt: skip
    deadline = time.monotonic() + 30
    while client.get(f"/jobs/{jobs[0]['id']}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.kill()  # SIGKILL while the first job runs and two wait
    server.start()
    client = server.http()
    finished = [_wait(client, job["id"]) for job in jobs]
    assert [job["state"] for job in finished] == ["succeeded"] * 3
    assert finished[0]["attempts"] == 2  # taken again after the restart
    assert finished[0]["results"][0]["name"] == "talk.transcribe.json"
    body = client.get(f"/jobs/{jobs[0]['id']}/results/talk.transcribe.json").json()
    assert len(body["segments"]) == 4


def test_a_job_interrupted_too_often_fails_with_a_reason(tmp_path: Path) -> None:
    from octavia_cli.server.store import FAILED, QUEUED, Store

    store = Store(tmp_path / "db.sqlite")
    store.add_upload("u", None, "a.wav", tmp_path / "a.wav", 1, 1.0)
    job = store.add_job(None, "transcribe", {}, "u", 0.0, 10)
    assert job is not None
    for attempt in range(1, 4):
        assert store.claim_next().attempts == attempt
        requeued, failed = store.recover(max_attempts=3)
        assert (requeued, failed) == ((1, 0) if attempt < 3 else (0, 1))
    final = store.job(job.id)
    assert final.state == FAILED and "interrupted 3 times" in final.error
    assert store.queued_count() == 0 and QUEUED


def test_one_serve_per_data_dir(server: Server, tmp_path: Path) -> None:
    """A second serve on a data dir in use exits 1 naming the first (before it could
    requeue the first one's running jobs); once the first is gone, the lock is free."""
    server.open().start()
    assert server.process is not None
    second = Server(server.data_dir, server.env, "--no-auth")
    result = second.octavia("serve", "--no-auth", "--port", str(second.port),
                            "--data-dir", str(server.data_dir))  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        f"Another octavia serve (pid {server.process.pid} on {socket.gethostname()}) is using "
        f"{server.data_dir}. Stop it first, or give this one another --data-dir."
    ) in result.stderr
    assert server.http().get("/jobs").status_code == 200  # the first one serves on
    server.kill()  # even kill -9 frees the lock
    second.start()
    assert second.process is not None
    assert (server.data_dir / "serve.lock").read_text().split()[0] == str(second.process.pid)
    second.kill(signal.SIGTERM)


def test_recovery_takes_up_only_jobs_whose_runner_is_gone(tmp_path: Path) -> None:
    from octavia_cli.server.runner import runner_alive, runner_of, this_runner
    from octavia_cli.server.store import QUEUED, RUNNING, Store

    gone = subprocess.Popen(["sleep", "30"])
    dead_runner = runner_of(gone.pid)
    gone.kill()
    gone.wait()
    store = Store(tmp_path / "db.sqlite")
    store.add_upload("u", None, "a.wav", tmp_path / "a.wav", 1, 1.0)
    ours = store.add_job(None, "transcribe", {}, "u", 0.0, 10)
    theirs = store.add_job(None, "transcribe", {}, "u", 0.0, 10)
    assert ours is not None and theirs is not None
    assert store.claim_next(this_runner()).id == ours.id  # a live process runs it
    assert store.claim_next(dead_runner).id == theirs.id  # its process has ended
    assert runner_alive(this_runner()) and not runner_alive(dead_runner)
    assert not runner_alive(f"{socket.gethostname()}:{os.getpid()}:1")  # a reused pid
    assert store.recover(3, runner_alive) == (1, 0)
    assert store.job(ours.id).state == RUNNING and store.job(theirs.id).state == QUEUED
    assert "runner" not in store.job(ours.id).public()


def test_credits_keys_and_bad_requests(cli, api: InProcessServer, talk: Path) -> None:
    server = api
    key_id, key = server.key("bob", credits=0.1)  # 6 s of media: less than the 10 s clip
    client = server.http(key)
    upload = client.put("/uploads", params={"filename": "talk.mp4"}, content=talk.read_bytes())
    assert upload.status_code == 201
    upload_id = upload.json()["id"]
    refused = client.post("/jobs", json={"kind": "dub", "upload_id": upload_id,
                                         "options": {"to": ["es"]}})  # fmt: skip
    assert refused.status_code == 402 and "short by 0.07 min" in refused.json()["detail"]
    assert cli("serve", "keys", "credit", key_id, "1", "--data-dir", str(server.data_dir))[0] == 0
    ok = client.post("/jobs", json={"kind": "transcribe", "upload_id": upload_id,
                                    "options": {"from": "en"}})  # fmt: skip
    assert ok.status_code == 201, ok.text

    checks = [
        (server.http().get("/jobs"), 401, "missing API key"),
        (server.http("oct_wrong").get("/jobs"), 401, "unknown API key"),
        (client.get("/jobs/nope"), 404, "unknown job"),
        (client.get(f"/jobs/{ok.json()['id']}/results/../../octavia.db"), 404, ""),
        (client.put("/uploads", params={"filename": "../x.mp4"}, content=b"x"), 400, "bad file"),
        (client.put("/uploads", params={"filename": "notes.mp4"}, content=b"hello"), 415,
         "not media"),
        (client.put("/uploads", params={"filename": "big.wav"}, content=b"0" * 3_000_000), 413,
         "too large"),
        (client.post("/jobs", json={"kind": "dub", "upload_id": upload_id,
                                    "options": {"to": ["es"], "speed": 9}}), 422, "speed"),
        (client.post("/jobs", json={"kind": "karaoke", "upload_id": upload_id}), 422, "kind"),
        (client.post("/jobs", json={"kind": "dub", "upload_id": upload_id,
                                    "options": {"to": ["es"], "loudness": "loud"}}), 422,
         "loudness"),
        (client.post("/jobs", json={"kind": "dub", "upload_id": upload_id,
                                    "options": {"to": ["es"], "glossary": {"a": 1}}}), 422,
         "glossary"),
    ]  # fmt: skip
    for response, status, text in checks:
        assert response.status_code == status, (response.request.url, response.text)
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}  # fmt: skip
        assert "Traceback" not in response.text
        if text:
            assert text in json.dumps(body)
    assert cli("serve", "keys", "revoke", key_id, "--data-dir", str(server.data_dir))[0] == 0
    revoked = client.get("/account")
    assert revoked.status_code == 401 and revoked.json()["error"] == "revoked API key"


def test_languages_are_normalised_where_a_job_enters(api: InProcessServer, talk: Path) -> None:
    """ "ES" and "es-MX" are "es": one translation, one charge, outputs named .es.; an
    unknown code is refused with the reason before anything is queued."""
    _, key = api.key("gus", credits=5)
    client = api.http(key)
    quote = client.post("/estimate", json={"kind": "dub", "duration_s": 60,
                                           "options": {"to": ["es", "ES", "es-MX"]}})  # fmt: skip
    assert quote.status_code == 200 and quote.json()["cost_minutes"] == 1.0  # one target
    upload = client.put("/uploads", params={"filename": "talk.mp4"}, content=talk.read_bytes())
    upload_id = upload.json()["id"]
    for options, text in (
        ({"to": ["xx"]}, "to: Value error, 'xx' is not a known ISO 639-1 language code."),
        ({"to": ["es"], "from": "spa"}, "from: Value error, 'spa' is not a language code. "
         "Use the two-letter ISO 639-1 code: es (Spanish)."),
    ):  # fmt: skip
        refused = client.post("/jobs", json={"kind": "dub", "upload_id": upload_id,
                                             "options": options})  # fmt: skip
        assert refused.status_code == 422 and text in refused.json()["detail"], refused.text
    created = client.post(
        "/jobs",
        json={
            "kind": "dub",
            "upload_id": upload_id,
            "options": {"to": ["ES", "es-MX"], "from": "EN"},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["options"] == {"to": ["es"], "from": "en"}  # kept normalised
    assert created.json()["cost_minutes"] == pytest.approx(10 / 60, abs=1e-3)
    job = _wait(client, created.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    assert [r["name"] for r in job["results"]] == ["talk.es.mp4"]
    assert client.get("/account").json()["balance_minutes"] == pytest.approx(5 - 10 / 60,
                                                                            abs=1e-3)  # fmt: skip


def test_an_estimate_of_a_negative_duration_is_refused(api: InProcessServer) -> None:
    _, key = api.key("hal", credits=1)
    response = api.http(key).post("/estimate", json={"kind": "dub", "duration_s": -600,
                                                        "options": {"to": ["es"]}})  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "invalid request",
        "detail": "duration_s: Input should be greater than or equal to 0",
    }


def test_voices_are_named_never_given_as_paths(api: InProcessServer, talk: Path) -> None:
    """A voice option that is a path is refused (422) before any job runs, with the same
    sentence whether the file exists or not: the option tells nothing about the disk."""
    _, key = api.key("ivy", credits=5)
    client = api.http(key)
    upload = client.put("/uploads", params={"filename": "talk.mp4"}, content=talk.read_bytes())
    upload_id = upload.json()["id"]
    rule = "is not a voice name: a voice of the server's library is named with letters"
    for voice in (
        "/etc/no_such_file",
        "/etc/shadow",
        "../../octavia.db",
        "~/.ssh/id_rsa",
        ".hidden",
        "voice.onnx",
        "voices/anna",
        "anna\\bob",
        "S1=/etc/passwd",
    ):
        options = {"to": ["es"], "tts_engine": "piper", "voice": voice}
        response = client.post("/jobs", json={"kind": "dub", "upload_id": upload_id,
                                              "options": options})  # fmt: skip
        assert response.status_code == 422, (voice, response.text)
        assert rule in response.json()["detail"] and "paths are not accepted" in response.text
    response = client.post(
        "/jobs",
        json={
            "kind": "dub",
            "upload_id": upload_id,
            "options": {"to": ["es"], "voice": "S1=anna,../x=bob"},
        },
    )
    assert response.status_code == 422 and "'../x=bob' is not SPEAKER=NAME" in response.text
    speech = client.post(
        "/jobs",
        json={
            "kind": "synthesize",
            "options": {"text": "hola", "to": "es", "voice": "/etc/shadow"},
        },
    )
    assert speech.status_code == 422 and rule in speech.json()["detail"]
    missing = client.post(
        "/jobs",
        json={
            "kind": "dub",
            "upload_id": upload_id,
            "options": {"to": ["es"], "voice": "/etc/no_such_file"},
        },
    )
    shadow = client.post(
        "/jobs",
        json={
            "kind": "dub",
            "upload_id": upload_id,
            "options": {"to": ["es"], "voice": "/etc/shadow"},
        },
    )
    assert missing.json()["detail"].replace("no_such_file", "shadow") == shadow.json()["detail"]
    assert client.get("/jobs").json() == []  # nothing was queued
    named = client.post(
        "/jobs",
        json={
            "kind": "dub",
            "upload_id": upload_id,
            "options": {"to": ["es"], "voice": "S1=anna,S2=bob"},
        },
    )
    assert named.status_code == 201, named.text  # names are fine (they are looked up later)
    client.post(f"/jobs/{named.json()['id']}/cancel")


def test_job_errors_name_files_relative_to_the_data_dir(
    open_api: InProcessServer, talk: Path
) -> None:
    server = open_api
    client = server.http()
    upload = client.put("/uploads", params={"filename": "talk.mp4"}, content=talk.read_bytes())
    assert upload.status_code == 201
    from octavia_cli.server.store import Store

    stored = Path(Store(server.data_dir / "octavia.db").upload(upload.json()["id"])["path"])
    stored.write_bytes(b"damaged on the server's disk after the upload" * 100)
    created = client.post("/jobs", json={"kind": "transcribe", "upload_id": upload.json()["id"],
                                         "options": {"from": "en"}})  # fmt: skip
    job = _wait(client, created.json()["id"])
    assert job["state"] == "failed"
    error = job["error"]
    assert error.startswith(f"jobs/{job['id']}/input/"), error
    assert "is not a media file that ffmpeg can read." in error
    assert str(server.data_dir) not in error and str(server.data_dir.resolve()) not in error


def test_absolute_paths_are_cut_from_messages(tmp_path: Path) -> None:
    from octavia_cli.server.security import relative_paths

    root = tmp_path / "data"
    root.mkdir()
    message = (f"{root}/uploads/ab12/x.mp4 is broken; '{root.resolve()}/jobs/cd/out/a b.srt' and "
               "/home/srv/.local/share/octavia/voices/anna/profile.json: see "
               "https://example.org/a/b, 3/4 lines, ./rel/x")  # fmt: skip
    assert relative_paths(message, root) == (
        "uploads/ab12/x.mp4 is broken; 'jobs/cd/out/a b.srt' and …/profile.json: see "
        "https://example.org/a/b, 3/4 lines, ./rel/x"
    )


def test_upload_names_are_checked_whole_and_stored_short(
    open_api: InProcessServer, talk: Path
) -> None:
    """A name with a final newline is refused (400); a 105-character Japanese name (over
    300 bytes, more than a file name takes) is accepted, stored as input.mp4, and its
    results are named from its stem, cut to fit."""
    server = open_api
    client = server.http()
    for name in ("jfk.flac\n", "jfk.flac\r\n", "a\nb.mp4", "sub/talk.mp4"):
        refused = client.put("/uploads", params={"filename": name}, content=talk.read_bytes())
        assert refused.status_code == 400, (name, refused.text)
        assert refused.json() == {"error": "bad file name",
                                  "detail": "Use a plain file name, no folders."}  # fmt: skip
    long_name = "日本語の講演を録画したファイル" * 7 + ".mp4"
    assert len(long_name) == 109 and len(long_name.encode()) > 300
    upload = client.put("/uploads", params={"filename": long_name}, content=talk.read_bytes())
    assert upload.status_code == 201, upload.text
    assert upload.json()["filename"] == long_name
    from octavia_cli.server.store import Store

    record = Store(server.data_dir / "octavia.db").upload(upload.json()["id"])
    assert record["filename"] == long_name
    assert Path(record["path"]) == server.data_dir / "uploads" / upload.json()["id"] / "input.mp4"
    created = client.post("/jobs", json={"kind": "transcribe", "upload_id": upload.json()["id"],
                                         "options": {"from": "en"}})  # fmt: skip
    job = _wait(client, created.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    [result] = job["results"]
    assert result["name"].endswith(".transcribe.json") and len(result["name"].encode()) <= 255
    stem = result["name"].removesuffix(".transcribe.json")
    assert len(stem) >= 70 and long_name.startswith(stem)  # the original's start
    download = client.get(f"/jobs/{job['id']}/results/{result['name']}")
    assert download.status_code == 200 and len(download.json()["segments"]) == 4


def test_a_keys_uploads_are_held_to_a_quota(tmp_path: Path, talk: Path, fake_engines) -> None:
    with InProcessServer(tmp_path / "data", upload_quota_bytes=2**20) as server:  # talk: 0.6 MB
        first, second = server.key("jo", credits=1)[1], server.key("kim", credits=1)[1]
        data = talk.read_bytes()
        assert server.http(first).put("/uploads", params={"filename": "a.mp4"},
                                      content=data).status_code == 201  # fmt: skip

        def chunks():  # no Content-Length: the quota is checked as the upload streams
            for start in range(0, len(data), 65536):
                yield data[start : start + 65536]

        for content in (data, chunks()):
            over = server.http(first).put("/uploads", params={"filename": "b.mp4"},
                                          content=content)  # fmt: skip
            assert over.status_code == 413, over.text
            assert over.json() == {
                "error": "upload quota exceeded",
                "detail": f"This key keeps {len(data) / 2**20:.1f} MB of uploads on the server "
                "and may keep 1.0 MB; uploads no queued job needs are deleted 24 h after they "
                "were made.",
            }
        other = server.http(second).put("/uploads", params={"filename": "a.mp4"}, content=data)
        assert other.status_code == 201  # the quota is each key's own
        assert len(list((server.data_dir / "uploads").iterdir())) == 2  # nothing left over
        metrics = server.http().get(f"{server.url}/metrics").text
        [kept] = [line for line in metrics.splitlines() if line.startswith("octavia_uploads_b")]
        assert float(kept.split()[1]) == 2 * len(data)


def test_expired_uploads_and_finished_jobs_are_deleted(tmp_path: Path) -> None:
    """Moving a clock instead of waiting: an upload goes once it is old and no queued job
    needs it; a finished job, with its results, once it ended long enough ago."""
    from octavia_cli.server.retention import Cleaner, Retention
    from octavia_cli.server.store import SUCCEEDED, Store

    data = tmp_path / "data"
    store = Store(data / "octavia.db")

    def upload(name: str) -> Path:
        path = data / "uploads" / name / "input.mp4"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x" * 10)
        store.add_upload(name, "k", "talk.mp4", path, 10, 1.0)
        return path

    unused, waiting, used = upload("unused"), upload("waiting"), upload("used")
    done = store.add_job("k", "transcribe", {}, "used", 0.0, 10)
    assert store.claim_next().id == done.id
    store.finish(done.id, SUCCEEDED, results=[{"name": "talk.transcribe.json", "size": 2}])
    result = data / "jobs" / done.id / "out" / "talk.transcribe.json"
    result.parent.mkdir(parents=True)
    result.write_text("{}")
    queued = store.add_job("k", "transcribe", {}, "waiting", 0.0, 10)
    hours = 0.0
    cleaner = Cleaner(store, data, Retention(upload_s=3600, job_s=2 * 86400),
                      clock=lambda: time.time() + hours * 3600)  # fmt: skip
    assert cleaner.run_once() == {"uploads": 0, "jobs": 0}
    hours = 2
    assert cleaner.run_once() == {"uploads": 2, "jobs": 0}
    assert not unused.parent.exists() and not used.parent.exists() and waiting.exists()
    assert store.upload("unused") is None and store.upload("waiting") is not None
    assert result.exists() and store.job(done.id) is not None  # results kept until then
    assert store.upload_bytes("k") == 10
    hours = 49
    assert cleaner.run_once() == {"uploads": 0, "jobs": 1}
    assert store.job(done.id) is None and not (data / "jobs" / done.id).exists()
    assert store.job(queued.id).state == "queued" and waiting.exists()
    assert cleaner.deleted == {"uploads": 2, "jobs": 1}
    with pytest.raises(LookupError):  # a job on an upload deleted meanwhile is refused
        store.add_job("k", "transcribe", {}, "unused", 0.0, 10)


@pytest.mark.slow
def test_serve_deletes_expired_uploads_and_jobs_and_counts_them(
    tmp_path: Path, server_env: dict[str, str], talk: Path
) -> None:
    env = {**server_env, "OCTAVIA_SERVE_CLEANUP_INTERVAL_MINUTES": "0.005"}
    server = Server(tmp_path / "data", env, "--upload-retention-hours", "0.001",
                    "--retention-days", "0.00003").open()  # 3.6 s and 2.6 s  # fmt: skip
    server.start()
    try:
        client = server.http()
        for name in ("unused.mp4", "talk.mp4"):
            upload = client.put("/uploads", params={"filename": name}, content=talk.read_bytes())
        created = client.post(
            "/jobs",
            json={
                "kind": "transcribe",
                "upload_id": upload.json()["id"],
                "options": {"from": "en"},
            },
        )
        assert created.status_code == 201, created.text
        assert _wait(client, created.json()["id"])["state"] == "succeeded"
        deadline = time.monotonic() + 60
        while True:
            metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
            if 'octavia_cleanup_deleted_total{what="jobs"} 1.0' in metrics and (
                'octavia_cleanup_deleted_total{what="uploads"} 2.0' in metrics
            ):
                break
            assert time.monotonic() < deadline, metrics
            time.sleep(0.3)
        assert "octavia_uploads_bytes 0.0" in metrics
        gone = client.get(f"/jobs/{created.json()['id']}")
        assert gone.status_code == 404 and gone.json()["error"] == "unknown job"
        assert list((server.data_dir / "uploads").iterdir()) == []
        assert list((server.data_dir / "jobs").iterdir()) == []
    finally:
        server.kill(signal.SIGTERM)


def test_twenty_concurrent_uploads_are_all_accounted_for(server: Server, talk: Path) -> None:
    server.open().start()
    data = talk.read_bytes()

    def upload(index: int) -> int:
        with server.http() as client:
            response = client.put("/uploads", params={"filename": f"clip{index}.mp4"},
                                  content=data)  # fmt: skip
            return response.status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(upload, range(20)))
    assert statuses == [201] * 20
    from octavia_cli.server.store import Store

    assert Store(server.data_dir / "octavia.db").count_uploads() == 20


def test_a_port_in_use_is_said_at_once(server: Server) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = server.octavia("serve", "--port", str(port), "--data-dir", str(server.data_dir),
                                "--no-auth")  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Port {port} on 127.0.0.1 is already in use. Choose another with --port" in (
        result.stderr
    )


@pytest.mark.slow
def test_serve_needs_a_key_or_an_explicit_no_auth_on_loopback(server: Server) -> None:
    data = str(server.data_dir)
    for host in ("127.0.0.1", "0.0.0.0"):
        result = server.octavia("serve", "--host", host, "--data-dir", data)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"No active API key in {data}: serve needs a key, or --no-auth" in result.stderr
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        result = server.octavia("serve", "--no-auth", "--host", host, "--data-dir", data)
        assert result.returncode == 1, result.stderr
        assert f"--no-auth serves this machine only, and {host} is not a loopback address." in (
            result.stderr
        )


def test_loopback_is_decided_from_the_address() -> None:
    from octavia_cli.server.security import allowed_hosts, is_loopback

    def resolver(*addresses: str):
        return lambda host: list(addresses)

    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1")
    assert is_loopback("[::1]") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.1")
    assert is_loopback("box", resolve=resolver("127.0.1.1", "::1"))
    assert not is_loopback("box", resolve=resolver("127.0.0.1", "192.0.2.7"))  # one is not
    assert not is_loopback("localhost.evil", resolve=resolver("203.0.113.5"))
    assert not is_loopback("nowhere", resolve=resolver())
    assert allowed_hosts("127.0.0.1", 8123) == {"127.0.0.1:8123", "localhost:8123",
                                                "[::1]:8123"}  # fmt: skip
    assert "[::1]:80" in allowed_hosts("::1", 80) and "localhost" in allowed_hosts("::1", 80)


@pytest.mark.slow
def test_revoking_the_last_key_does_not_open_the_api(
    tmp_path: Path, server_env: dict[str, str], talk: Path
) -> None:
    """The repro of the issue: a key, serve on 0.0.0.0, the key revoked while it runs."""
    server = Server(tmp_path / "data", server_env, "--host", "0.0.0.0")
    key_id, key = server.key("dave", credits=5)
    server.start()
    try:
        assert server.http(key).get("/jobs").status_code == 200
        result = server.octavia("serve", "keys", "revoke", key_id,
                                "--data-dir", str(server.data_dir))  # fmt: skip
        assert result.returncode == 0, result.stderr
        anonymous = server.http()
        checks = [
            anonymous.get("/jobs"),
            anonymous.get("/account"),
            anonymous.put("/uploads", params={"filename": "talk.mp4"}, content=talk.read_bytes()),
            server.http(key).get("/jobs"),
        ]
        for response in checks[:3]:
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "missing API key"
        assert checks[3].status_code == 401 and checks[3].json()["error"] == "revoked API key"
    finally:
        server.kill(signal.SIGTERM)
    # Nor does a restart open it: every key is revoked, and --no-auth is refused here.
    data = str(server.data_dir)
    result = server.octavia("serve", "--port", str(server.port), "--data-dir", data)
    assert result.returncode == 1
    assert "every key is revoked, so nobody could use the server" in result.stderr
    result = server.octavia("serve", "--no-auth", "--port", str(server.port), "--data-dir", data)
    assert result.returncode == 1
    assert f"--no-auth is refused: {data} has had API keys" in result.stderr


def test_an_open_server_answers_only_requests_addressed_to_it(server: Server) -> None:
    """--no-auth: said on start; a request whose Host is another name (a web page's, after
    DNS rebinding) is answered 421; the first key created closes the server."""
    server.open().start()
    assert server.process is not None and server.process.stderr is not None
    said = server.process.stderr.readline().decode() + server.process.stderr.readline().decode()
    assert "open without API keys (--no-auth): it answers this machine only" in said
    port = server.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        response = httpx.get(f"{server.url}/api/v1/jobs", headers={"Host": host}, timeout=10)
        assert response.status_code == 200, (host, response.text)
    for host in (f"rebound.example:{port}", f"127.0.0.1:{port + 1}", "localhost", ""):
        response = httpx.get(f"{server.url}/api/v1/jobs", headers={"Host": host}, timeout=10)
        assert response.status_code == 421, (host, response.text)
        assert response.json()["error"] == "unexpected Host header"
        assert f"127.0.0.1:{port}" in response.json()["detail"]
    server.key("first", credits=1)
    response = server.http().get("/jobs")
    assert response.status_code == 401 and response.json()["error"] == "missing API key"


@pytest.mark.slow
def test_remote_subtitles_cancel_and_reattach(
    cli, server: Server, talk: Path, tmp_path: Path, fake_engines
) -> None:
    server.open().start()
    assert cli("login", "--url", server.url, "--api-key", "ignored-by-an-open-server")[0] == 1
    assert cli("login", "--url", server.url)[0] == 1  # no key on a pipe: asked to give one
    server_key = server.key("carol", credits=10)[1]  # the open server now needs keys
    assert cli("login", "--url", server.url, "--api-key", server_key)[0] == 0

    code, out, err = cli("subtitles", str(talk), "--to", "es", "--from", "en", "--remote",
                         "--max-cps", "15")  # fmt: skip
    assert code == 0, err
    remote_srt = talk.with_name("talk.es.srt")
    assert out.strip() == str(remote_srt) and "[es] Welcome" in remote_srt.read_text()

    # A queued job is cancelled at once; a cancelled or failed job costs nothing.
    client = server.http(server_key)
    upload = client.put("/uploads", params={"filename": "talk.mp4"}, content=talk.read_bytes())
    upload_id = upload.json()["id"]
    jobs = [client.post("/jobs", json={"kind": "dub", "upload_id": upload_id,
                                       "options": {"to": ["es"], "from": "en"}}).json()
            for _ in range(2)]  # fmt: skip
    cancelled = client.post(f"/jobs/{jobs[1]['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
    failing = client.post(
        "/jobs",
        json={
            "kind": "dub",
            "upload_id": upload_id,
            "options": {"to": ["es"], "from": "en", "tts_engine": "espeak-ng", "voice": "nobody"},
        },
    ).json()
    assert _wait(client, jobs[0]["id"])["state"] == "succeeded"
    assert _wait(client, failing["id"])["state"] == "failed"
    assert "has no voice 'nobody'" in client.get(f"/jobs/{failing['id']}").json()["error"]
    usage = client.get("/account").json()["usage"]
    charged = {entry["job_id"] for entry in usage if entry["reason"] == "job"}
    assert jobs[0]["id"] in charged and not charged & {jobs[1]["id"], failing["id"]}

    # A download cut short resumes from where it stopped.
    from octavia_cli.remote.client import Client

    name = "talk.es.mp4"
    whole = client.get(f"/jobs/{jobs[0]['id']}/results/{name}").content
    destination = tmp_path / "resumed" / name
    destination.parent.mkdir()
    (destination.parent / f".{name}.part").write_bytes(whole[:1000])
    Client(server.url, server_key).download(jobs[0]["id"], name, destination)
    assert destination.read_bytes() == whole

    # The server dies while a remote dub runs: the client re-attaches after the restart.
    import threading

    second = tmp_path / "second"
    second.mkdir()
    video = Path(shutil.copy(talk, second / "talk.mp4"))
    outcome: list[tuple[int, str, str]] = []
    arguments = ("dub", str(video), "--to", "es", "--from", "en", "--remote")
    runner = threading.Thread(target=lambda: outcome.append(cli(*arguments)))
    runner.start()
    deadline = time.monotonic() + 60
    while not [j for j in client.get("/jobs").json() if j["state"] == "running"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.kill()
    server.extra = ("--max-upload-mb", "2")  # with keys now: --no-auth would be refused
    server.start()
    runner.join(120)
    code, out, err = outcome[0]
    assert code == 0, err
    assert (second / "talk.es.mp4").exists() and "re-attaching" in err
    assert cli("logout")[0] == 0
    assert "remote.api_key" not in Path(os.environ["OCTAVIA_CONFIG"]).read_text()


def test_a_full_queue_answers_503(tmp_path: Path, talk: Path, fake_engines) -> None:
    with InProcessServer(tmp_path / "data", max_queued=1, no_auth=True) as server:
        client = server.http()
        upload = client.put("/uploads", params={"filename": "talk.mp4"},
                            content=talk.read_bytes()).json()  # fmt: skip
        body = {"kind": "transcribe", "upload_id": upload["id"], "options": {"from": "en"}}
        statuses = [client.post("/jobs", json=body) for _ in range(4)]
        full = [r for r in statuses if r.status_code == 503]
        assert full and full[0].headers["Retry-After"] == "30"
        assert full[0].json()["error"] == "queue full"
        assert client.get("/openapi.json").json()["info"]["title"] == "Octavia"


def test_each_worker_gets_its_own_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With N GPUs, worker i runs its jobs on cuda:(i mod N) (a GPU count stands in for
    the GPUs this machine does not have); without GPUs the settings decide."""
    import octavia_cli.devices as devices
    from octavia_cli.config import load_settings
    from octavia_cli.errors import InputError
    from octavia_cli.server.jobs import TranscribeOptions, _settings
    from octavia_cli.server.store import Store
    from octavia_cli.server.worker import EventBus, WorkerPool

    pool = WorkerPool(Store(tmp_path / "db"), tmp_path, EventBus(), workers=3)
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 2)
    assert [pool.device_for(i) for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert _settings(TranscribeOptions(), "cuda:1").general.device == "cuda:1"
    assert devices.resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(InputError, match="has 2 CUDA GPU"):
        devices.resolve_device("cuda:2")
    assert load_settings({"general.device": "cuda:1"}).general.device == "cuda:1"
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 0)
    assert pool.device_for(0) is None


def test_key_commands_name_an_unknown_key(server: Server) -> None:
    for command in (("revoke", "nokey"), ("credit", "nokey", "5")):
        result = server.octavia("serve", "keys", *command, "--data-dir", str(server.data_dir))
        assert result.returncode == 1 and "key with id nokey" in result.stderr
