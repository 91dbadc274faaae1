"""``octavia review``: a dubbed project in the browser (``server/review.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import WorkdirOption


def review_command(
    target: Annotated[
        Path,
        typer.Argument(
            help="A project folder (talk.octavia) or the file that was dubbed (talk.mp4).",
            show_default=False,
        ),
    ],
    port: Annotated[int, typer.Option("--port", help="Port (0: a free one).", min=0)] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the URL; open no browser.")
    ] = False,
    workdir: WorkdirOption = None,
) -> None:
    """Review a dub in the browser: the timeline, every line, the source, the dub and the mix."""
    import secrets
    import threading
    import webbrowser

    from octavia_cli.errors import MissingDependencyError

    try:
        import uvicorn

        from octavia_cli.server.review import check_reviewable, create_review_app
    except ImportError as exc:
        raise MissingDependencyError(
            f"octavia review needs the server extra ({exc.name} is not installed).",
            "pip install 'octavia-cli[server]'",
        ) from None
    from octavia_cli.cli.serve_cmd import _listen
    from octavia_cli.project.manifest import default_project_folder

    folder = target if target.is_dir() else default_project_folder(target, workdir)
    check_reviewable(folder)
    listening = _listen("127.0.0.1", port)  # a port in use is one sentence, before anything
    bound = listening.getsockname()[1]
    token = secrets.token_urlsafe(24)
    url = f"http://127.0.0.1:{bound}/?token={token}"
    app = create_review_app(folder, token, bound)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    typer.echo(url)
    typer.echo(f"octavia review: {folder} (Ctrl-C stops it)", err=True)
    if not no_browser:
        threading.Timer(0.5, webbrowser.open, (url,)).start()
    server.run(sockets=[listening])
