"""``octavia clone-voice`` and ``octavia voices list|show|rm|export|import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import ForceOption, JsonOption, load_settings_for, print_json, state

app = typer.Typer(help="The voice library: cloned voices.", no_args_is_help=True)


def clone_voice_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new voice.", show_default=False)],
    references: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Recordings of the voice (audio or video), 6-30 s in all.", show_default=False
        ),
    ] = None,
    from_project: Annotated[
        Path | None,
        typer.Option(
            "--from-project",
            help="Clone a speaker of a dub project (with --speaker) from their own speech.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    speaker: Annotated[
        str | None,
        typer.Option(
            "--speaker",
            help="The speaker's id or label in the project (S1...).",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="Voice engine.")] = "xtts",
    accept_license: Annotated[
        bool, typer.Option("--accept-license", help="Accept the XTTS v2 licence (CPML).")
    ] = False,
    force: ForceOption = False,
) -> None:
    """Clone a voice from recordings and store it in the voice library."""
    from octavia_cli.errors import InputError, OutputExistsError
    from octavia_cli.models import voices

    if engine != "xtts":
        raise InputError(f"Voices are cloned with xtts, not '{engine}'.", "Use --engine xtts.")
    voices.check_name(name)
    if _library().exists(name) and not force:
        raise OutputExistsError(f"A voice called '{name}' exists.", "Pass --force to replace it.")
    settings = load_settings_for(tts_engine="xtts")
    if accept_license:
        from dataclasses import replace

        settings = replace(settings, tts=replace(settings.tts, accept_license=True))
    from octavia_cli.pipeline.voices import clone_voice

    if from_project is not None and (references or not speaker):
        raise InputError(
            "--from-project takes --speaker and no recordings.",
            "For example: octavia clone-voice anna --from-project talk.octavia --speaker S1",
        )
    if from_project is None and not references:
        raise InputError("No recordings given.", "Give REF.wav, or --from-project P --speaker S.")
    folder, speech_s = clone_voice(
        name, references or [], settings, force=force, project=from_project, speaker=speaker
    )
    state(ctx).stderr.print(
        f"voice '{name}' cloned from {speech_s:.1f} s of speech", highlight=False
    )
    typer.echo(str(folder))


def _library():  # -> VoiceLibrary
    """The library the settings name (``tts.voice_library``; default the user's)."""
    from octavia_cli.models.voices import library_for

    return library_for(load_settings_for())


@app.command("list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The stored voices."""
    profiles = _library().list_voices()
    if json_output:
        print_json([p.to_dict() for p in profiles])
        return
    if not profiles and not state(ctx).quiet:
        state(ctx).stderr.print(
            "No stored voices yet. Clone one with: octavia clone-voice NAME reference.wav",
            highlight=False,
        )
    for profile in profiles:
        speech = sum(r.speech_s for r in profile.references)
        typer.echo(f"{profile.name}\t{profile.engine}\t{speech:.1f} s\t{profile.created_at}"
                   + (f"\t{profile.source}" if profile.source else ""))  # fmt: skip


@app.command("show")
def show_command(name: str) -> None:
    """A voice's profile."""
    print_json(_library().load(name).to_dict())


@app.command("rm")
def rm_command(name: str) -> None:
    """Remove a voice."""
    _library().remove(name)
    typer.echo(f"removed {name}", err=True)


@app.command("rename")
def rename_command(name: str, new_name: str, force: ForceOption = False) -> None:
    """Give a voice another name (a dub's saved speakers are named STEM-LABEL)."""
    from octavia_cli.models.voices import check_name

    _library().rename(name, check_name(new_name), force=force)
    typer.echo(f"{name} -> {new_name}", err=True)


PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the passphrase from this file (else OCTAVIA_VOICE_PASSPHRASE, else asked).",
        show_default=False,
    ),
]


def _passphrase(given: Path | None, confirm: bool) -> str:
    import os

    from octavia_cli.errors import InputError

    if given is not None:
        if not given.is_file():
            raise InputError(f"{given} does not exist.", "Check the --passphrase-file path.")
        return given.read_text(encoding="utf-8").strip()
    if os.environ.get("OCTAVIA_VOICE_PASSPHRASE"):
        return os.environ["OCTAVIA_VOICE_PASSPHRASE"]
    import sys

    if not sys.stdin.isatty():
        raise InputError(
            "An exported voice is sealed with a passphrase, and there is no terminal to ask.",
            "Give --passphrase-file FILE or set OCTAVIA_VOICE_PASSPHRASE.",
        )
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


@app.command("export")
def export_command(
    name: str, destination: Path, force: ForceOption = False, passphrase_file: PassphraseFile = None
) -> None:
    """Write a voice to one file, sealed with a passphrase (for another machine)."""
    passphrase = _passphrase(passphrase_file, confirm=True)
    typer.echo(str(_library().export(name, destination, passphrase, force=force)))


@app.command("import")
def import_command(
    archive: Path, force: ForceOption = False, passphrase_file: PassphraseFile = None
) -> None:
    """Add a voice from a file made by `voices export`."""
    from octavia_cli.models.vault import is_sealed

    sealed = archive.is_file() and is_sealed(archive.read_bytes()[:8])
    passphrase = _passphrase(passphrase_file, confirm=False) if sealed else ""
    typer.echo(_library().import_voice(archive, passphrase, force=force).name)


@app.command("key")
def key_command(
    new: Annotated[
        bool, typer.Option("--new", help="Print a fresh key instead (to set OCTAVIA_VOICE_KEY).")
    ] = False,
) -> None:
    """Print the key the voice library is encrypted with (give it to OCTAVIA_VOICE_KEY on
    the other machines of a server), or a new one."""
    from octavia_cli.models import vault
    from octavia_cli.models.voices import key_file

    typer.echo(vault.new_key_text() if new else vault.key_text(key_file()))
