"""Sessions: ``nox -s lint tests`` is what CI runs (see README and .ci/run)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def lint(session: nox.Session) -> None:
    """Style, and the layers: `import-linter` reads the sources (the package installed
    without its dependencies is enough for it to find them)."""
    session.install("ruff>=0.6", "import-linter>=2.16")
    session.install("--no-deps", "-e", ".")
    session.run("ruff", "check", "src", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "noxfile.py")
    session.run("lint-imports")


@nox.session
def tests(session: nox.Session) -> None:
    """Types (mypy, where every library the code uses is installed), then the tests (on
    every core: pytest's options in pyproject.toml)."""
    session.install("-e", ".[dev,quality]")
    session.run("mypy")
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[dev,quality]")
    session.run("python", "bench/dub_bench.py", *session.posargs)
    session.run("python", "bench/transcribe_bench.py")
    session.run("python", "bench/translate_bench.py")
