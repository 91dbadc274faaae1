"""Who is who across files: a speaker's voice embedding, and the stored voice it matches.

The embedding is resemblyzer's GE2E (:mod:`.speaker_encoder`, in numpy) over the
speaker's speech as Octavia's VAD finds it: partial utterances of 1.6 s,
1.3 a second, averaged and scaled to unit length, as resemblyzer's ``embed_utterance``
does. Two recordings of one person score a high cosine similarity, two people a lower
one; ``tts.match_threshold`` is where a dub takes a speaker for a stored voice's person,
chosen on five of the ten LibriSpeech speakers of ``../shared/data`` and measured on the
other five by ``bench/voice_match_bench.py`` (false accepts and false rejects). GE2E is
weak across channels (a person on a phone line and in a studio scores like two people),
so a miss means a fresh clone, never a wrong voice: the threshold favours false rejects.
"""

from __future__ import annotations

import numpy as np

from octavia_cli.engines.speaker_encoder import SAMPLE_RATE_HZ, partial_mels, speaker_encoder
from octavia_cli.engines.vad import RECALL, detect_speech

PARTIALS_PER_S = 1.3  # resemblyzer's embed_utterance
MIN_COVERAGE = 0.75
MIN_SPEECH_S = 1.0


def voice_embedding(audio_16k: np.ndarray) -> np.ndarray | None:
    """The unit embedding of the speech in ``audio_16k`` (mono float), or None if it holds
    less than a second of speech."""
    regions = detect_speech(audio_16k, threshold=RECALL)
    pieces = [audio_16k[round(a * SAMPLE_RATE_HZ) : round(b * SAMPLE_RATE_HZ)] for a, b in regions]
    speech = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if len(speech) < MIN_SPEECH_S * SAMPLE_RATE_HZ:
        return None
    mels, _ = partial_mels(speech.astype(np.float32), PARTIALS_PER_S, MIN_COVERAGE)
    mean = speaker_encoder().embed(mels).mean(axis=0)
    return mean / np.linalg.norm(mean)


def best_match(
    embedding: np.ndarray, stored: dict[str, np.ndarray], threshold: float
) -> tuple[str, float] | None:
    """The stored voice most similar to ``embedding`` and its cosine similarity, if it
    reaches ``threshold``."""
    if not stored:
        return None
    scores = {name: float(np.dot(embedding, vector) / max(np.linalg.norm(vector), 1e-9))
              for name, vector in stored.items()}  # fmt: skip
    name = max(scores, key=lambda n: scores[n])
    return (name, scores[name]) if scores[name] >= threshold else None
