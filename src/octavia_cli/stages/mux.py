"""Write the finished dub: the video streams copied bit for bit with the new audio track
tagged with its language, or, for audio-only input, the mix encoded in the input's format."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from octavia_cli.files import atomic_path, remove_stale_temporaries
from octavia_cli.languages import alpha3, language_name
from octavia_cli.media.ffmpeg import (
    VIDEO_AUDIO_CODECS,
    encode_audio,
    mux_stretched_video,
    mux_video,
)
from octavia_cli.media.timeline import TimeMap
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import mix_path
from octavia_cli.project.manifest import OutputRecord, Project
from octavia_cli.project.outputs import check_output
from octavia_cli.project.records import MuxInfo, stable_hash

logger = logging.getLogger(__name__)


Picture = tuple[str, int]  # a picture file relative to the project, and its rotation


def stage_name(target: str) -> str:
    return f"mux:{target}"


def mux(
    project: Project, source: Path, target: str, output: Path, force: bool, hook: ProgressHook,
    *, replace_audio: bool = False, picture: Picture | None = None,
) -> Path:  # fmt: skip
    """``picture``: the lip-synced picture to write in place of the source's (a video
    stream alone, relative to the project, and the rotation to show it at)."""
    reporter = StageReporter(hook, stage_name(target))
    assert project.media is not None
    key = str(output.resolve())
    picture_hash = None
    if picture is not None:
        picture_hash = project.stages[f"lipsync:{target}"].inputs_hash
    inputs = stable_hash(project.stages[f"mix:{target}"].inputs_hash, key, replace_audio,
                         *([picture_hash] if picture_hash else []))  # fmt: skip
    record = project.outputs.get(key)
    if project.is_current(stage_name(target), inputs) and record and record.matches(output):
        reporter.skipped()
        return output
    check_output(project, output, source, force)
    began = time.monotonic()
    reporter.started(total=1)
    remove_stale_temporaries(output)
    with atomic_path(output) as tmp:
        timeline = TimeMap.from_list(project.stages[f"fit:{target}"].info.stretches)
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
                picture=None if picture is None else (project.path(picture[0]), picture[1]),
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
    project.mark_done(stage_name(target), inputs, time.monotonic() - began, MuxInfo(key))
    reporter.done(str(output))
    return output
