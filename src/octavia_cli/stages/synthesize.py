"""Speak each translated line into its own clip.

A clip is keyed by the hash of its text, engine, voice and language; a line whose key is
unchanged and whose file exists is not synthesized again. So editing one translation in
``project.json`` re-synthesizes that line only, and a killed run keeps every clip it
finished (the manifest is saved as clips complete).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.engines.tts.base import SpeechEngine, check_language
from octavia_cli.engines.tts.espeak import EspeakEngine
from octavia_cli.errors import InputError, StageError
from octavia_cli.files import atomic_path
from octavia_cli.media.audio import read_audio, to_channels, trim_silence, write_wav
from octavia_cli.progress import ProgressHook, StageReporter
from octavia_cli.project.layout import speech_audio, speech_inputs
from octavia_cli.project.manifest import Project
from octavia_cli.project.records import Clip, SynthesizeInfo, stable_hash
from octavia_cli.workers import in_order

SAVE_EVERY_S = 2.0  # how often progress is written to the manifest during the stage


def stage_name(target: str) -> str:
    return f"synthesize:{target}"


def requested_voice(settings: Settings, engine: SpeechEngine) -> str:
    """``tts.voice`` if it is meant for ``engine`` (a .onnx file is a Piper voice)."""
    voice = settings.tts.voice
    if "=" in voice:
        return ""  # per-speaker voices (S1=anna): the stage applies them
    if engine.name == "xtts":
        return stored_voice(settings, voice)
    is_piper_voice = voice.endswith(".onnx")
    return voice if voice and (is_piper_voice == (engine.name == "piper")) else ""


MAX_TTS_SPEED = 1.25  # how far the engine's own rate control is pushed before stretching
CLONE_REFERENCE_S = (6.0, 12.0)  # how much of a speaker's speech an automatic clone uses


def voice_assignments(settings: Settings) -> dict[str, str]:
    """``tts.voice`` as speaker -> voice: ``NAME`` for everyone, or ``S1=anna,S2=bob``."""
    voice = settings.tts.voice.strip()
    if "=" not in voice:
        return {"*": voice}
    pairs = {}
    for item in voice.split(","):
        speaker, _, name = item.partition("=")
        if not speaker.strip() or not name.strip():
            raise InputError(f"'{item}' is not SPEAKER=VOICE.", "For example: --voice S1=anna")
        pairs[speaker.strip()] = name.strip()
    return pairs


def reference_spans(project: Project, speaker: str) -> list[list[float]]:
    """Where ``speaker``'s voice is cloned from: the spans the diarize stage chose (or a
    person set) in the speaker list, else their longest lines, 6-12 s in all."""
    entry = project.speaker(speaker)
    if entry is not None and entry.reference:
        return entry.reference
    transcript = project.require_transcript()
    lines = sorted(
        (s for s in transcript.segments if project.voice_of(s.speaker) == speaker),
        key=lambda s: s.end_s - s.start_s,
        reverse=True,
    )
    spans, total = [], 0.0
    for line in lines:
        if total >= CLONE_REFERENCE_S[1]:
            break
        take = min(line.end_s - line.start_s, CLONE_REFERENCE_S[1] - total)
        spans.append([line.start_s, line.start_s + take])
        total += take
    return spans


def library(settings: Settings) -> Any:
    """The voice library the settings name (``tts.voice_library``; default the user's)."""
    from octavia_cli.models.voices import library_for

    return library_for(settings)


def stored_voice(settings: Settings, name: str) -> str:
    """How the engine is given the stored voice ``name``: its name in the user's library,
    or its folder in the library ``tts.voice_library`` names (a server's key's own)."""
    if not name or not settings.tts.voice_library or os.sep in name:
        return name
    return str(library(settings).folder_of(name))


def _speaker_audio_16k(project: Project, speaker: str) -> Any:
    """``speaker``'s reference speech from the source, 16 kHz mono."""
    import numpy as np
    import soundfile

    from octavia_cli.media.audio import resample

    source = str(speech_audio(project))
    rate = soundfile.info(source).samplerate
    pieces = []
    for start, end in reference_spans(project, speaker):
        audio, _ = soundfile.read(source, start=round(start * rate), stop=round(end * rate),
                                  dtype="float32", always_2d=True)  # fmt: skip
        pieces.append(audio.mean(axis=1))
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return resample(joined[None, :], rate, 16_000)[0] if rate != 16_000 else joined


def _embedding_or_none(project: Project, speaker: str) -> Any:
    """``speaker``'s voice embedding; None without the encoder's weights or enough speech."""
    from octavia_cli.engines.voice_match import voice_embedding
    from octavia_cli.errors import MissingDependencyError

    try:
        return voice_embedding(_speaker_audio_16k(project, speaker))
    except MissingDependencyError:
        return None


# (project folder, speaker, what their reference is, the library, its voices, threshold)
# -> the match: a dub's languages and retakes ask again; the answer is worked out once.
_MATCHES: dict[tuple, tuple[str, float] | None] = {}


def match_speaker(
    project: Project, speaker: str, settings: Settings, stored: dict[str, Any]
) -> tuple[str, float] | None:
    """The stored voice whose person ``speaker`` is (its name and cosine similarity),
    if one reaches ``tts.match_threshold``."""
    from octavia_cli.engines.voice_match import best_match

    if not stored:
        return None
    key = (str(project.folder), speaker, stable_hash(reference_spans(project, speaker),
           speech_inputs(project)), settings.tts.voice_library, tuple(sorted(stored)),
           settings.tts.match_threshold)  # fmt: skip
    if key not in _MATCHES:
        embedding = _embedding_or_none(project, speaker)
        _MATCHES[key] = (
            None if embedding is None
            else best_match(embedding, stored, settings.tts.match_threshold)
        )  # fmt: skip
    return _MATCHES[key]


def save_speaker_voice(
    project: Project, engine: SpeechEngine, speaker: str, conditioning: str, settings: Settings
) -> str | None:
    """Store a speaker the dub cloned in the voice library (``tts.save_voices``), named
    ``STEM-LABEL`` (the user renames it with ``octavia voices rename``); returns the name,
    or None if a voice of that name is there (it is not replaced)."""
    import re

    import torch

    from octavia_cli.models.voices import VoiceProfile

    entry = project.speaker(speaker)
    label = entry.label if entry is not None else speaker
    stem = Path(project.source_path).stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stem}-{label}").strip("-.")[:64] or speaker
    if not name[0].isalnum():
        name = f"v{name}"[:64]
    voices = library(settings)
    if voices.exists(name):
        return None
    reference = Path(conditioning).with_suffix(".reference.wav")
    embedding = _embedding_or_none(project, speaker)
    profile = VoiceProfile(name, engine.name, getattr(engine, "model_spec", ""),
                           source=f"{Path(project.source_path).name} {label}")  # fmt: skip
    cond = torch.load(conditioning, map_location="cpu", weights_only=True)
    voices.save(profile, cond, reference=reference if reference.exists() else None,
                embedding=embedding)  # fmt: skip
    return name


def auto_clone(project: Project, engine: SpeechEngine, speaker: str) -> str:
    """Clone ``speaker`` from their own speech in the source (the separated vocals when
    there are any), at their reference spans; computed once per speaker and reference."""
    import numpy as np
    import soundfile
    import torch

    spans = reference_spans(project, speaker)
    tag = stable_hash(spans, speech_inputs(project))[:8]
    conditioning = project.path(f"voices/{speaker}.{tag}.pt")
    if conditioning.exists():
        return str(conditioning)
    source = str(speech_audio(project))
    rate = soundfile.info(source).samplerate
    pieces, total = [], 0.0
    for start, end in spans:
        audio, _ = soundfile.read(
            source, start=round(start * rate), stop=round(end * rate), dtype="float32",
            always_2d=True,
        )  # fmt: skip
        pieces += [audio.mean(axis=1), np.zeros(int(0.2 * rate), np.float32)]
        total += len(audio) / rate
    if total < 2.0:
        raise StageError(
            f"Speaker {speaker} speaks for {total:.1f} s only: too little to clone a voice.",
            f"Give them a stored voice: --voice {speaker}=NAME (octavia clone-voice).",
        )
    reference = conditioning.with_suffix(".reference.wav")
    write_wav(reference, np.concatenate(pieces)[None, :], rate)
    torch.save(engine.clone([reference]), conditioning)  # type: ignore[attr-defined]
    return str(conditioning)


def speaker_voices(
    project: Project, target: str, settings: Settings, engine: SpeechEngine
) -> tuple[SpeechEngine, dict[str, str]]:
    """The engine and the voice of each speaker who voices lines (a merged speaker is voiced
    by the first of its group): ``--voice SPEAKER=NAME`` (by id or label), else the voice
    set in the project's speaker list, else ``--voice NAME`` for everyone, else a clone of
    the speaker's own speech (XTTS) or a distinct voice chosen by their pitch. Two speakers
    never get the same voice unless asked to."""
    import logging

    transcript = project.require_transcript()
    groups = project.speaker_groups()
    speakers = list(dict.fromkeys(groups.get(s.speaker, s.speaker) for s in transcript.segments))
    assignments = voice_assignments(settings)
    requested: dict[str, str] = {}
    for speaker_id in speakers:
        entry = project.speaker(speaker_id)
        label = entry.label if entry is not None else speaker_id
        requested[speaker_id] = (
            assignments.get(speaker_id)
            or assignments.get(label)
            or (entry.voice if entry is not None else "")
            or ""
        )
    everyone = assignments.get("*", "")
    voices: dict[str, str] = {}
    if engine.name == "xtts":
        for speaker_id, voice in _xtts_voices(project, target, settings, engine, speakers,
                                              requested, everyone).items():  # fmt: skip
            voices[speaker_id] = voice
        return engine, voices
    if (len(project.speakers) <= 1 and len(speakers) == 1) or everyone:  # one voice, or speaker
        voice = requested[speakers[0]] if len(speakers) == 1 else ""
        default = engine.voice_for(target, voice or requested_voice(settings, engine))
        for speaker_id in speakers:
            voices[speaker_id] = (
                engine.voice_for(target, requested[speaker_id]) if requested[speaker_id]
                else default
            )  # fmt: skip
        return engine, voices
    free = [s for s in speakers if not requested[s]]
    pitches = [getattr(project.speaker(s), "pitch_hz", None) for s in free]
    try:
        picked = engine.voices_by_pitch(target, pitches) if free else []  # type: ignore[attr-defined]
    except InputError:
        if settings.tts.engine != "auto":
            raise

        logging.getLogger(__name__).warning(
            "%d speakers and too few %s voices for '%s': every speaker is voiced by "
            "espeak-ng instead", len(speakers), engine.name, target,
        )  # fmt: skip
        engine = EspeakEngine()
        check_language(engine, target)
        picked = engine.voices_by_pitch(target, pitches)
    by_pitch = dict(zip(free, picked, strict=True))
    for speaker_id in speakers:
        voices[speaker_id] = (
            engine.voice_for(target, requested[speaker_id]) if requested[speaker_id]
            else by_pitch[speaker_id]
        )  # fmt: skip
    return engine, voices


def _xtts_voices(
    project: Project, target: str, settings: Settings, engine: SpeechEngine,
    speakers: list[str], requested: dict[str, str], everyone: str,
) -> dict[str, str]:  # fmt: skip
    """Each speaker's XTTS voice: the one asked for, else the stored voice of the same
    person (``tts.match_voices``: "S2 -> maria (0.84)" is logged), else a clone of their
    own speech, stored in the library with ``tts.save_voices``."""
    import logging

    log = logging.getLogger(__name__)
    stored: dict[str, Any] | None = None
    voices: dict[str, str] = {}
    for speaker_id in speakers:
        asked = requested[speaker_id] or everyone
        if not asked and settings.tts.match_voices:
            if stored is None:
                stored = library(settings).embeddings()
            matched = match_speaker(project, speaker_id, settings, stored)
            if matched is not None:
                asked = matched[0]
                label = getattr(project.speaker(speaker_id), "label", speaker_id)
                log.warning("%s -> %s (%.2f)", label, matched[0], matched[1])
        chosen = engine.voice_for(target, stored_voice(settings, asked))
        if chosen:
            voices[speaker_id] = chosen
            continue
        voices[speaker_id] = auto_clone(project, engine, speaker_id)
        if settings.tts.save_voices:
            saved = save_speaker_voice(project, engine, speaker_id, voices[speaker_id], settings)
            if saved is not None:
                stored = None  # the library changed: read again
                log.warning("%s saved as voice '%s' (octavia voices rename %s NAME)",
                            getattr(project.speaker(speaker_id), "label", speaker_id),
                            saved, saved)  # fmt: skip
    return voices


def _speak(
    engine: SpeechEngine, text: str, target: str, voice: str, path: Path, speed: float,
    take: int = 0,
) -> Any:  # fmt: skip
    options: dict[str, Any] = {"take": take} if take else {}
    if abs(speed - 1.0) >= 1e-3:
        options["speed"] = speed
    return engine.synthesize(text, target, voice, path, **options)


def _say(
    engine: SpeechEngine, text: str, target: str, voice: str, path: Path, pace: float,
    slot_s: float, settings: Settings, take: int = 0,
) -> tuple[Any, float, float]:  # fmt: skip
    """Speak ``text`` into ``path`` at the speaker's ``pace``; where the clip is longer
    than its slot and the engine has a rate of its own, again, faster (it sounds better
    than time-stretching). Returns the engine's result, the rate used and the clip's
    spoken seconds at the first rate."""
    result = _speak(engine, text, target, voice, path, pace, take)
    speed = pace
    spoken = _spoken_seconds(path)
    if getattr(engine, "supports_speed", False) and spoken > slot_s * 1.05:
        # (espeak-ng and Piper at their own rate up to the fit's limit: cheap and clean)
        limit = MAX_TTS_SPEED if not getattr(engine, "cheap", False) else settings.fit.max_speed
        factor = min(spoken / max(slot_s, 0.1), limit)
        speed = round(pace * factor, 3)
        result = _speak(engine, text, target, voice, path, speed, take)
    return result, speed, spoken


def _spoken_seconds(path: Path) -> float:
    """How long a clip speaks, its leading and trailing silence left out (as fit does)."""

    audio, rate = read_audio(path)
    return trim_silence(to_channels(audio, 1), rate).shape[1] / rate


def _natural_seconds(segment: Any, target: str, key: str) -> float | None:
    """The spoken length of a line at the engine's default rate, if measured already."""
    clip = segment.clips.get(target)
    return clip.natural_s if clip is not None and clip.base else None


PACE_RANGE = (0.75, 1.35)
PACE_STEP = 0.05


def _speaker_paces(
    project: Project, engine: SpeechEngine, target: str, lines: list, settings: Settings,
    reporter: StageReporter,
) -> dict[str, float]:  # fmt: skip
    """Each speaker's pace: the engine rate at which the most of their lines can fill their
    slots within ±10% inside the speed band (steps of 0.05, within 0.75-1.35).

    A voice then speaks about as fast as the person it replaces; the speed band (0.9x to
    1.3x) applies around it. Only for engines whose rate is free and synthesis is cheap
    (espeak-ng, Piper): lines are first measured at the default rate. XTTS keeps its own
    natural rate (pace 1)."""
    import statistics
    import tempfile

    if not (getattr(engine, "cheap", False) and getattr(engine, "supports_speed", False)):
        return {}
    ratios: dict[str, list[float]] = {}
    wanted = []
    for segment, text, _, voice, label, base in lines:
        slot = segment.end_s - segment.start_s
        if not text.strip() or slot < 0.3:
            continue
        clip = segment.clips.get(target)
        natural = clip.natural_s if clip is not None and clip.base == base else None
        wanted.append((segment, text, voice, label, base, natural))
    if any(natural is None for *_, natural in wanted):
        reporter.started(message="measuring each speaker's pace")
    with tempfile.TemporaryDirectory(prefix="octavia-pace-") as scratch:

        def measure(line: tuple) -> float:
            segment, text, voice, *_, natural = line
            if natural is not None:
                return float(natural)
            path = Path(scratch) / f"{segment.id}.wav"
            engine.synthesize(text, target, voice, path)
            return _spoken_seconds(path)

        workers = max(1, int(getattr(engine, "parallel_lines", 1)))
        for line, natural in zip(wanted, in_order(measure, wanted, workers), strict=True):
            segment, _, _, label, base, known = line
            if known is None:
                clip = segment.clips.get(target)
                if clip is None:  # a placeholder until the line is synthesized
                    clip = Clip("", "", engine.name, label, 0.0, 0)
                    segment.clips[target] = clip
                clip.natural_s, clip.base = round(natural, 3), base
            ratios.setdefault(segment.speaker, []).append(
                natural / (segment.end_s - segment.start_s)
            )
    # The pace at which most of a speaker's lines can land within ±10% of their slot
    # inside the speed band; ties go to the pace nearest their median line.
    low, high = 0.9 * settings.fit.min_speed, 1.1 * settings.fit.max_speed
    steps = round((PACE_RANGE[1] - PACE_RANGE[0]) / PACE_STEP)
    candidates = [round(PACE_RANGE[0] + i * PACE_STEP, 2) for i in range(steps + 1)]
    paces = {}
    for speaker, values in ratios.items():
        median = statistics.median(values)
        paces[speaker] = max(
            candidates,
            key=lambda p: (sum(low <= r / p <= high for r in values), -abs(p - median)),
        )
    return paces


def synthesize(
    project: Project, target: str, engine: SpeechEngine, settings: Settings,
    hook: ProgressHook, only: set[str] | None = None, keep_paces: bool = False,
) -> dict[str, Clip]:  # fmt: skip
    """Synthesize the lines whose clip is missing or out of date, with ``engine`` (the
    caller owns it: the pipeline's runner frees it or keeps it). With ``only`` (line ids),
    just those, and nothing is saved: the clips are returned (a worker of a --parallel dub
    speaks its share of the lines; the project is written by one process). With
    ``keep_paces``, each speaker keeps the pace of the last run (a line edited by hand is
    spoken at its speaker's pace, and no other line changes)."""
    reporter = StageReporter(hook, stage_name(target))
    return _synthesize(project, target, settings, engine, reporter, only, keep_paces)


def _synthesize(
    project: Project, target: str, settings: Settings, engine: SpeechEngine,
    reporter: StageReporter, only: set[str] | None = None, keep_paces: bool = False,
) -> dict[str, Clip]:  # fmt: skip
    transcript = project.require_transcript()
    check_language(engine, target)
    engine, voices = speaker_voices(project, target, settings, engine)
    groups = project.speaker_groups()
    lines = []
    for segment in transcript.segments:
        translation = segment.translations.get(target)
        if translation is None:
            raise StageError(
                f"Line {segment.id} has no {target} translation.", "Run the translate stage first."
            )
        speaker = groups.get(segment.speaker, segment.speaker)
        voice = voices[speaker]
        label = project.relative(Path(voice)) if Path(voice).is_absolute() else voice
        base = stable_hash(translation.text, engine.name, label, target)
        lines.append((segment, translation.text, speaker, voice, label, base))
    # A pace is a person's way of speaking: measured per speaker as diarized, so merging
    # two speakers changes the voice of the merged one's lines only.
    began = last_save = time.monotonic()
    record = project.stages.get(stage_name(target))
    if keep_paces and record is not None and record.info.engine == engine.name:
        paces = dict(record.info.paces)
    else:
        paces = _speaker_paces(project, engine, target, lines, settings, reporter)
    jobs = []
    for segment, text, speaker, voice, label, base in lines:
        if only is not None and segment.id not in only:
            continue
        pace = paces.get(segment.speaker, 1.0)
        key = base if pace == 1.0 else stable_hash(base, pace)
        clip = segment.clips.get(target)
        if clip is None or clip.key != key or (clip.path and not project.path(clip.path).exists()):
            jobs.append((segment, text, key, voice, label, pace, speaker, base))
    if not jobs:
        reporter.skipped()
        return {}
    reporter.started(total=len(jobs))

    def speak(job: tuple) -> Clip:
        segment, text, key, voice, label, pace, _, base = job
        relative = f"clips/{target}/{segment.id}.wav"
        natural = _natural_seconds(segment, target, key)
        if not text.strip():  # a line emptied by hand: nothing to say
            return Clip("", key, engine.name, label, 0.0, 0, tts_speed=pace, pace=pace,
                        natural_s=round(natural, 3) if natural else None, base=base)  # fmt: skip
        with atomic_path(project.path(relative)) as tmp:
            result, speed, spoken = _say(
                engine, text, target, voice, tmp, pace, segment.end_s - segment.start_s, settings
            )
            natural = natural or spoken * pace
        return Clip(
            relative, key, engine.name, label, round(result.duration_s, 3),
            result.sample_rate_hz, tts_speed=speed, pace=pace,
            natural_s=round(natural, 3) if natural else None, base=base,
        )  # fmt: skip

    workers = max(1, int(getattr(engine, "parallel_lines", 1)))
    spoken = zip(jobs, in_order(speak, jobs, workers), strict=True)
    for done, (job, clip) in enumerate(spoken, 1):
        job[0].clips[target] = clip
        reporter.advance(done, len(jobs))
        if only is None and time.monotonic() - last_save > SAVE_EVERY_S:
            project.save()
            last_save = time.monotonic()
    made = {segment.id: segment.clips[target] for segment, *_ in jobs}
    if only is not None:
        reporter.done(f"{len(jobs)} clips")
        return made
    inputs = stable_hash([s.clips[target].key for s in transcript.segments])
    project.mark_done(
        stage_name(target),
        inputs,
        time.monotonic() - began,
        SynthesizeInfo(
            synthesized=len(jobs),
            engine=engine.name,
            paces=paces,
            voices={
                speaker: (project.relative(Path(v)) if Path(v).is_absolute() else v)
                for speaker, v in voices.items()
            },
        ),
    )
    reporter.done(f"{len(jobs)} clips")
    return made


def retake(
    project: Project, target: str, engine: SpeechEngine, settings: Settings,
    hook: ProgressHook, takes: dict[str, int],
) -> None:  # fmt: skip
    """Speak each line of ``takes`` (line id -> take number) again, as that take: the
    engine's own other way of saying it (another seed, other sampling settings, rate or
    pitch within the speaker's voice), into ``clips/LANG/ID.tTAKE.wav``. The line's clip
    becomes the new take; the earlier takes' files stay, so the check stage can go back to
    the best one."""
    import dataclasses

    reporter = StageReporter(hook, f"retake:{target}")
    transcript = project.require_transcript()
    engine, voices = speaker_voices(project, target, settings, engine)
    groups = project.speaker_groups()
    jobs = [s for s in transcript.segments if s.id in takes and s.clips.get(target)]
    lines = f"{len(jobs)} line{'s' if len(jobs) != 1 else ''}"
    reporter.started(total=len(jobs), message=f"speaking {lines} again")

    def speak(segment: Any) -> Clip:
        clip, take = segment.clips[target], takes[segment.id]
        voice = voices[groups.get(segment.speaker, segment.speaker)]
        relative = f"clips/{target}/{segment.id}.t{take}.wav"
        with atomic_path(project.path(relative)) as tmp:
            result, speed, _ = _say(
                engine, segment.translations[target].text, target, voice, tmp, clip.pace,
                segment.end_s - segment.start_s, settings, take,
            )  # fmt: skip
        return dataclasses.replace(
            clip, path=relative, duration_s=round(result.duration_s, 3),
            sample_rate_hz=result.sample_rate_hz, tts_speed=speed, take=take,
            attempts=take + 1, engine=engine.name,
        )  # fmt: skip

    workers = max(1, int(getattr(engine, "parallel_lines", 1)))
    spoken = zip(jobs, in_order(speak, jobs, workers), strict=True)
    for done, (segment, clip) in enumerate(spoken, 1):
        segment.clips[target] = clip
        reporter.advance(done, len(jobs))
    project.save()
    reporter.done(f"{lines} spoken again")
