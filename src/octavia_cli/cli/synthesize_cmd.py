"""``octavia synthesize``: speak text, or a translated transcript placed on its timeline."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from octavia_cli.cli.common import (
    ForceOption,
    PresetOption,
    TtsEngineOption,
    VoiceOption,
    load_settings_for,
    state,
)
from octavia_cli.errors import InputError

# A line to speak and, from a translation JSON, its slot (pipeline.speech.Line).
Line = tuple[str, float | None, float | None]


def synthesize_command(
    ctx: typer.Context,
    input: Annotated[
        str,
        typer.Argument(
            help="Text to speak, a translation JSON (from `octavia translate --json`) whose lines "
            "are placed at their times, or - for text on stdin.",
            metavar="TEXT",
            show_default=False,
        ),
    ],
    to: Annotated[
        str,
        typer.Option("--to", "-t", help="Language of the text (ISO 639-1).", show_default=False),
    ] = ...,  # type: ignore[assignment]
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Audio file to write.", dir_okay=False, show_default=False
        ),
    ] = ...,  # type: ignore[assignment]
    tts_engine: TtsEngineOption = None,
    voice: VoiceOption = None,
    max_speed: Annotated[
        float | None,
        typer.Option("--max-speed", help="Largest speed-up to fit a timed line into its slot."),
    ] = None,
    preset: PresetOption = None,
    force: ForceOption = False,
    remote: Annotated[
        bool, typer.Option("--remote", help="Run on the configured backend (octavia login).")
    ] = False,
) -> None:
    """Speak text in a target language into an audio file."""
    from octavia_cli.files import atomic_path, check_output_path
    from octavia_cli.languages import alpha3, normalize_language
    from octavia_cli.media.audio import write_wav
    from octavia_cli.media.ffmpeg import encode_audio
    from octavia_cli.progress import ProgressEvent, StageStatus

    settings = load_settings_for(
        preset=preset, tts_engine=tts_engine, voice=voice, max_speed=max_speed
    )
    target = normalize_language(to)
    check_output_path(output, force=force)
    lines = _read_lines(input)
    if remote:
        _synthesize_remote(ctx, settings, lines, target, output, voice, preset)
        return
    from octavia_cli.pipeline.speech import speak_lines

    with state(ctx).renderer() as hook:
        track, rate = speak_lines(lines, target, settings, hook)
        if output.suffix.lower() == ".wav":
            write_wav(output, track, rate)
        else:
            with tempfile.TemporaryDirectory(prefix="octavia-") as scratch:
                wav = Path(scratch) / "track.wav"
                write_wav(wav, track, rate)
                with atomic_path(output) as tmp:
                    encode_audio(wav, tmp, language_iso639_2=alpha3(target, bibliographic=True))
        hook(ProgressEvent(f"synthesize:{target}", StageStatus.DONE, message=str(output)))


def _read_lines(input: str) -> list[Line]:
    """``(text, start_s, end_s)`` per line to speak; times are None for plain text."""
    if input == "-":
        text = sys.stdin.read()
        if not text.strip():
            raise InputError("No text on stdin.", "Pipe some text, or pass it as an argument.")
        return [(text.strip(), None, None)]
    path = Path(input)
    if path.suffix.lower() == ".json":
        if not path.exists():
            raise InputError(f"{path} does not exist.", "Check the file name.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            lines: list[Line] = [
                (s.get("translation", s.get("text", "")), float(s["start_s"]), float(s["end_s"]))
                for s in data["segments"]
            ]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InputError(
                f"{path} is not a translation JSON.",
                "Make one with: octavia translate transcript.json --to es "
                "--json -o translation.json",
            ) from None
        lines = [line for line in lines if line[0].strip()]
        if not lines:
            raise InputError(f"{path} has no lines to speak.")
        return lines
    if not input.strip():
        raise InputError("The text to speak is empty.")
    return [(input.strip(), None, None)]


def _synthesize_remote(
    ctx: typer.Context, settings: Any, lines: list, target: str, output: Path,
    voice: str | None, preset: Any,
) -> None:  # fmt: skip
    """Plain text spoken on the backend (a stored voice there with --voice)."""
    from octavia_cli.errors import InputError
    from octavia_cli.files import atomic_path
    from octavia_cli.languages import alpha3
    from octavia_cli.media.ffmpeg import encode_audio
    from octavia_cli.progress import ProgressEvent, StageStatus
    from octavia_cli.remote.client import Client

    if any(start is not None for _, start, _ in lines):
        raise InputError("--remote speaks plain text; timed translations run locally.")
    options: dict[str, Any] = {"text": " ".join(text for text, _, _ in lines), "to": target}
    if voice:
        options["voice"] = voice
    if preset is not None:
        options["preset"] = preset.value
    client = Client.from_settings(settings)
    try:
        with state(ctx).renderer() as hook, tempfile.TemporaryDirectory() as scratch:
            hook(ProgressEvent(f"synthesize:{target}", StageStatus.STARTED))
            job = client.create_job("synthesize", None, options)
            final = {}
            for event in client.follow(job["id"]):
                if event.get("type") == "state" and event["state"] != "running":
                    final = event
            if final.get("state") != "succeeded":
                from octavia_cli.errors import StageError

                state_name = final.get("state", "ended")
                reason = final.get("error") or "no reason given"
                raise StageError(f"The job {job['id']} {state_name} on the backend: {reason}.")
            wav = Path(scratch) / "speech.wav"
            client.download(job["id"], final["results"][0]["name"], wav)
            with atomic_path(output) as tmp:
                if output.suffix.lower() == ".wav":
                    tmp.write_bytes(wav.read_bytes())
                else:
                    encode_audio(wav, tmp, language_iso639_2=alpha3(target, bibliographic=True))
            hook(ProgressEvent(f"synthesize:{target}", StageStatus.DONE, message=str(output)))
    finally:
        client.close()
