"""The root command: instant help and version, and the one error boundary."""

from __future__ import annotations

import subprocess
import sys

from octavia_cli import __version__

HEAVY = (
    "torch",
    "numpy",
    "ctranslate2",
    "faster_whisper",
    "onnxruntime",
    "piper",
    "pedalboard",
    "whisperx",
    "TTS",
    "demucs",
    "pyannote",
)


def _modules_loaded_by(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from octavia_cli.cli import run\n"
        f"code = run({list(args)!r})\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("MODULES ")]
    return set(line.split()[1:])


def test_help_and_version_import_no_heavy_library() -> None:
    for args in (("--help",), ("--version",), ("dub", "--help")):
        loaded = _modules_loaded_by(*args)
        assert not {m for m in HEAVY if m in loaded}, args


def test_version(cli) -> None:
    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip() == f"octavia {__version__}"


def test_help_lists_only_working_commands(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("transcribe", "translate", "synthesize", "dub", "subtitles", "config",
                    "models", "doctor", "serve", "login", "logout", "account", "clone-voice",
                    "voices"):  # fmt: skip
        assert command in out
    for missing in ("diarize",):
        assert missing not in out


def test_console_script_runs(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "octavia_cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and __version__ in result.stdout


def test_usage_error_exits_2(cli) -> None:
    code, _, err = cli("dub")
    assert code == 2
    assert "Missing argument" in err


def test_unexpected_errors_are_one_sentence_without_traceback(cli, monkeypatch) -> None:
    import octavia_cli.pipeline as pipeline

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "dub", explode)
    code, _, err = cli("dub", "x.mp4", "--to", "es")
    assert code == 4
    assert "Unexpected error: RuntimeError: boom" in err and "Traceback" not in err


def test_debug_shows_the_traceback_but_keeps_the_exit_code(cli, monkeypatch) -> None:
    import octavia_cli.pipeline as pipeline

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "dub", explode)
    code, _, err = cli("--debug", "dub", "x.mp4", "--to", "es")
    assert code == 4  # exit codes never depend on --debug
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert "Unexpected error: RuntimeError: boom" in err


def test_no_progress_output_off_a_terminal(capsys, talk, fake_engines) -> None:
    from octavia_cli.cli import run

    assert run(["transcribe", str(talk), "--language", "en", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "" or all(
        line.startswith("INFO:") for line in captured.err.strip().splitlines()
    )
    assert run(["--quiet", "transcribe", str(talk), "--language", "en"]) == 0
    assert capsys.readouterr().err == ""


def test_help_is_kept_and_printed_again_without_typer(tmp_path) -> None:
    """The first ``dub --help`` renders and keeps its text; the next prints the same text
    without importing Typer; another width is another text."""
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "90"}
    code = (
        "import sys\n"
        "sys.argv = ['octavia', 'dub', '--help']\n"
        "from octavia_cli.__main__ import main\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "print('TYPER', 'typer' in sys.modules, file=sys.stderr)\n"
    )

    def run(columns: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**env, "COLUMNS": columns}, check=True)  # fmt: skip

    first, second = run("90"), run("90")
    assert "Usage: octavia dub" in first.stdout and "--to" in first.stdout
    assert second.stdout == first.stdout
    assert "TYPER True" in first.stderr and "TYPER False" in second.stderr
    assert len(list((tmp_path / "octavia" / "help").iterdir())) == 1
    narrow = run("60")
    assert "TYPER True" in narrow.stderr and narrow.stdout != first.stdout
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60


def test_only_help_requests_use_the_cache() -> None:
    from octavia_cli.help_cache import help_request

    assert help_request(["--help"]) and help_request(["dub", "-h"])
    assert help_request(["models", "pull", "--help"])
    assert not help_request(["dub", "talk.mp4", "--to", "es", "--help"])
    assert not help_request(["--debug", "dub", "--help"]) and not help_request(["dub"])


def test_kept_help_into_a_closed_pipe_is_no_traceback(tmp_path) -> None:
    """``octavia dub --help | head -1``: the reader leaves; no traceback, exit 0."""
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "octavia_cli", "dub", "--help"]
    subprocess.run(command, env=env, capture_output=True, check=True)  # renders, keeps
    assert list((tmp_path / "octavia" / "help").iterdir())
    closed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert closed.stdout is not None and closed.stderr is not None
    closed.stdout.close()
    assert closed.wait() == 0
    assert b"Traceback" not in closed.stderr.read()
