"""``octavia subtitles``: subtitle files, soft tracks or burnt-in subtitles from speech."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import (
    AsrEngineOption,
    AsrModelOption,
    BatchSizeOption,
    ComputeTypeOption,
    DeviceOption,
    ForceOption,
    GlossaryOption,
    JsonOption,
    PresetOption,
    WorkdirOption,
    glossary_terms,
    load_settings_for,
    print_json,
    setting_option,
    state,
)
from octavia_cli.errors import InputError
from octavia_cli.text.cues import SubtitleFormat

RULES = "Subtitle rules (defaults from the [subtitles] settings)"


def subtitles_command(
    ctx: typer.Context,
    input: Annotated[
        Path,
        typer.Argument(
            help="Video or audio file, or a project folder.", metavar="INPUT", show_default=False
        ),
    ],
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            "-t",
            help="Translate into this language (repeat for several); "
            "without it, subtitles are in the spoken language.",
            show_default=False,
        ),
    ] = None,
    source_language: Annotated[
        str | None,
        typer.Option("--from", "-f", help="Spoken language; detected if omitted."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Output file, or - for stdout; {lang} stands for the language. Default: "
            "talk.srt / talk.es.srt (talk.subtitled.mp4 with --embed or --burn-in) beside "
            "the input.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        SubtitleFormat | None,
        typer.Option(
            "--format",
            help="Subtitle format; from the -o extension if omitted, else srt.",
            show_default=False,
        ),
    ] = None,
    embed: Annotated[
        bool,
        typer.Option(
            "--embed",
            help="Write a copy of the video with the subtitles as soft tracks "
            "(mov_text in mp4, srt or ass in mkv), tagged with their language.",
        ),
    ] = False,
    burn_in: Annotated[
        bool,
        typer.Option("--burn-in", help="Write a copy of the video with the subtitles drawn in."),
    ] = False,
    max_line_chars: Annotated[
        int | None, setting_option("max_line_chars", rich_help_panel=RULES)
    ] = None,
    max_lines: Annotated[int | None, setting_option("max_lines", rich_help_panel=RULES)] = None,
    max_cps: Annotated[float | None, setting_option("max_cps", rich_help_panel=RULES)] = None,
    min_duration: Annotated[
        float | None, setting_option("min_duration", rich_help_panel=RULES)
    ] = None,
    max_duration: Annotated[
        float | None, setting_option("max_duration", rich_help_panel=RULES)
    ] = None,
    min_gap: Annotated[float | None, setting_option("min_gap", rich_help_panel=RULES)] = None,
    json_output: JsonOption = False,
    workdir: WorkdirOption = None,
    preset: PresetOption = None,
    device: DeviceOption = None,
    model: AsrModelOption = None,
    asr_engine: AsrEngineOption = None,
    batch_size: BatchSizeOption = None,
    compute_type: ComputeTypeOption = None,
    glossary: GlossaryOption = None,
    force: ForceOption = False,
    remote: Annotated[
        bool, typer.Option("--remote", help="Run on the configured backend (octavia login).")
    ] = False,
) -> None:
    """Make subtitles from the speech: in the spoken language, or translated with --to.

    The transcript is the dub project's, so `subtitles` then `dub` on one input transcribes
    once. Same input and settings give byte-identical files.
    """
    from octavia_cli.pipeline import SubtitleRequest, subtitles
    from octavia_cli.text.cues import SubtitleMode, render

    if embed and burn_in:
        raise InputError("--embed and --burn-in cannot be combined.", "Choose one.")
    mode = SubtitleMode.EMBED if embed else SubtitleMode.BURN_IN if burn_in else SubtitleMode.FILE
    to_stdout = output == "-"
    if to_stdout and mode is not SubtitleMode.FILE:
        raise InputError("-o - writes a subtitle file to stdout, not a video.", "Give a file.")
    if to_stdout and json_output:
        raise InputError("-o - and --json both write to stdout.", "Choose one.")
    if to_stdout and to and len(to) > 1:
        raise InputError("-o - takes one language.", "Give one --to, or -o 'talk.{lang}.srt'.")
    # The subtitle rules by their option names: the settings' and the job's alike.
    rules = {
        "max_line_chars": max_line_chars, "max_lines": max_lines, "max_cps": max_cps,
        "min_duration": min_duration, "max_duration": max_duration, "min_gap": min_gap,
    }  # fmt: skip
    settings = load_settings_for(
        glossary=glossary,
        preset=preset,
        device=device,
        model=model,
        asr_engine=asr_engine,
        batch_size=batch_size,
        compute_type=compute_type,
        **rules,
    )
    from octavia_cli.languages import normalize_language, normalize_targets

    targets = normalize_targets(to or ())  # once, here: outputs and jobs see these
    source_language = normalize_language(source_language) if source_language else None
    request = SubtitleRequest(
        input=input,
        targets=targets,
        source_language=source_language,
        output=None if output in (None, "-") else Path(output),
        fmt=fmt,
        mode=mode,
        workdir=workdir,
        force=force,
        write=not to_stdout,
    )
    if remote:
        if to_stdout or json_output:
            raise InputError("--remote writes files; -o - and --json work locally only.")
        job = {"embed": embed, "burn_in": burn_in, "preset": preset.value if preset else None}
        _subtitles_remote(ctx, request, settings, job | rules)
        return
    with state(ctx).renderer() as hook:
        result = subtitles(request, settings, hook)
    if to_stdout:
        typer.echo(render(result.tracks[0].cues, fmt or SubtitleFormat.SRT), nl=False)
    elif json_output:
        print_json(
            {
                "input": str(input),
                "project": str(result.project_folder),
                "language": result.language,
                "language_probability": result.language_probability,
                "outputs": [str(path) for path in result.outputs],
                "tracks": [
                    {
                        "language": track.language,
                        "translated": track.translated,
                        "cues": [
                            {"start_s": c.start_s, "end_s": c.end_s, "lines": c.lines}
                            for c in track.cues
                        ],
                    }
                    for track in result.tracks
                ],
            }
        )
    else:
        for path in result.outputs:
            typer.echo(str(path))


def _subtitles_remote(ctx: typer.Context, request, settings, given: dict) -> None:
    """The same subtitles made on the backend, written where a local run writes them;
    ``given``: the job's options (those not given are None)."""
    from octavia_cli.files import check_output_path
    from octavia_cli.media.ffmpeg import probe
    from octavia_cli.pipeline import subtitle_format, subtitle_outputs
    from octavia_cli.remote.client import Client
    from octavia_cli.remote.jobs import run_remote
    from octavia_cli.remote.protocol import language_of

    probe(request.input)
    targets = list(request.targets)  # normalised by subtitles_command
    spoken = request.source_language
    fmt = subtitle_format(request)
    options: dict = {"to": targets, "format": fmt.value}
    if spoken:
        options["from"] = spoken
    options |= {name: value for name, value in given.items() if value is not None}
    if glossary := glossary_terms(settings):
        options["glossary"] = glossary
    paths = subtitle_outputs(request, request.input, targets or [spoken or "und"], bool(targets))
    for path in paths.values():
        check_output_path(path, force=request.force)

    def destination(result: dict) -> Path | None:
        if len(paths) == 1:
            return next(iter(paths.values()))
        return paths.get(language_of(result, list(paths)) or "")

    client = Client.from_settings(settings)
    try:
        with state(ctx).renderer() as hook:
            written = run_remote(client, "subtitles", request.input, options, destination, hook)
    finally:
        client.close()
    for path in written.values():
        typer.echo(str(path))
