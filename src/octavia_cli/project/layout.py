"""Every path inside a project folder, and the queries about its speech files.

Stages write and read these; no stage imports another for a file name. The names are part
of the project folder's format (``project.json`` refers to them).
"""

from __future__ import annotations

from pathlib import Path

from octavia_cli.project.manifest import Project

SOURCE_WAV = "audio/source.wav"  # the source's audio at its own rate and layout (extract)
ASR_WAV = "audio/asr-16k.wav"  # 16 kHz mono, for recognition (extract)
ASR_SAMPLE_RATE_HZ = 16_000
VOCALS_WAV = "audio/vocals.wav"  # separate: the speech at the source's rate and layout
BACKGROUND_WAV = "audio/background.wav"  # separate: everything but the speech
VOCALS_16K_WAV = "audio/vocals-16k.wav"  # separate: the speech at 16 kHz mono
SEPARATE_STAGE = "separate"


def is_separated(project: Project) -> bool:
    return SEPARATE_STAGE in project.stages and project.path(BACKGROUND_WAV).exists()


def speech_16k(project: Project) -> Path:
    """The 16 kHz mono audio that recognition and diarization listen to."""
    return project.path(VOCALS_16K_WAV if is_separated(project) else ASR_WAV)


def speech_audio(project: Project) -> Path:
    """Speech at the source's rate, for voice references."""
    return project.path(VOCALS_WAV if is_separated(project) else SOURCE_WAV)


def speech_inputs(project: Project) -> str:
    """What the speech audio was made from (part of the later stages' inputs hashes)."""
    record = project.stages.get(SEPARATE_STAGE)
    return record.inputs_hash if record is not None else ""


def mix_path(target: str) -> str:
    """The finished dub's audio for ``target`` (mix), muxed into the output."""
    return f"mix/dub.{target}.wav"


def timing_report_path(target: str) -> str:
    """How each line of ``target`` was fitted (fit), as JSON."""
    return f"report/timing.{target}.json"
