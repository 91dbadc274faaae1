"""The phases of a dub spread over several workers (``dub --remote --parallel``).

A queue (``server/celery``) runs these in order, each phase on whichever worker takes it,
all on one project folder that the workers share:

1. :func:`transcribe_windows`: every check of a dub (:func:`prepare`), then extract and
   separate; returns the windows of the speech, each a task of its own;
2. :func:`transcribe_window`: one window's words, written beside the project;
3. :func:`assemble`: the windows stitched into the transcript (the same lines a single
   run makes);
4. :func:`prepare_voices`: speakers, translations, the voices cloned and the paces
   measured (they need the whole file); returns the lines to speak, in batches;
5. :func:`synthesize_lines`: some lines of one language spoken into their clips;
6. :func:`gather_lines`: the clips gathered into the project; then the dub itself
   (:func:`dub`) runs what is left, fit, mix and mux, every finished stage skipped.

Only phases 1, 3, 4 and 6 write the project (one at a time, under its lock); the chunk
phases write files of their own that the next phase gathers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from octavia_cli.config import Settings
from octavia_cli.errors import InputError
from octavia_cli.files import atomic_write_bytes
from octavia_cli.pipeline.dub import DubRequest, prepare
from octavia_cli.pipeline.runner import Runner
from octavia_cli.pipeline.steps import asr_options_hash, prepare_transcript, translate_project
from octavia_cli.progress import ProgressHook
from octavia_cli.project.manifest import Project, default_project_folder
from octavia_cli.project.records import Clip, Transcript, Word
from octavia_cli.stages import transcribe as transcribe_stage
from octavia_cli.stages.extract import extract
from octavia_cli.stages.separate import separate
from octavia_cli.stages.synthesize import synthesize


def _project(request: DubRequest) -> Project:
    return Project.open(default_project_folder(request.source, request.workdir), request.source)


def transcribe_windows(
    request: DubRequest, settings: Settings, runner: Runner, hook: ProgressHook, window_s: float
) -> list[tuple[float, float]]:
    """Phase 1. Check the dub as a single run would, before any work; extract and separate;
    return the ``(start_s, end_s)`` windows to transcribe.

    Raises:
        OctaviaError: the dub would be refused (a bad pair, a missing model...), or the
            spoken language is not given (windows are transcribed apart: none may guess).
    """
    if not request.source_language:
        raise InputError("A --parallel dub needs the spoken language.", "Give --from LANG.")
    prepare(request, settings, runner)
    project = _project(request)
    with project.locked():
        extract(project, request.source, hook)
        separator = runner.separator(settings)
        try:
            separate(project, separator, hook)
        finally:
            runner.release(separator)
    return transcribe_stage.windows(project, window_s)


def chunk_name(index: int) -> str:
    return f"chunks/{index:04d}.json"


def transcribe_window(
    request: DubRequest, settings: Settings, runner: Runner, index: int, start_s: float,
    end_s: float,
) -> str:  # fmt: skip
    """Phase 2. The words of one window, written to the project's ``chunks/`` folder (the
    project itself is not written); returns the file's name."""
    assert request.source_language is not None
    project = Project.load(default_project_folder(request.source, request.workdir))
    engine = runner.asr(settings)
    try:
        piece = transcribe_stage.recognize_window(
            engine, transcribe_stage.read_window(project, start_s, end_s), start_s,
            request.source_language,
        )  # fmt: skip
    finally:
        runner.release(engine)  # parked or closed: the next task may be another stage
    data = {"words": [asdict(w) for w in piece["words"]], "regions": piece["regions"],
            "speech": piece["speech"], "sound": piece["sound"]}  # fmt: skip
    atomic_write_bytes(project.path(chunk_name(index)), json.dumps(data).encode())
    return chunk_name(index)


def assemble(
    request: DubRequest, settings: Settings, runner: Runner, indexes: list[int]
) -> Transcript:
    """Phase 3. Stitch the windows' words into the transcript and record the stage."""
    assert request.source_language is not None
    began = time.monotonic()
    project = _project(request)
    language = request.source_language
    with project.locked():
        engine = runner.asr(settings)  # its name, for the stage record: nothing is loaded
        inputs = transcribe_stage.inputs_hash(project, engine, language,
                                              asr_options_hash(settings))  # fmt: skip
        pieces = []
        for index in sorted(indexes):
            data = json.loads(project.path(chunk_name(index)).read_text())
            data["words"] = [Word(**w) for w in data["words"]]
            pieces.append(data)
        total = project.stages["extract"].info.duration_s or 0.0
        return transcribe_stage.assemble(project, engine, inputs, pieces, (language, 1.0), True,
                                         total, time.monotonic() - began)  # fmt: skip


def prepare_voices(
    request: DubRequest, settings: Settings, runner: Runner, hook: ProgressHook
) -> list[str]:
    """Phase 4. Speakers and translations (they need the whole file), each language's voices
    cloned and paces measured once; returns the ids of the lines to speak."""
    project = _project(request)
    with project.locked():
        prepare_transcript(project, request.source, settings, request.source_language, hook,
                           runner, speakers=True)  # fmt: skip
        translate_project(project, request.targets, settings, hook, runner)
        for target in request.targets:
            engine = runner.speech(settings, target)
            try:
                synthesize(project, target, engine, settings, hook, only=set())
            finally:
                runner.release(engine)
        project.save()
    return [segment.id for segment in project.require_transcript().segments]


def speech_chunk_name(target: str, index: int) -> str:
    return f"chunks/synth-{target}-{index:04d}.json"


def synthesize_lines(
    request: DubRequest, settings: Settings, runner: Runner, target: str, ids: list[str],
    index: int,
) -> str:  # fmt: skip
    """Phase 5. Speak the lines ``ids`` of ``target`` into their clips; their records go to
    the project's ``chunks/`` folder (one process writes the project). Returns the file."""
    project = Project.load(default_project_folder(request.source, request.workdir))
    engine = runner.speech(settings, target)
    try:
        made = synthesize(project, target, engine, settings, lambda event: None, only=set(ids))
    finally:
        runner.release(engine)
    name = speech_chunk_name(target, index)
    data = {line: clip.to_dict() for line, clip in made.items()}
    atomic_write_bytes(project.path(name), json.dumps(data).encode())
    return name


def gather_lines(request: DubRequest, names: list[str]) -> None:
    """Phase 6. Gather the clips of every speech chunk into the project; the dub run after
    it (:func:`dub`) skips every stage done so far, so what runs is fit, mix and mux."""
    project = _project(request)
    with project.locked():
        segments = {s.id: s for s in project.require_transcript().segments}
        for name in names:
            target = Path(name).name.split("-")[1]
            for line, data in json.loads(project.path(name).read_text()).items():
                segments[line].clips[target] = Clip.from_dict(data)
        project.save()
