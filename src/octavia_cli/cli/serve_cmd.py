"""``octavia serve`` and ``octavia serve keys``: the local HTTP API and its API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import print_json
from octavia_cli.errors import InputError

app = typer.Typer(help="Run Octavia as an HTTP API with jobs and live progress.")
keys_app = typer.Typer(help="API keys and their credits.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Jobs, uploads and the database (default: user data dir)."),
]


def data_dir_or_default(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir
    import platformdirs

    return platformdirs.user_data_path("octavia", appauthor=False) / "server"


def _store(data_dir: Path | None):  # -> Store
    from octavia_cli.server.store import Store

    return Store(data_dir_or_default(data_dir) / "octavia.db")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).")] = 8000,
    data_dir: DataDirOption = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Jobs run at once (one per GPU).", min=1)
    ] = 1,
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", min=1)] = 4096,
    max_queued: Annotated[int, typer.Option("--max-queued", min=1)] = 100,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="redis://HOST:6379/0: run jobs on Celery workers (octavia worker) that share "
            "--data-dir, instead of in this process.",
            show_default=False,
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve without API keys, to this machine only (a loopback --host); refused "
            "on a data dir that has ever had a key.",
        ),
    ] = False,
    upload_quota_mb: Annotated[
        float | None,
        typer.Option(
            "--upload-quota-mb",
            min=0,
            show_default=False,
            help="MB of uploads one key may keep (0: no quota; setting serve.upload_quota_mb, "
            "default 10240).",
        ),
    ] = None,
    upload_retention_hours: Annotated[
        float | None,
        typer.Option(
            "--upload-retention-hours",
            min=0,
            show_default=False,
            help="Delete an upload this long after it was made, once no queued job needs it "
            "(0: never; setting serve.upload_retention_hours, default 24).",
        ),
    ] = None,
    retention_days: Annotated[
        float | None,
        typer.Option(
            "--retention-days",
            min=0,
            show_default=False,
            help="Delete a finished job and its results this long after it ended (0: never; "
            "setting serve.retention_days, default 30).",
        ),
    ] = None,
) -> None:
    """Serve the API (http://HOST:PORT/api/v1, OpenAPI at /api/v1/docs)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from octavia_cli.config import load_settings
    from octavia_cli.server.app import create_app
    from octavia_cli.server.options import ServerOptions, retention_of, webhooks_of
    from octavia_cli.server.runner import lock_data_dir

    settings = load_settings({
        "serve.upload_quota_mb": upload_quota_mb,
        "serve.upload_retention_hours": upload_retention_hours,
        "serve.retention_days": retention_days,
    })  # fmt: skip
    folder = data_dir_or_default(data_dir)
    _check_auth(_store(folder), folder, host, no_auth)
    lock = lock_data_dir(folder)  # one serve per data dir, held until this process ends
    if broker:
        from octavia_cli.server.distributed import check_broker

        check_broker(broker)
    listening = _listen(host, port)  # a port in use is said before anything starts
    bound_host, bound_port = listening.getsockname()[:2]
    options = ServerOptions(
        data_dir=folder,
        workers=workers,
        max_upload_bytes=max_upload_mb * 1024 * 1024,
        max_queued=max_queued,
        broker=broker,
        no_auth=no_auth,
        host=host,
        port=bound_port,
        upload_quota_bytes=int(settings.serve.upload_quota_mb * 1024 * 1024),
        retention=retention_of(settings),
        webhooks=webhooks_of(settings),
    )
    config = uvicorn.Config(create_app(options), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    typer.echo(f"octavia serve: http://{shown}:{bound_port}/api/v1 (data in {folder})", err=True)
    if no_auth:
        typer.echo(
            "octavia serve: open without API keys (--no-auth): it answers this machine only, "
            f"at 127.0.0.1, localhost or [::1] port {bound_port}; creating a key closes it.",
            err=True,
        )
    else:
        typer.echo("octavia serve: every request needs an API key.", err=True)
    try:
        server.run(sockets=[listening])
    finally:
        lock.close()


def _check_auth(store, folder: Path, host: str, no_auth: bool) -> None:  # store: Store
    """Raise one sentence unless the server would be reachable only as it should be: with
    keys, or open (``--no-auth``) on a loopback address of a data dir never given a key.

    Raises:
        InputError: --no-auth off loopback or on a data dir that has had keys, or no
            --no-auth and no active key.
    """
    from octavia_cli.server.security import is_loopback

    if no_auth:
        if not is_loopback(host):
            raise InputError(
                f"--no-auth serves this machine only, and {host} is not a loopback address.",
                "Leave --host out (127.0.0.1), or create an API key and drop --no-auth.",
            )
        if store.ever_had_keys():
            raise InputError(
                f"--no-auth is refused: {folder} has had API keys, so it serves with keys only.",
                "Use a key (`octavia serve keys list`), or another --data-dir.",
            )
        return
    if not store.any_keys():
        revoked = store.ever_had_keys()
        raise InputError(
            f"No active API key in {folder}: "
            + ("every key is revoked, so nobody could use the server."
               if revoked else "serve needs a key, or --no-auth to be open to this machine."),
            f"Create one with `octavia serve keys create NAME --data-dir {folder}`"
            + ("." if revoked else ", or pass --no-auth (loopback only)."),
        )  # fmt: skip


def _listen(host: str, port: int):
    """A socket bound to ``host:port`` for uvicorn to serve on.

    Raises:
        InputError: the address is in use, not this machine's, or needs privileges.
    """
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"Port {port} on {host} is already in use.",
                "Choose another with --port, or stop what is using it.",
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise InputError(
                f"Port {port} needs administrator rights.", "Choose one above 1023 with --port."
            ) from None
        raise InputError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    sock.set_inheritable(True)
    return sock


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for.")],
    credits: Annotated[float, typer.Option("--credits", help="Minutes of media.")] = 0.0,
    data_dir: DataDirOption = None,
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""
    key, key_id = _store(data_dir).create_key(name, credits)
    typer.echo(f"{key_id}\t{key}")


@keys_app.command("list")
def keys_list(
    data_dir: DataDirOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Keys with their balance and default webhook (the secret itself is never shown)."""
    keys = _store(data_dir).keys()
    if json_output:
        print_json(keys)
        return
    for key in keys:
        state = "revoked" if key["revoked_at"] else "active"
        typer.echo(
            f"{key['id']}\t{key['prefix']}…\t{key['name']}\t{state}\t"
            f"{key['balance_minutes']:.2f} min"
            + (f"\t{key['webhook_url']}" if key["webhook_url"] else "")
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDirOption = None) -> None:
    """Revoke a key: its requests are refused from now on."""
    if not _store(data_dir).revoke(key_id):
        raise InputError(f"No active key with id {key_id}.", "See `octavia serve keys list`.")
    typer.echo(f"revoked {key_id}")


@keys_app.command("credit")
def keys_credit(key_id: str, minutes: float, data_dir: DataDirOption = None) -> None:
    """Add (or, negative, remove) credits: one ledger entry."""
    try:
        _store(data_dir).credit(key_id, minutes)
    except KeyError:
        raise InputError(f"No key with id {key_id}.", "See `octavia serve keys list`.") from None
    typer.echo(f"{key_id}\t{_store(data_dir).balance(key_id):.2f} min")


# The id that names an open (--no-auth) server's own webhook secret.
LOCAL_ID = "local"


@keys_app.command("webhook-secret")
def keys_webhook_secret(
    key_id: Annotated[
        str, typer.Argument(help=f"The key's id ('{LOCAL_ID}': an open server's jobs).")
    ],
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Replace it: events are signed with the new one.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Print the secret that signs the webhook events of the key's jobs (made on first use)."""
    try:
        secret = _store(data_dir).webhook_secret(None if key_id == LOCAL_ID else key_id, rotate)
    except KeyError:
        raise InputError(f"No key with id {key_id}.", "See `octavia serve keys list`.") from None
    typer.echo(secret)


@keys_app.command("webhook")
def keys_webhook(
    key_id: str,
    url: Annotated[
        str | None, typer.Argument(help="http(s) URL; leave out with --clear.", show_default=False)
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No default webhook.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Set the webhook the key's jobs are reported to when they name none."""
    from octavia_cli.config import load_settings
    from octavia_cli.server.webhooks import check_url

    if (url is None) == (not clear):
        raise InputError("Give a URL, or --clear.", "For example: ... webhook ID https://...")
    if url is not None:
        try:
            check_url(url, load_settings({}).serve.webhooks_allow_private)
        except ValueError as exc:
            raise InputError(f"Not a webhook URL: {exc}.") from None
    try:
        _store(data_dir).set_key_webhook(key_id, url)
    except KeyError:
        raise InputError(f"No key with id {key_id}.", "See `octavia serve keys list`.") from None
    typer.echo(f"{key_id}\t{url or '(no webhook)'}")


def worker_command(
    broker: Annotated[
        str, typer.Option("--broker", help="The Redis URL serve was given.", show_default=False)
    ],
    data_dir: DataDirOption = None,
    gpu: Annotated[
        int | None,
        typer.Option(
            "--gpu",
            min=0,
            help="The GPU this worker uses (one worker per GPU).",
            show_default=False,
        ),
    ] = None,
    queues: Annotated[
        str,
        typer.Option("--queues", help="Job kinds to take, comma-separated."),
    ] = "dub,transcribe,translate,subtitles,synthesize",
) -> None:
    """Run jobs of an `octavia serve --broker` (Celery worker; one job at a time)."""
    from octavia_cli.server.distributed import KINDS, check_broker, gpu_report, run_worker

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in chosen if q not in KINDS]
    if unknown or not chosen:
        raise InputError(
            f"Unknown job kind(s) in --queues: {', '.join(unknown) or '(none)'}.",
            f"Choose among: {', '.join(KINDS)}.",
        )
    folder = data_dir_or_default(data_dir)
    device = gpu_report(gpu)
    check_broker(broker)
    typer.echo(f"octavia worker: {device}; queues {', '.join(chosen)}; data in {folder}", err=True)
    run_worker(broker, folder, chosen, gpu)
