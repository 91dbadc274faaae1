"""Write the finished dub: the video streams copied bit for bit with the new audio track
tagged with its language, or, for audio-only input, the mix encoded in the input's format."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from octavia_cli.errors import InputError
from octavia_cli.files import (
    atomic_path,
    check_name_length,
    check_output_path,
    remove_stale_temporaries,
)
from octavia_cli.languages import alpha3, language_name
from octavia_cli.media.ffmpeg import (
    AUDIO_FORMATS,
    VIDEO_AUDIO_CODECS,
    encode_audio,
    mux_stretched_video,
    mux_video,
)
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.manifest import OutputRecord, Project
from octavia_cli.project.records import stable_hash
from octavia_cli.stages.mix import mix_path

logger = logging.getLogger(__name__)


def stage_name(target: str) -> str:
    return f"mux:{target}"


def default_output(source: Path, target: str, has_video: bool) -> Path:
    """``talk.mp4`` -> ``talk.es.mp4`` beside the input (audio-only keeps its format)."""
    suffix = source.suffix.lower()
    if not has_video and suffix not in AUDIO_FORMATS:
        suffix = ".wav"
    return source.with_name(f"{source.stem}.{target}{suffix}")


def output_name(source: Path, target: str, has_video: bool, suffix: str | None = None) -> str:
    """The file name of ``source``'s dub into ``target`` (a server's result), in the format
    of ``suffix`` when given (checked), else the default one."""
    name = default_output(source, target, has_video)
    if suffix:
        name = name.with_suffix(suffix.lower())
        check_output_format(name, has_video)
    return name.name


def check_output_format(output: Path, has_video: bool) -> None:
    """Raise unless Octavia can write a dub in ``output``'s format: a video container for a
    video (or an audio format: the dub alone), an audio format for audio."""
    suffix = output.suffix.lower()
    if suffix in AUDIO_FORMATS or (has_video and suffix in VIDEO_AUDIO_CODECS):
        return
    audio = " ".join(sorted(AUDIO_FORMATS))
    video = " ".join(sorted(VIDEO_AUDIO_CODECS))
    raise InputError(
        f"Octavia cannot write a dub as {output.name}"
        + ("" if suffix else " (no extension)")
        + ".",
        f"Name the output with one of: {video} {audio}."
        if has_video
        else f"Name the output with an audio format: {audio}.",
    )


def check_output(project: Project, output: Path, source: Path, force: bool) -> None:
    """Raise unless ``output`` may be written: never the input, never a file of the user's
    without ``--force`` (a file this project wrote before, unchanged, may be replaced)."""
    check_name_length(output)
    if output.resolve() == source.resolve():
        raise InputError("The output would overwrite the input.", "Choose another -o.")
    owned = project.outputs.get(str(output.resolve()))
    if owned is not None and owned.matches(output):
        return
    check_output_path(output, force=force)


def mux(
    project: Project, source: Path, target: str, output: Path, force: bool, hook: ProgressHook,
    *, replace_audio: bool = False,
) -> Path:  # fmt: skip
    reporter = StageReporter(hook, stage_name(target))
    assert project.media is not None
    key = str(output.resolve())
    inputs = stable_hash(project.stages[f"mix:{target}"].inputs_hash, key, replace_audio)
    record = project.outputs.get(key)
    if project.is_current(stage_name(target), inputs) and record and record.matches(output):
        reporter.skipped()
        return output
    check_output(project, output, source, force)
    began = time.monotonic()
    reporter.started(total=1)
    remove_stale_temporaries(output)
    with atomic_path(output) as tmp:
        from octavia_cli.media.timeline import TimeMap

        timeline = TimeMap.from_list(project.stages[f"fit:{target}"].info.get("stretches"))
        # A video's dub goes back into a video, unless -o names an audio format.
        video = project.media.has_video and output.suffix.lower() in VIDEO_AUDIO_CODECS
        if video and timeline.stretches:
            logger.warning(
                "the picture is slowed under %d line(s) (+%.2f s): it is re-encoded, and "
                "subtitle tracks and chapters of the input are left out",
                len(timeline.stretches), timeline.added_s,
            )  # fmt: skip
            mux_stretched_video(
                source,
                project.path(mix_path(target)),
                tmp,
                timeline.pieces(project.media.output_duration_s),
                language_iso639_2=alpha3(target, bibliographic=True),
                title=f"{language_name(target)} (dubbed by Octavia)",
                keep_original_audio=not replace_audio,
            )
        elif video:
            mux_video(
                source,
                project.path(mix_path(target)),
                tmp,
                language_iso639_2=alpha3(target, bibliographic=True),
                title=f"{language_name(target)} (dubbed by Octavia)",
                keep_original_audio=not replace_audio,
                duration_s=project.media.output_duration_s if project.media.truncated else None,
            )
        else:
            encode_audio(
                project.path(mix_path(target)),
                tmp,
                language_iso639_2=alpha3(target, bibliographic=True),
            )
        # Claim the file before it takes its name, so a run killed right after the rename
        # still knows the output is its own.
        project.outputs[key] = OutputRecord.of(tmp, output)
        project.save()
    project.mark_done(stage_name(target), inputs, time.monotonic() - began, output=key)
    reporter.done(str(output))
    return output
