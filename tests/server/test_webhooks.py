"""Webhooks: a receiver on 127.0.0.1 gets every state change of real jobs, signed, in
order, retried after failures; private targets are refused (with a stubbed resolver: the
tests never connect to an address they should not); redirects are not followed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from test_serve import InProcessServer, _wait
from webhook_receiver import Receiver, verify

from octavia_cli.server import webhooks
from octavia_cli.server.options import WebhookOptions
from octavia_cli.server.store import Store


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


def test_a_receiver_gets_every_state_change_of_a_real_job_signed(
    tmp_path: Path, talk: Path, fake_engines, receiver: Receiver, cli
) -> None:
    receiver.fail = 2  # the first event is answered 500 twice: the third attempt lands
    hooks = WebhookOptions(allow_private=True, retry_s=0.05, public_url="https://dub.example")
    with InProcessServer(tmp_path / "data", webhooks=hooks) as server:
        key_id, key = server.key("studio", credits=10)
        code, secret, _ = cli("serve", "keys", "webhook-secret", key_id,
                              "--data-dir", str(server.data_dir))  # fmt: skip
        assert code == 0 and secret.strip().startswith("whsec_")
        client = server.http(key)
        upload = client.put("/uploads", params={"filename": "talk.mp4"},
                            content=talk.read_bytes()).json()  # fmt: skip
        job = client.post("/jobs", json={"kind": "dub", "upload_id": upload["id"],
                                         "options": {"to": ["es"], "from": "en"},
                                         "webhook_url": receiver.url}).json()  # fmt: skip
        assert job["webhook_url"] == receiver.url
        final = _wait(client, job["id"])
        assert final["state"] == "succeeded", final
        receiver.wait_for(5)  # queued x3 (two failures), running, succeeded
        deliveries = client.get(f"/jobs/{job['id']}/deliveries").json()["events"]
        metrics = server.http().get(f"{server.url}/metrics").text

    # In order, each event once delivered; the failed attempts were retried with the same id.
    states = [event["state"] for event in receiver.events()]
    assert states == ["queued", "queued", "queued", "running", "succeeded"]
    ids = [headers["Octavia-Webhook-Id"] for headers, _ in receiver.requests]
    assert ids[0] == ids[1] == ids[2] and len(set(ids)) == 3
    for headers, body in receiver.requests:
        assert verify(secret.strip(), headers, body)
        assert not verify("whsec_another", headers, body)
        assert headers["Host"] == receiver.url.split("/")[2]
    succeeded = receiver.events()[-1]
    assert succeeded["job_id"] == job["id"] and succeeded["kind"] == "dub"
    assert succeeded["error"] is None
    names = {result["name"] for result in final["results"]}
    assert {r["name"] for r in succeeded["results"]} == names
    assert all(
        r["url"] == f"https://dub.example/api/v1/jobs/{job['id']}/results/{r['name']}"
        for r in succeeded["results"]
    )
    # Every attempt is recorded: the first event's two failures and its success.
    assert [e["state"] for e in deliveries] == ["queued", "running", "succeeded"]
    assert [e["outcome"] for e in deliveries] == ["delivered"] * 3
    first = deliveries[0]["deliveries"]
    assert [(a["attempt"], a["status"], a["outcome"]) for a in first] == [
        (1, 500, "failed"), (2, 500, "failed"), (3, 204, "delivered")
    ]  # fmt: skip
    assert first[0]["address"] == "127.0.0.1" and first[0]["error"] == "answered 500"
    assert 'octavia_webhook_deliveries_total{outcome="delivered"} 3.0' in metrics
    assert 'octavia_webhook_deliveries_total{outcome="failed"} 2.0' in metrics


def test_cancelled_and_failed_jobs_are_reported_and_a_keys_default_is_used(
    tmp_path: Path, receiver: Receiver, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every transition of the store emits its event (the outbox): a queued job cancelled,
    a job that fails, one requeued after a restart; a job naming no URL takes its key's."""
    store = Store(tmp_path / "octavia.db")
    key_id = store.create_key("studio")[1]
    code, _, err = cli("serve", "keys", "webhook", key_id, receiver.url,
                       "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 1 and "serve.webhooks_allow_private" in err  # a receiver on loopback
    monkeypatch.setenv("OCTAVIA_SERVE_WEBHOOKS_ALLOW_PRIVATE", "true")
    code, _, _ = cli("serve", "keys", "webhook", key_id, receiver.url,
                     "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 0
    for args, message in [
        (("webhook-secret", "nope"), "No key with id nope."),
        (("webhook", "nope", receiver.url), "No key with id nope."),
        (("webhook", key_id), "Give a URL, or --clear."),
        (("webhook", key_id, "ftp://x/y"), "Not a webhook URL"),
    ]:
        code, _, err = cli("serve", "keys", *args, "--data-dir", str(tmp_path))
        assert code == 1 and message in err, (args, err)
    cancelled = store.add_job(key_id, "transcribe", {}, "", 0.0, 10)
    assert cancelled is not None and cancelled.webhook_url == receiver.url
    store.cancel(cancelled.id)
    failing = store.add_job(key_id, "transcribe", {}, "", 0.0, 10)
    assert failing is not None
    assert store.claim_next("host:1:1") is not None
    store.recover(max_attempts=3)  # its runner is gone: queued again
    store.claim_next("host:1:1")
    store.finish(failing.id, "failed", error="the audio is silent")
    store.add_job(None, "transcribe", {}, "", 0.0, 10)  # no key, no URL: no event
    sender = webhooks.WebhookSender(store, base_url="http://x", allow_private=True)
    while sender.deliver_due():
        pass
    by_job: dict[str, list[str]] = {}
    for event in receiver.events():
        by_job.setdefault(event["job_id"], []).append(event["state"])
    assert by_job == {
        cancelled.id: ["queued", "cancelled"],
        failing.id: ["queued", "running", "queued", "running", "failed"],
    }
    assert receiver.events()[-1]["error"] == "the audio is silent"
    secret = store.webhook_secret(key_id)
    assert all(verify(secret, headers, body) for headers, body in receiver.requests)
    code, out, _ = cli("serve", "keys", "webhook", key_id, "--clear", "--data-dir", str(tmp_path))
    assert code == 0 and "(no webhook)" in out
    unreported = store.add_job(key_id, "transcribe", {}, "", 0.0, 10)
    assert unreported is not None and unreported.webhook_url is None


def _resolving_to(*addresses: str):
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(addresses)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.7", "172.16.5.4", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1"],
)  # fmt: skip
def test_private_targets_are_refused_without_the_setting(address: str) -> None:
    """A public name that resolves to a private address (the cloud's metadata service
    included) is refused before any connection: the resolver is a stub, and nothing listens
    at these addresses for the test to reach."""
    resolve = _resolving_to(address)
    with pytest.raises(webhooks.WebhookRefused, match="not a public address"):
        webhooks.post("https://hooks.example.com/x", b"{}", {}, allow_private=False,
                      resolver=resolve)  # fmt: skip
    assert resolve.asked == [("hooks.example.com", 443)]  # type: ignore[attr-defined]
    assert not webhooks.is_public(address)


def test_a_name_is_resolved_once_and_that_address_connected_to(receiver: Receiver) -> None:
    """DNS rebinding: the request goes to the address that was checked (the receiver on
    127.0.0.1, allowed here), with the URL's host in Host; the name is resolved once."""
    port = receiver.url.split(":")[2].split("/")[0]
    resolve = _resolving_to("127.0.0.1")
    attempt = webhooks.post(f"http://hooks.example.com:{port}/in", b"{}", {},
                            allow_private=True, resolver=resolve)  # fmt: skip
    assert attempt.delivered and attempt.address == "127.0.0.1"
    assert resolve.asked == [("hooks.example.com", int(port))]  # type: ignore[attr-defined]
    assert receiver.requests[0][0]["Host"] == f"hooks.example.com:{port}"
    # A name with a public and a private address: only the public one may be used.
    assert webhooks.is_public("93.184.215.14")


def test_urls_are_checked_where_a_job_names_one(tmp_path: Path, talk: Path, fake_engines) -> None:
    with InProcessServer(tmp_path / "data") as server:
        key = server.key("studio", credits=10)[1]
        client = server.http(key)
        upload = client.put("/uploads", params={"filename": "talk.mp4"},
                            content=talk.read_bytes()).json()  # fmt: skip
        for url, reason in [
            ("http://127.0.0.1:8080/x", "not a public address"),
            ("http://[::1]/x", "not a public address"),
            ("ftp://example.com/x", "http:// or https://"),
            ("https://user:pw@example.com/x", "no user name or password"),
            ("https://example.com/" + "a" * 2100, "at most 2048"),
        ]:
            response = client.post("/jobs", json={
                "kind": "transcribe", "upload_id": upload["id"], "webhook_url": url,
            })  # fmt: skip
            assert response.status_code == 422, (url, response.text)
            assert reason in response.text, response.text
        assert client.get("/jobs").json() == []


def test_a_refused_target_is_recorded_and_not_retried(tmp_path: Path) -> None:
    store = Store(tmp_path / "octavia.db")
    key_id = store.create_key("studio")[1]
    job = store.add_job(key_id, "transcribe", {}, "", 0.0, 10, "https://internal.example/x")
    assert job is not None
    sender = webhooks.WebhookSender(store, base_url="http://x", retry_s=0.01,
                                    resolver=_resolving_to("10.0.0.5"))  # fmt: skip
    assert sender.deliver_due() == 1
    assert sender.deliver_due() == 0  # given up at once: no retry
    (event,) = store.webhook_deliveries(job.id)
    assert event["outcome"] == "refused" and event["next_attempt_at"] is None
    assert "10.0.0.5" in event["deliveries"][0]["error"]
    assert store.webhook_counts() == ({"refused": 1}, 0)


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    receiver = Receiver(answer=(302, {"Location": "/elsewhere"}))
    try:
        attempt = webhooks.post(receiver.url, b"{}", {}, allow_private=True)
        assert not attempt.delivered and attempt.status == 302
        assert attempt.error == "redirect to /elsewhere not followed"
        time.sleep(0.2)
        assert [h for h, _ in receiver.requests if "GET" in h] == []
    finally:
        receiver.close()


def test_retries_back_off_and_end(tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    delays = [webhooks.backoff_s(n, 10.0, rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        full = min(3600.0, 10.0 * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    # An event past its retry time is given up after its last failed attempt.
    store = Store(tmp_path / "octavia.db")
    job = store.add_job(None, "transcribe", {}, "", 0.0, 10, "http://127.0.0.1:9/x")
    assert job is not None
    sender = webhooks.WebhookSender(store, base_url="http://x", allow_private=True,
                                    retry_s=0.01, give_up_s=0.0)  # fmt: skip
    assert sender.deliver_due() == 1  # nothing listens on port 9 of this machine
    (event,) = store.webhook_deliveries(job.id)
    assert event["outcome"] == "failed" and event["next_attempt_at"] is None
    assert event["deliveries"][0]["status"] is None
