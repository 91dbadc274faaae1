"""``octavia login|logout|account``: the connection to an Octavia backend."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from octavia_cli.cli.common import JsonOption, load_settings_for, print_json


def login_command(
    url: Annotated[
        str | None, typer.Option("--url", help="Backend URL, e.g. http://127.0.0.1:8000.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="API key (asked for on a terminal when omitted)."),
    ] = None,
) -> None:
    """Check a backend and key, then keep them in the config file (readable by you only)."""
    from octavia_cli.config import config_path, masked, set_config_value
    from octavia_cli.errors import InputError
    from octavia_cli.remote.client import Client

    settings = load_settings_for()
    url = url or settings.remote.url
    if not url:
        raise InputError("No backend URL.", "Give one with --url.")
    if api_key is None:
        if not sys.stdin.isatty():
            raise InputError("No API key.", "Give one with --api-key.")
        api_key = typer.prompt("API key", hide_input=True)
    client = Client(url, api_key)
    try:
        account = client.account()
    finally:
        client.close()
    set_config_value("remote.url", url)
    set_config_value("remote.api_key", api_key)
    who = account["key"]["name"] if account.get("key") else "local (no keys on this server)"
    balance = account.get("balance_minutes")
    typer.echo(
        f"Logged in to {url} as {who}"
        + (f", {balance:.2f} min of credit" if balance is not None else "")
        + f"; key {masked('remote.api_key', api_key)} saved in {config_path()}",
        err=True,
    )


def logout_command() -> None:
    """Forget the backend's key (the URL stays)."""
    from octavia_cli.config import unset_config_value

    unset_config_value("remote.api_key")
    typer.echo("Logged out.", err=True)


def account_command(
    json_output: JsonOption = False,
    jobs: Annotated[
        int, typer.Option("--jobs", min=0, help="Also list your N most recent jobs.")
    ] = 0,
) -> None:
    """Who you are on the backend, your balance and recent usage."""
    from octavia_cli.remote.client import Client

    client = Client.from_settings(load_settings_for())
    try:
        account = client.account()
        if jobs:
            account["jobs"] = list(client.jobs(limit=jobs))
    finally:
        client.close()
    if json_output:
        print_json(account)
        return
    key = account.get("key")
    typer.echo(f"backend: {client.url}")
    typer.echo(f"key:     {key['name']} ({key['prefix']}…)" if key else "key:     none (local)")
    if account.get("balance_minutes") is not None:
        typer.echo(f"balance: {account['balance_minutes']:.2f} min")
    for entry in account.get("usage", [])[:10]:
        typer.echo(
            f"  {entry['delta_minutes']:+8.2f} min  {entry['reason']}  {entry['job_id'] or ''}"
        )
    if jobs:
        typer.echo("jobs:")
    for job in account.get("jobs", []):
        typer.echo(
            f"  {job['id']}  {job['kind']:<10} {job['state']:<9} {job['cost_minutes']:.2f} min"
        )
