"""`octavia serve --broker` with real Celery workers over a real Redis (Debian's
redis-server, started here on a free port): jobs spread over two `octavia worker`
processes, progress reaches the SSE stream, a killed worker's job is finished by the other,
and a job past its attempts ends failed with its reason. The server and the workers run the
cheap engines of ``fakes.py``: what is tested is how jobs travel, not the engines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("celery")
pytest.importorskip("redis")
import httpx
from test_serve import Server, _free_port, _wait, server_env  # noqa: F401 (a fixture)

from helpers import FAKE_OCTAVIA


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    program = shutil.which("redis-server")
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: scripts/install-system-deps.sh installs it")
        pytest.skip("no redis-server here (scripts/install-system-deps.sh installs it)")
    port = _free_port()
    process = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


class Cluster:
    """One serve and N workers sharing a data dir and a broker."""

    def __init__(self, data_dir: Path, env: dict[str, str], broker: str) -> None:
        self.env = {
            **env,
            # Longer than any job here, so that a copy handed out again waits on its lease
            # only in the test of that (and in the killed-worker test, which sets it lower).
            "OCTAVIA_VISIBILITY_TIMEOUT_S": "120",
            "OCTAVIA_PARALLEL_CHUNK_S": "4",
            "OCTAVIA_PARALLEL_LINES": "2",
        }
        self.broker, self.data_dir = broker, data_dir
        self.server = Server(data_dir, self.env, "--broker", broker).open()
        self.workers: list[subprocess.Popen] = []

    def start(self, workers: int) -> Cluster:
        self.server.start()
        for _ in range(workers):
            self.add_worker()
        deadline = time.monotonic() + 60
        while self.health()["workers"] < workers:
            assert time.monotonic() < deadline, "the workers did not come up"
            time.sleep(0.5)
        return self

    def add_worker(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [*FAKE_OCTAVIA, "worker", "--broker", self.broker,
             "--data-dir", str(self.data_dir)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.workers.append(process)
        return process

    def health(self) -> dict:
        return httpx.get(f"{self.server.url}/api/v1/health", timeout=5).json()

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
        if self.server.process and self.server.process.poll() is None:
            self.server.kill(signal.SIGTERM)


@pytest.fixture
def cluster(
    tmp_path: Path,
    server_env: dict[str, str],  # noqa: F811 (the fixture imported above)
    redis_url: str,
) -> Iterator[Cluster]:
    instance = Cluster(tmp_path / "shared", server_env, redis_url)
    yield instance
    instance.stop()


def _upload(client: httpx.Client, path: Path) -> str:
    response = client.put("/uploads", params={"filename": path.name}, content=path.read_bytes())
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _taken_by(client: httpx.Client, job_id: str) -> str:
    """The worker (host:pid) that took the job, once one has."""
    deadline = time.monotonic() + 60
    while not (worker := client.get(f"/jobs/{job_id}").json()["progress"].get("worker")):
        assert time.monotonic() < deadline, "no worker took the job"
        time.sleep(0.1)
    return worker


@pytest.mark.slow
def test_jobs_spread_over_two_workers_with_progress_over_sse(
    cluster: Cluster, cli, talk: Path, fake_engines
) -> None:
    # The fake speech engine takes no time: made to take some, the jobs wait in the queue
    # and both workers take some (else one could take all eight before the other polls).
    cluster.env["FAKE_OCTAVIA_SPEECH_DELAY_S"] = "0.3"
    cluster.start(workers=2)
    with cluster.server.http() as client:
        text = " ".join(f"Esta es la frase número {i}, dicha con calma." for i in range(12))
        ids = [
            client.post("/jobs", json={"kind": "synthesize",
                                       "options": {"text": text, "to": "es"}}).json()["id"]
            for _ in range(8)
        ]  # fmt: skip
        jobs = [_wait(client, job_id) for job_id in ids]
    assert all(job["state"] == "succeeded" for job in jobs), [j["error"] for j in jobs]
    assert len({job["progress"]["worker"] for job in jobs}) == 2  # both workers took jobs
    # A remote dub through the workers shows the stages' progress, as a local one would.
    config = Path(os.environ["OCTAVIA_CONFIG"])
    config.write_text(f'[remote]\nurl = "{cluster.server.url}"\n')
    code, out, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--remote")
    assert code == 0, err
    for stage in ("transcribe: done", "diarize: done", "mux:es: done"):
        assert stage in err
    assert Path(out.strip()).exists()
    metrics = httpx.get(f"{cluster.server.url}/metrics", timeout=5).text
    assert "octavia_workers 2.0" in metrics
    assert 'octavia_jobs{kind="synthesize",state="succeeded"} 8.0' in metrics


@pytest.mark.slow
def test_a_parallel_dub_times_its_lines_as_a_single_dub_does(
    cluster: Cluster, cli, talk: Path, tmp_path: Path, fake_engines
) -> None:
    cluster.start(workers=2)
    Path(os.environ["OCTAVIA_CONFIG"]).write_text(f'[remote]\nurl = "{cluster.server.url}"\n')
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en", "--remote",
                       "--parallel")  # fmt: skip
    assert code == 0, err
    assert "transcribe: done" in err and "mux:es: done" in err
    (project,) = (cluster.data_dir / "jobs").glob("*/talk.octavia")
    chunks = sorted((project / "chunks").glob("0*.json"))
    assert len(chunks) >= 2  # 10 s in chunks of about 4 s, cut at quiet moments
    spoken = sorted((project / "chunks").glob("synth-es-*.json"))
    assert len(spoken) == 2  # 4 lines spoken 2 by 2
    parallel = json.loads((project / "report" / "timing.es.json").read_text())
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single = Path(shutil.copy(talk, single_dir / "talk.mp4"))
    assert cli("dub", str(single), "--to", "es", "--from", "en")[0] == 0
    alone = json.loads((single_dir / "talk.octavia" / "report" / "timing.es.json").read_text())
    assert len(parallel["lines"]) == len(alone["lines"])
    for a, b in zip(parallel["lines"], alone["lines"], strict=True):
        # (Not the same words: the fake recogniser starts its script again in each chunk.)
        for key in ("slot_start_s", "slot_end_s", "start_s", "end_s"):
            assert abs(a[key] - b[key]) <= 0.1, (key, a, b)  # no drift at the joins
    code, _, err = cli("dub", str(talk), "--to", "es", "--parallel")
    assert code == 1 and "--remote" in err
    code, _, err = cli("dub", str(talk), "--to", "fr", "--remote", "--parallel")
    assert code != 0 and "A --parallel dub needs the spoken language" in err
    # A pair no engine has is refused by the dub's own checks before the file is even
    # extracted, so before any chunk is queued.
    jobs = cluster.data_dir / "jobs"
    extracted = sorted(jobs.glob("*/talk.octavia/audio"))
    code, _, err = cli("dub", str(talk), "--to", "ja", "--from", "en", "--remote", "--parallel")
    assert code != 0 and "The fake translator cannot translate en to ja" in err
    assert sorted(jobs.glob("*/talk.octavia/audio")) == extracted
    assert sorted(jobs.glob("*/talk.octavia/chunks/*.json")) == sorted(chunks + spoken)


def _dub_taken_by_a_worker(client: httpx.Client, talk: Path) -> tuple[str, str]:
    """Queue a dub of ``talk`` and wait until a worker takes it: (job id, worker)."""
    upload = _upload(client, talk)
    request = {"kind": "dub", "upload_id": upload, "options": {"to": ["es"], "from": "en"}}
    job_id = client.post("/jobs", json=request).json()["id"]
    return job_id, _taken_by(client, job_id)


@pytest.mark.slow
def test_a_killed_worker_loses_no_job(cluster: Cluster, talk: Path) -> None:
    cluster.env["OCTAVIA_VISIBILITY_TIMEOUT_S"] = "5"  # the dead worker's job back soon
    cluster.env["OCTAVIA_JOB_LEASE_S"] = "6"  # and its claim on the job lapses soon
    cluster.start(workers=2)
    with cluster.server.http() as client:
        job_id, taken = _dub_taken_by_a_worker(client, talk)
        pid = int(taken.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)  # mid-job: acked late, so the job goes back
        job = _wait(client, job_id, timeout_s=240)
    assert job["state"] == "succeeded", job["error"]
    assert job["progress"]["worker"] != taken  # the other worker finished it
    assert [r["name"] for r in job["results"]] == ["talk.es.mp4"]


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish(cluster: Cluster, talk: Path) -> None:
    cluster.start(workers=1)
    with cluster.server.http() as client:
        job_id, _ = _dub_taken_by_a_worker(client, talk)
        worker = cluster.workers[0]
        worker.send_signal(signal.SIGTERM)  # a warm shutdown: finish, then stop
        job = _wait(client, job_id, timeout_s=120)
        assert worker.wait(60) == 0
    assert job["state"] == "succeeded", job["error"]


@pytest.mark.slow
def test_a_job_running_past_the_visibility_timeout_runs_once(cluster: Cluster, talk: Path) -> None:
    """Redis hands a job still running past its visibility timeout to the other worker; that
    copy waits on the first run's lease instead of failing on the project's lock."""
    cluster.env["OCTAVIA_VISIBILITY_TIMEOUT_S"] = "2"
    cluster.env["FAKE_OCTAVIA_SPEECH_DELAY_S"] = "1.5"  # four lines: a dub of 6 s or more
    cluster.start(workers=2)
    with cluster.server.http() as client:
        job_id, _ = _dub_taken_by_a_worker(client, talk)
        job = _wait(client, job_id, timeout_s=120)
        assert job["state"] == "succeeded", job["error"]
        time.sleep(3)  # the copy's return: it must not turn the job into a failure
        job = client.get(f"/jobs/{job_id}").json()
    assert job["state"] == "succeeded", job["error"]
    assert [r["name"] for r in job["results"]] == ["talk.es.mp4"]


def test_a_copy_of_a_running_or_finished_job_does_not_run(redis_url: str, tmp_path) -> None:
    import redis

    from octavia_cli.server.distributed import CHANNEL, _run_task, celery_app

    app = celery_app(redis_url)
    client = redis.Redis.from_url(redis_url)
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)

    class Retry(Exception):
        pass

    class Task:  # what Celery's bound task gives the function
        def __init__(self) -> None:
            self.app, self.max_retries, self.retried = app, 5, {}
            self.request = type("Request", (), {"retries": 0})()

        def retry(self, **options: object) -> Exception:
            self.retried = options
            return Retry()

    job = {"id": "copy1", "key_id": None, "kind": "synthesize", "state": "running",
           "options": {"text": "hola", "to": "es"}, "upload_id": "",
           "cost_minutes": 0.0}  # fmt: skip
    os.environ["OCTAVIA_DATA_DIR"] = str(tmp_path)
    client.set("octavia:running:copy1", "elsewhere:1", ex=60)  # another worker runs it
    task = Task()
    with pytest.raises(Retry):
        _run_task(task, {"job": job, "upload": None, "max_attempts": 3})
    assert task.retried["max_retries"] is None and 1 <= task.retried["countdown"] <= 60
    assert client.get("octavia:attempts:copy1") is None  # a copy is not an attempt
    client.delete("octavia:running:copy1")
    client.set("octavia:finished:copy1", 1)
    assert _run_task(Task(), {"job": job, "upload": None, "max_attempts": 3}) is None
    assert listener.get_message(timeout=0.5) is None  # nothing said about the job
    assert not (tmp_path / "jobs" / "copy1").exists()  # and it did not run


def test_a_job_past_its_attempts_ends_failed_with_its_reason(redis_url: str, tmp_path) -> None:
    import redis

    from octavia_cli.server.distributed import CHANNEL, _run_task, celery_app

    app = celery_app(redis_url)
    client = redis.Redis.from_url(redis_url)
    client.set("octavia:attempts:poison1", 3)  # delivered three times already: it kills workers
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)

    class Task:  # what Celery's bound task gives the function
        def __init__(self) -> None:
            self.app, self.max_retries = app, 5
            self.request = type("Request", (), {"retries": 0})()

    job = {"id": "poison1", "key_id": None, "kind": "synthesize", "state": "running",
           "options": {"text": "hola", "to": "es"}, "upload_id": "",
           "cost_minutes": 0.0}  # fmt: skip
    os.environ["OCTAVIA_DATA_DIR"] = str(tmp_path)
    assert _run_task(Task(), {"job": job, "upload": None, "max_attempts": 3}) is None
    deadline = time.monotonic() + 5
    while (message := listener.get_message(timeout=0.5)) is None:
        assert time.monotonic() < deadline
    event = json.loads(message["data"])
    assert event["type"] == "end" and event["state"] == "failed"
    assert "stopped its worker 3 times" in event["error"]
    assert not (tmp_path / "jobs" / "poison1").exists()  # it did not run again


@pytest.mark.slow
def test_a_broker_that_does_not_answer_is_said_at_once(
    server_env: dict[str, str],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    """serve --broker and worker check Redis first: one sentence, exit 1, no retry loop."""
    closed = f"redis://user:secret@127.0.0.1:{_free_port()}/0"
    server = Server(tmp_path / "data", server_env, "--broker", closed)
    for args in (
        ("serve", "--port", str(server.port), "--data-dir", str(server.data_dir), "--broker",
         closed, "--no-auth"),
        ("worker", "--broker", closed, "--data-dir", str(server.data_dir)),
    ):  # fmt: skip
        result = server.octavia(*args)
        assert result.returncode == 1, result.stderr
        assert "Cannot reach the broker at redis://user:***@127.0.0.1" in result.stderr
        assert "secret" not in result.stderr and "Traceback" not in result.stderr
    result = server.octavia("worker", "--broker", "amqp://guest@localhost//")
    assert result.returncode == 1 and "--broker must be a Redis URL" in result.stderr
