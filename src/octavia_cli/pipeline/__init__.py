"""The one composition root: every run of Octavia's stages, for the CLI and the server.

A run is checked in full before any work (:func:`prepare`, which ``--dry-run`` reports),
then its stages run with engines owned by a :class:`Runner`. This package's modules:

- ``runner``: engine lifetimes (built once, kept by batches and workers, one per kind);
- ``dub``: requests, checks (``prepare`` and ``plan``), the dub and batches;
- ``subtitles``: subtitles from a transcript;
- ``steps``: what those share (projects, transcripts, voices, stage options);
- ``checking``: every line fitted, heard and spoken again while it fails (best of N), and
  ``octavia check``;
- ``doctor``: what this machine can run.
"""

from octavia_cli.pipeline.checking import check_project, fit_and_check
from octavia_cli.pipeline.dub import (
    BatchResult,
    DubPlan,
    DubRequest,
    DubResult,
    dub,
    dub_batch,
    expand_inputs,
    output_paths,
    plan,
    prepare,
)
from octavia_cli.pipeline.runner import Runner, runner_for
from octavia_cli.pipeline.steps import (
    choose_voice,
    fit_options,
    open_project,
    prepare_transcript,
    translate_options,
    translate_project,
)
from octavia_cli.pipeline.subtitles import (
    SubtitleRequest,
    SubtitleResult,
    subtitle_format,
    subtitle_outputs,
    subtitles,
)

__all__ = [
    "BatchResult",
    "DubPlan",
    "DubRequest",
    "DubResult",
    "Runner",
    "SubtitleRequest",
    "SubtitleResult",
    "check_project",
    "choose_voice",
    "dub",
    "dub_batch",
    "expand_inputs",
    "fit_and_check",
    "fit_options",
    "open_project",
    "output_paths",
    "plan",
    "prepare",
    "prepare_transcript",
    "runner_for",
    "subtitle_format",
    "subtitle_outputs",
    "subtitles",
    "translate_options",
    "translate_project",
]
