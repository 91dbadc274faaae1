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
    if voices.folder_of(name).exists() and not force:
        raise OutputExistsError(f"A voice called '{name}' exists.", "Pass --force to replace it.")
    flags = {"tts_engine": "xtts"}
    settings = load_settings_for(**flags)
    if accept_license:
        from dataclasses import replace

        settings = replace(settings, tts=replace(settings.tts, accept_license=True))
    import tempfile

    from octavia_cli.engines.tts.xtts import XttsEngine

    tts = XttsEngine(settings)
    tts.check()
    with tempfile.TemporaryDirectory(prefix="octavia-clone-") as scratch:
        if from_project is not None:
            if references or not speaker:
                raise InputError(
                    "--from-project takes --speaker and no recordings.",
                    "For example: octavia clone-voice anna --from-project talk.octavia "
                    "--speaker S1",
                )
            references = [_speaker_reference(from_project, speaker, Path(scratch))]
        if not references:
            raise InputError(
                "No recordings given.", "Give REF.wav, or --from-project P --speaker S."
            )
        checked = voices.check_references(references)
        conditioning = tts.clone(references)
        profile = voices.VoiceProfile(name, tts.name, tts.model_spec, checked)
        folder = voices.save(profile, conditioning, force=force, reference=references[0])
    total = sum(r.speech_s for r in checked)
    state(ctx).stderr.print(f"voice '{name}' cloned from {total:.1f} s of speech", highlight=False)
    typer.echo(str(folder))


def _speaker_reference(folder: Path, speaker: str, scratch: Path) -> Path:
    """A WAV of ``speaker``'s reference speech in the project at ``folder``."""
    import numpy as np
    import soundfile

    from octavia_cli.errors import InputError
    from octavia_cli.media.audio import write_wav
    from octavia_cli.project.manifest import Project
    from octavia_cli.stages.separate import speech_audio
    from octavia_cli.stages.synthesize import reference_spans

    project = Project.load(folder)
    found = next((s for s in project.speakers if speaker in (s.id, s.label)), None)
    if found is None:
        known = ", ".join(f"{s.id} ({s.label})" for s in project.speakers) or "none yet"
        raise InputError(
            f"The project {folder} has no speaker '{speaker}'; its speakers: {known}.",
            "Dub or transcribe it first, and give one of its speakers.",
        )
    source = speech_audio(project)
    if not source.exists():
        raise InputError(f"The project's audio ({source}) is gone.", "Run the dub again.")
    rate = soundfile.info(str(source)).samplerate
    pieces = []
    for start, end in reference_spans(project, found.id):
        audio, _ = soundfile.read(str(source), start=round(start * rate), stop=round(end * rate),
                                  dtype="float32", always_2d=True)  # fmt: skip
        pieces += [audio.mean(axis=1), np.zeros(rate // 5, np.float32)]
    if not pieces:
        raise InputError(f"Speaker {speaker} has no speech to clone in {folder}.")
    path = scratch / f"{found.id}.wav"
    write_wav(path, np.concatenate(pieces)[None, :], rate)
    return path


@app.command("list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The stored voices."""
    from octavia_cli.models import voices

    profiles = voices.list_voices()
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
        typer.echo(f"{profile.name}\t{profile.engine}\t{speech:.1f} s\t{profile.created_at}")


@app.command("show")
def show_command(name: str) -> None:
    """A voice's profile."""
    from octavia_cli.models import voices

    print_json(voices.load(name).to_dict())


@app.command("rm")
def rm_command(name: str) -> None:
    """Remove a voice."""
    from octavia_cli.models import voices

    voices.remove(name)
    typer.echo(f"removed {name}", err=True)


@app.command("export")
def export_command(name: str, destination: Path, force: ForceOption = False) -> None:
    """Write a voice to one .tar.gz file."""
    from octavia_cli.models import voices

    typer.echo(str(voices.export(name, destination, force=force)))


@app.command("import")
def import_command(archive: Path, force: ForceOption = False) -> None:
    """Add a voice from a file made by `voices export`."""
    from octavia_cli.models import voices

    typer.echo(voices.import_voice(archive, force=force).name)
