"""Speak each translated line into its own clip.

A clip is keyed by the hash of its text, engine, voice and language; a line whose key is
unchanged and whose file exists is not synthesized again. So editing one translation in
``project.json`` re-synthesizes that line only, and a killed run keeps every clip it
finished (the manifest is saved as clips complete).
"""

from __future__ import annotations

import time

from octavia_cli.config import Settings
from octavia_cli.engines.tts import SpeechEngine, check_language, get_speech_engine
from octavia_cli.errors import StageError
from octavia_cli.files import atomic_path
from octavia_cli.model import Clip, stable_hash
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project import Project

SAVE_EVERY_S = 2.0  # how often progress is written to the manifest during the stage


def stage_name(target: str) -> str:
    return f"synthesize:{target}"


def requested_voice(settings: Settings, engine: SpeechEngine) -> str:
    """``tts.voice`` if it is meant for ``engine`` (a .onnx file is a Piper voice)."""
    voice = settings.tts.voice
    if engine.name == "xtts":
        return voice
    is_piper_voice = voice.endswith(".onnx")
    return voice if voice and (is_piper_voice == (engine.name == "piper")) else ""


def choose_voice(settings: Settings, target: str) -> tuple[SpeechEngine, str]:
    """The engine and voice that will speak ``target``; raises if none can."""
    engine = get_speech_engine(settings, target)
    check_language(engine, target)
    return engine, engine.voice_for(target, requested_voice(settings, engine))


def synthesize(project: Project, target: str, settings: Settings, hook: ProgressHook) -> None:
    reporter = StageReporter(hook, stage_name(target))
    transcript = project.require_transcript()
    engine, voice = choose_voice(settings, target)
    jobs = []
    for segment in transcript.segments:
        translation = segment.translations.get(target)
        if translation is None:
            raise StageError(
                f"Line {segment.id} has no {target} translation.", "Run the translate stage first."
            )
        key = stable_hash(translation.text, engine.name, voice, target)
        clip = segment.clips.get(target)
        if clip is None or clip.key != key or (clip.path and not project.path(clip.path).exists()):
            jobs.append((segment, translation.text, key))
    if not jobs:
        reporter.skipped()
        return
    began = last_save = time.monotonic()
    reporter.started(total=len(jobs))
    for done, (segment, text, key) in enumerate(jobs, start=1):
        relative = f"clips/{target}/{segment.id}.wav"
        if text.strip():
            with atomic_path(project.path(relative)) as tmp:
                result = engine.synthesize(text, target, voice, tmp)
            duration, rate = result.duration_s, result.sample_rate_hz
        else:  # a line emptied by hand: nothing to say
            relative, duration, rate = "", 0.0, 0
        segment.clips[target] = Clip(relative, key, engine.name, voice, round(duration, 3), rate)
        reporter.advance(done, len(jobs))
        if time.monotonic() - last_save > SAVE_EVERY_S:
            project.save()
            last_save = time.monotonic()
    inputs = stable_hash([s.clips[target].key for s in transcript.segments])
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        synthesized=len(jobs),
        engine=engine.name,
        voice=voice,
    )
    reporter.done(f"{len(jobs)} clips")
