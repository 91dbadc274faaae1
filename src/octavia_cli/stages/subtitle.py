"""Write subtitles: a file in one of pysubs2's formats, a soft track added to a copy of the
video, or subtitles rendered into the picture.

Every file is written atomically and claimed in the project's outputs before it takes its
name, as the dub's outputs are, so a re-run may replace what it wrote itself but never a
file of the user's without ``--force``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from octavia_cli.config import SubtitleSettings
from octavia_cli.files import atomic_path, atomic_write_bytes, remove_stale_temporaries
from octavia_cli.languages import alpha3, language_name
from octavia_cli.media.ffmpeg import SUBTITLE_CODECS, burn_subtitles, embed_subtitles
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.manifest import OutputRecord, Project
from octavia_cli.project.outputs import check_output
from octavia_cli.text.cues import (
    Cue,
    SubtitleFormat,
    SubtitleMode,
    SubtitleOptions,
    render,
    source_cues,
    translated_cues,
)

logger = logging.getLogger(__name__)

SUBTITLE_DIR = "subtitles"


@dataclass(frozen=True)
class Track:
    """The cues of one language, and whether they are the spoken language's."""

    language: str
    cues: list[Cue]
    translated: bool

    @property
    def title(self) -> str:
        name = language_name(self.language)
        return f"{name} (translated by Octavia)" if self.translated else name


def options_from(settings: SubtitleSettings) -> SubtitleOptions:
    return SubtitleOptions(
        max_line_chars=settings.max_line_chars,
        max_lines=settings.max_lines,
        max_cps=settings.max_cps,
        min_duration_s=settings.min_duration_s,
        max_duration_s=settings.max_duration_s,
        min_gap_s=settings.min_gap_s,
        max_pause_s=settings.max_pause_s,
    )


def build_track(project: Project, language: str, options: SubtitleOptions) -> Track:
    """The cues for ``language``: the spoken one from word times, else its translation."""
    transcript = project.require_transcript()
    if language == transcript.language:
        track = Track(language, source_cues(transcript.segments, language, options), False)
    else:
        track = Track(language, translated_cues(transcript.segments, language, options), True)
    fast = sum(1 for cue in track.cues if cue.cps > options.max_cps + 0.01)
    if fast:
        logger.warning(
            "%d of %d %s cues read faster than %g characters/s: the speech outruns the reading "
            "speed even with cues moved into the pauses",
            fast,
            len(track.cues),
            language_name(language),
            options.max_cps,
        )
    return track


def write_file(
    project: Project, track: Track, fmt: SubtitleFormat, output: Path, force: bool
) -> Path:
    text = render(track.cues, fmt)
    _claim_and_write(project, output, force, lambda tmp: tmp.write_bytes(text.encode("utf-8")))
    return output


def write_embedded(
    project: Project,
    source: Path,
    tracks: list[Track],
    fmt: SubtitleFormat,
    output: Path,
    force: bool,
) -> Path:
    """A copy of ``source`` with one soft subtitle track per language, tagged with it."""
    # mp4/mov hold mov_text and webm holds WebVTT (ffmpeg converts from SRT/VTT); Matroska
    # keeps ASS styling when that is the format asked for, else SRT.
    suffix = (
        ".ass"
        if fmt is SubtitleFormat.ASS and output.suffix.lower() not in (SUBTITLE_CODECS)
        else (".vtt" if output.suffix.lower() == ".webm" else ".srt")
    )
    files = []
    for track in tracks:
        path = project.path(f"{SUBTITLE_DIR}/{track.language}{suffix}")
        atomic_write_bytes(path, render(track.cues, SubtitleFormat(suffix[1:])).encode("utf-8"))
        files.append((path, alpha3(track.language, bibliographic=True), track.title))
    _claim_and_write(project, output, force, lambda tmp: embed_subtitles(source, files, tmp))
    return output


def write_burnt_in(project: Project, source: Path, track: Track, output: Path, force: bool) -> Path:
    """A copy of ``source`` with ``track`` rendered into the picture, styled for its size."""
    assert project.media is not None
    size = (project.media.video_width, project.media.video_height)
    styled = project.path(f"{SUBTITLE_DIR}/{track.language}.burn-in.ass")
    atomic_write_bytes(styled, render(track.cues, SubtitleFormat.ASS, size).encode("utf-8"))
    _claim_and_write(project, output, force, lambda tmp: burn_subtitles(source, styled, tmp))
    return output


def _claim_and_write(
    project: Project, output: Path, force: bool, write: Callable[[Path], object]
) -> None:
    check_output(project, output, Path(project.source_path), force)
    remove_stale_temporaries(output)
    with atomic_path(output) as tmp:
        write(tmp)
        # Claimed before the rename: a run killed right after it still owns the file.
        project.outputs[str(output.resolve())] = OutputRecord.of(tmp, output)
        project.save()


def write_tracks(
    project: Project,
    source: Path,
    tracks: list[Track],
    mode: SubtitleMode,
    fmt: SubtitleFormat,
    outputs: dict[str, Path],
    force: bool,
    hook: ProgressHook,
) -> list[Path]:
    """Write every output of a ``subtitles`` run; ``outputs`` maps a language (or ``*`` for
    the one embedded video) to its path."""
    reporter = StageReporter(hook, "subtitles")
    reporter.started(total=len(outputs), message=mode.value)
    written: list[Path] = []
    if mode is SubtitleMode.EMBED:
        written.append(write_embedded(project, source, tracks, fmt, outputs["*"], force))
    else:
        for track in tracks:
            output = outputs[track.language]
            if mode is SubtitleMode.BURN_IN:
                written.append(write_burnt_in(project, source, track, output, force))
            else:
                written.append(write_file(project, track, fmt, output, force))
            reporter.advance(len(written), len(outputs))
    reporter.done(", ".join(path.name for path in written))
    return written
