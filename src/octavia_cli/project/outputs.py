"""Where a project's outputs go and when one may be written: the default names beside the
input, the formats a dub can be written in, and the rule that a user's file is never
replaced without ``--force`` (a file this project wrote, unchanged, may be)."""

from __future__ import annotations

from pathlib import Path

from octavia_cli.errors import InputError
from octavia_cli.files import check_name_length, check_output_path
from octavia_cli.media.ffmpeg import AUDIO_FORMATS, VIDEO_AUDIO_CODECS
from octavia_cli.project.manifest import Project


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
