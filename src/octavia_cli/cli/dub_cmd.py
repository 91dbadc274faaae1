"""``octavia dub``: the whole pipeline, from a video or audio file to its dubbed copy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from octavia_cli.cli.common import (
    AsrModelOption,
    DeviceOption,
    ForceOption,
    GlossaryOption,
    PresetOption,
    TtsEngineOption,
    VoiceOption,
    WorkdirOption,
    glossary_terms,
    load_settings_for,
    setting_option,
    state,
)
from octavia_cli.files import check_output_path


def dub_command(
    ctx: typer.Context,
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Video or audio files, or folders of them (dubbed one after another).",
            metavar="INPUT...",
            show_default=False,
        ),
    ],
    to: Annotated[
        list[str],
        typer.Option(
            "--to",
            "-t",
            help="Target language (ISO 639-1); repeat for several.",
            show_default=False,
        ),
    ] = ...,  # type: ignore[assignment]
    source_language: Annotated[
        str | None,
        typer.Option("--from", "-f", help="Spoken language of the input; detected if omitted."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Output file (default: <stem>.<lang>.<ext> beside the input); with several "
            "--to, include {lang} in it.",
        ),
    ] = None,
    preset: PresetOption = None,
    device: DeviceOption = None,
    workdir: WorkdirOption = None,
    force: ForceOption = False,
    model: AsrModelOption = None,
    tts_engine: TtsEngineOption = None,
    voice: VoiceOption = None,
    max_speed: Annotated[float | None, setting_option("max_speed")] = None,
    allow_video_stretch: Annotated[bool | None, setting_option("allow_video_stretch")] = None,
    replace_audio: Annotated[
        bool,
        typer.Option(
            "--replace-audio",
            help="Leave out the original audio tracks (the dub is the only one).",
        ),
    ] = False,
    glossary: GlossaryOption = None,
    ducking: Annotated[str | None, setting_option("ducking")] = None,
    loudness: Annotated[str | None, setting_option("loudness")] = None,
    qa: Annotated[str | None, setting_option("qa")] = None,
    max_attempts: Annotated[int | None, setting_option("max_attempts")] = None,
    match_voices: Annotated[
        bool | None,
        typer.Option(
            "--match-voices/--no-match-voices",
            help="xtts: give a speaker the stored voice of the same person (default on: "
            "tts.match_voices); off, each speaker is cloned anew.",
            show_default=False,
        ),
    ] = None,
    save_voices: Annotated[
        bool | None,
        typer.Option(
            "--save-voices",
            help="xtts: store each new speaker in the voice library (named STEM-LABEL; "
            "octavia voices rename), so later episodes match them.",
            show_default=False,
        ),
    ] = None,
    lip_sync: Annotated[
        bool | None,
        typer.Option(
            "--lip-sync/--no-lip-sync",
            help="Re-draw the mouth of the one face on screen to follow the dub, in the shots "
            "where that face speaks (MuseTalk 1.5; on in the ultra preset; slow without a "
            "GPU). The picture is re-encoded.",
            show_default=False,
        ),
    ] = None,
    lip_sync_crf: Annotated[int | None, setting_option("lip_sync_crf")] = None,
    separate: Annotated[
        bool | None,
        typer.Option(
            "--separate/--no-separate",
            help="Separate speech from music with demucs (the quality preset's default), "
            "so the dub goes over the original background without the original voices.",
            show_default=False,
        ),
    ] = None,
    diarization: Annotated[str | None, setting_option("diarization")] = None,
    speakers: Annotated[int | None, setting_option("speakers")] = None,
    min_speakers: Annotated[int | None, setting_option("min_speakers")] = None,
    max_speakers: Annotated[int | None, setting_option("max_speakers")] = None,
    remote: Annotated[
        bool,
        typer.Option("--remote", help="Run on the configured backend (octavia login)."),
    ] = False,
    parallel: Annotated[
        bool,
        typer.Option(
            "--parallel",
            help="With --remote to a serve --broker: transcribe the file in chunks on several "
            "workers at once.",
        ),
    ] = False,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            help="With --remote: the server POSTs each job's state changes to this URL, "
            "signed (see the README).",
            show_default=False,
        ),
    ] = None,
    estimate: Annotated[
        bool,
        typer.Option("--estimate", help="Print the backend's cost and your balance; no run."),
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print what was made as JSON on stdout: each file's outputs, project, "
            "speakers and timing totals, and the files that failed.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan (stages, engines, models, estimated time and disk); run nothing.",
        ),
    ] = False,
) -> None:
    """Dub a video or audio file into another language."""
    from octavia_cli.pipeline import DubRequest, dub

    settings = load_settings_for(
        glossary=glossary,
        preset=preset,
        device=device,
        model=model,
        tts_engine=tts_engine,
        voice=voice,
        max_speed=max_speed,
        allow_video_stretch=allow_video_stretch,
        ducking=ducking,
        loudness=loudness,
        qa=qa,
        max_attempts=max_attempts,
        match_voices=match_voices,
        save_voices=save_voices,
        lip_sync=lip_sync,
        lip_sync_crf=lip_sync_crf,
        separation_engine=None if separate is None else ("demucs" if separate else "none"),
        diarization=diarization,
        speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
    )
    from octavia_cli.errors import InputError
    from octavia_cli.languages import normalize_language, normalize_targets
    from octavia_cli.pipeline import dub_batch, expand_inputs

    targets = normalize_targets(to)  # once, here: outputs, plans and charges see these
    source_language = normalize_language(source_language) if source_language else None
    files = expand_inputs(inputs)
    if not files:
        raise InputError("No media files in the given folders.", "Give files or folders.")
    if len(files) > 1 and output is not None and "{stem}" not in str(output):
        raise InputError(
            "With several inputs, -o must contain {stem}.",
            "For example: -o 'dubbed/{stem}.{lang}.mp3'.",
        )
    requests = [
        DubRequest(
            source=source,
            targets=targets,
            source_language=source_language,
            output=output,
            workdir=workdir,
            force=force,
            replace_audio=replace_audio,
        )
        for source in files
    ]
    if dry_run:
        from octavia_cli.cli.common import print_json
        from octavia_cli.pipeline import plan

        print_json([plan(request, settings) for request in requests])
        return
    if webhook is not None and not remote:
        raise InputError(
            "--webhook is for jobs on a server.", "Use it with --remote, or leave it out."
        )
    if parallel and not remote:
        raise InputError(
            "--parallel spreads a dub over the workers of a server.",
            "Use it with --remote (the server started with --broker).",
        )
    if remote or estimate:
        local_only = {"--device": device, "--model": model, "--workdir": workdir}
        given = [name for name, value in local_only.items() if value is not None]
        if given and remote:
            raise InputError(
                f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to local "
                "dubs only; the server uses its own settings for that.",
                "Leave it out with --remote, or dub locally.",
            )
        extra = {
            "separate": separate, "speakers": speakers, "min_speakers": min_speakers,
            "max_speakers": max_speakers, "allow_video_stretch": allow_video_stretch,
            "diarization": diarization, "tts_engine": tts_engine, "voice": voice,
            "ducking": ducking, "loudness": loudness, "replace_audio": replace_audio or None,
            "qa": qa, "max_attempts": max_attempts, "match_voices": match_voices,
            "save_voices": save_voices, "parallel": parallel or None,
            "lip_sync": lip_sync, "lip_sync_crf": lip_sync_crf,
            "glossary": glossary_terms(settings),
        }  # fmt: skip
        _dub_remote(ctx, requests, settings, estimate, max_speed, preset, extra, json_output,
                    webhook)  # fmt: skip
        return
    if len(requests) == 1:
        with state(ctx).renderer() as hook:
            result = dub(requests[0], settings, hook)
        _print_timing(ctx, result)
        _print_results(json_output, [_result_dict(requests[0].source, result)], {})
        return
    with state(ctx).renderer() as hook:
        batch = dub_batch(requests, settings, hook, _announcer(ctx))
    for dubbed in batch.done.values():
        _print_timing(ctx, dubbed)
    done = [_result_dict(source, result) for source, result in batch.done.items()]
    _print_results(json_output, done, batch.failed)
    _exit_on_failures(ctx, batch.failed, len(requests))


def _result_dict(source: Path, result) -> dict:
    return {
        "source": str(source),
        "outputs": {target: str(path) for target, path in result.outputs.items()},
        "project": str(result.project_folder),
        "report": str(result.report) if result.report else None,
        "source_language": result.source_language,
        "speakers": result.speakers,
        "timing": {target: report["totals"] for target, report in result.timing.items()},
        "checks": {
            target: {
                "checked": info["lines"],
                "retaken": info["retaken"],
                "flagged": len(info["flagged"]),
                "flagged_lines": info["flagged"],
            }
            for target, info in result.checks.items()
        },
        "notes": result.notes,
    }


def _print_results(
    json_output: bool, done: list[dict], failed: dict, skipped: list[Path] | None = None
) -> None:
    """The outputs' paths, one a line; with --json, one document for scripts."""
    if not json_output:
        for entry in done:
            for path in entry["outputs"].values():
                typer.echo(path)
        return
    from octavia_cli.cli.common import print_json

    print_json({
        "dubbed": done,
        "skipped": [str(source) for source in skipped or []],
        "failed": [
            {"source": str(source), "error": str(error), "exit_code": int(error.exit_code)}
            for source, error in failed.items()
        ],
    })  # fmt: skip


def _announcer(ctx: typer.Context):
    def announce(index: int, total: int, source: Path) -> None:
        if not state(ctx).quiet:
            state(ctx).stderr.print(f"[bold]({index}/{total})[/] {source}", highlight=False)

    return announce


def _exit_on_failures(ctx: typer.Context, failed: dict, total: int) -> None:
    """List the files of a batch that failed, and exit with the worst exit code."""
    if not failed:
        return
    from rich.markup import escape

    console = state(ctx).stderr
    console.print(f"[bold red]{len(failed)} of {total} files failed:[/]", highlight=False)
    for source, error in failed.items():
        console.print(f"  {escape(str(source))}: {escape(str(error))}", highlight=False)
    raise typer.Exit(max(int(error.exit_code) for error in failed.values()))


def _print_timing(ctx: typer.Context, result) -> None:
    """The one-screen timing summary of each language, on stderr."""
    from octavia_cli.project.layout import timing_report_path as report_path
    from octavia_cli.project.report import check_summary
    from octavia_cli.project.report import timing_summary as summary

    if state(ctx).quiet:
        return
    if result.speakers > 1:
        state(ctx).stderr.print(f"{result.speakers} speakers, each in their own voice",
                                highlight=False)  # fmt: skip
    for note in result.notes:
        state(ctx).stderr.print(f"note: {note}", highlight=False, soft_wrap=True)
    for target, report in result.timing.items():
        state(ctx).stderr.print(
            f"{summary(report)} (timing: {result.project_folder / report_path(target)})",
            highlight=False,
            soft_wrap=True,
        )
        if "checked" in report["totals"]:
            flagged = report["totals"]["flagged"]
            state(ctx).stderr.print(
                check_summary(report), style="bold red" if flagged else None,
                highlight=False, soft_wrap=True,
            )  # fmt: skip
    if result.report is not None:
        state(ctx).stderr.print(f"report: {result.report}", highlight=False, soft_wrap=True)


def _dub_remote(
    ctx: typer.Context,
    requests: list,
    settings,
    estimate_only: bool,
    max_speed,
    preset,
    extra: dict | None = None,
    json_output: bool = False,
    webhook: str | None = None,
) -> None:
    """The same dubs on the backend; results land where a local run would put them.

    Every file is uploaded and queued first (a server with several workers dubs them at
    once), then followed in turn. In a batch, a file whose outputs exist is skipped (unless
    --force) and one that fails is listed at the end while the others go on."""
    from octavia_cli.errors import OctaviaError
    from octavia_cli.remote import jobs as remote
    from octavia_cli.remote.client import Client
    from octavia_cli.remote.runs import RemoteRuns

    runs = RemoteRuns()  # a command run again re-attaches to its jobs
    first = requests[0]
    targets = first.targets  # normalised by dub_command
    options: dict = {"to": list(targets)}
    if first.source_language:
        options["from"] = first.source_language
    if max_speed is not None:
        options["max_speed"] = max_speed
    if preset is not None:
        options["preset"] = preset.value
    options.update({k: v for k, v in (extra or {}).items() if v is not None})
    batch = len(requests) > 1
    failed: dict[Path, OctaviaError] = {}
    skipped: list[Path] = []
    done: list[dict] = []
    client = Client.from_settings(settings)
    try:
        if estimate_only:
            _print_estimate(client, requests, options)
            return
        with state(ctx).renderer() as hook:
            queued = _queue_remote(ctx, client, requests, targets, options, hook, failed, skipped,
                                   webhook, runs)  # fmt: skip
            announce = _announcer(ctx)
            following = 0
            try:
                for following, (source, job_id, destinations) in enumerate(queued):
                    if batch:
                        announce(following + 1, len(queued), source)
                    try:
                        written = remote.finish(client, job_id, _by_language(destinations), hook,
                                                runs)  # fmt: skip
                        placed = {str(path): lang for lang, path in destinations.items()}
                        outputs = {placed[str(path)]: str(path) for path in written.values()}
                        done.append({"source": str(source), "outputs": outputs, "job": job_id})
                    except OctaviaError as exc:
                        if not batch:
                            raise
                        failed[source] = exc
            except KeyboardInterrupt:
                _cancel(ctx, client, [job_id for _, job_id, _ in queued[following:]], runs)
                raise
    finally:
        client.close()
    _print_results(json_output, done, failed, skipped)
    _exit_on_failures(ctx, failed, len(requests))


def _by_language(destinations: dict[str, Path]):
    """Where a job's result goes: the destination of the language the server says it is
    (a server of before results carried their language: the language in its name)."""
    from octavia_cli.remote.protocol import language_of

    return lambda result: destinations.get(language_of(result, list(destinations)) or "")


def _queue_remote(
    ctx: typer.Context, client, requests: list, targets: tuple[str, ...], options: dict,
    hook, failed: dict, skipped: list[Path], webhook: str | None = None, runs=None,
) -> list[tuple[Path, str, dict[str, Path]]]:  # fmt: skip
    """Upload and queue each file; returns (source, job id, language -> destination): the
    server says which language each result is, so nothing here predicts its name. In a
    batch, files already dubbed go to ``skipped`` and a file that fails to ``failed``."""
    from octavia_cli.errors import OctaviaError
    from octavia_cli.media.ffmpeg import probe
    from octavia_cli.pipeline import output_paths
    from octavia_cli.remote import jobs as remote

    batch = len(requests) > 1
    queued: list[tuple[Path, str, dict[str, Path]]] = []
    for request in requests:
        try:
            has_video = probe(request.source).has_video
            destinations = output_paths(replace(request, targets=targets), has_video)
            done = all(path.exists() for path in destinations.values())
            if batch and done and not request.force:
                if not state(ctx).quiet:
                    state(ctx).stderr.print(
                        f"skipped {request.source}: already dubbed (--force redoes it)",
                        highlight=False,
                    )
                skipped.append(request.source)
                continue
            for path in destinations.values():
                check_output_path(path, force=request.force)
            # -o's format (one pattern for every language): the server writes that format.
            fmt = next(iter(destinations.values())).suffix.lower() if request.output else None
            job_options = {**options, "output_format": fmt} if fmt else options
            job_id = remote.submit(client, "dub", request.source, job_options, hook, webhook, runs)
        except KeyboardInterrupt:
            _cancel(ctx, client, [job_id for _, job_id, _ in queued], runs)
            raise
        except OctaviaError as exc:
            if not batch:
                raise
            failed[request.source] = exc
            continue
        queued.append((request.source, job_id, destinations))
    return queued


def _cancel(ctx: typer.Context, client, job_ids: list[str], runs=None) -> None:
    """Cancel the jobs of an interrupted remote dub (what cannot be reached stays queued),
    and say so: running the command again starts them over on the server (Ctrl-C is a
    decision, unlike a client that died: that one's next run re-attaches)."""
    from contextlib import suppress

    from octavia_cli.errors import OctaviaError

    cancelled = 0
    for job_id in job_ids:
        with suppress(OctaviaError):
            client.cancel(job_id)
            cancelled += 1
            if runs is not None:
                runs.forget(job_id)
    if cancelled:
        state(ctx).stderr.print(
            f"note: {cancelled} unfinished job(s) on the server cancelled; running the same "
            "command again starts them over (files already downloaded are skipped).",
            highlight=False,
            soft_wrap=True,
        )


def _print_estimate(client, requests: list, options: dict) -> None:
    """Each file's cost (in a batch), the total and the balance; exit 1 if it is short."""
    from octavia_cli.remote.jobs import estimate

    total, enough, balance = 0.0, True, None
    for request in requests:
        quote = estimate(client, "dub", request.source, options)
        total += quote["cost_minutes"]
        enough = enough and quote["enough"]
        balance = quote["balance_minutes"]
        if len(requests) > 1:
            typer.echo(f"{request.source}: {quote['cost_minutes']:.2f} min")
    enough = enough and (balance is None or total <= balance + 1e-9)
    typer.echo(
        f"cost: {total:.2f} min; balance: "
        + ("unlimited (local server)" if balance is None else f"{balance:.2f} min")
    )
    if not enough:
        raise typer.Exit(1)
