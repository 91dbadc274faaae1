"""The same voice for the same person: how often a dub takes a speaker for a stored voice's
person wrongly (false accept) or misses them (false reject), on real speech.

    python bench/voice_match_bench.py [--data ../shared/data/librispeech] [--threshold T]

Each of the ten LibriSpeech speakers of the shared data gets a stored voice made as a dub
makes one (the first of their utterances, 6 s of speech or more: a clone's reference), and
probes made as a later episode's diarized speaker would look (each further utterance, and
pairs of them: 2-23 s). Every probe is scored against every stored voice (cosine of
:func:`octavia_cli.engines.voice_match.voice_embedding`). The threshold is chosen on five
speakers (the tuning half) and the
rates are reported on the other five, which had no say in it; ``--threshold`` reports a
given one instead. The threshold is the lowest at which no tuning impostor is accepted:
a false accept gives a person someone else's voice, a false reject only a fresh clone, and a
library grows (more voices, more chances of a close one). ``tests/test_voice_library.py``
holds the rates printed here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "librispeech"
MAX_FALSE_ACCEPTS = 0.0
ENROL_S = 6.0


def speakers(data: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(data.glob("*.flac")):
        found.setdefault(path.name.split("-")[0], []).append(path)
    return found


def halves(names: list[str]) -> tuple[list[str], list[str]]:
    """Tuning and held-out speakers: every other one of the sorted ids."""
    ordered = sorted(names, key=int)
    return ordered[0::2], ordered[1::2]


def embeddings(files: list[Path]) -> tuple[np.ndarray, list[np.ndarray]]:
    """A stored voice's embedding and the probes' of one speaker."""
    import soundfile

    from octavia_cli.engines.voice_match import voice_embedding

    audio = [soundfile.read(str(path), dtype="float32")[0] for path in files]
    enrol, used = [], 0
    while used < len(audio) and sum(len(a) for a in enrol) < ENROL_S * 16_000:
        enrol.append(audio[used])
        used += 1
    stored = voice_embedding(np.concatenate(enrol))
    rest = audio[used:]
    probes = [voice_embedding(a) for a in rest]
    pairs = zip(rest[::2], rest[1::2], strict=False)  # an odd one out has no pair
    probes += [voice_embedding(np.concatenate([a, b])) for a, b in pairs]
    assert stored is not None
    return stored, [p for p in probes if p is not None]


def scores(
    names: list[str], stored: dict[str, np.ndarray], probes: dict[str, list[np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor scores among ``names``."""
    genuine, impostor = [], []
    for probe_name in names:
        for probe in probes[probe_name]:
            for voice_name in names:
                score = float(np.dot(probe, stored[voice_name]))
                (genuine if voice_name == probe_name else impostor).append(score)
    return np.array(genuine), np.array(impostor)


def rates(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """False accepts and false rejects at ``threshold``."""
    return float((impostor >= threshold).mean()), float((genuine < threshold).mean())


def choose_threshold(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The lowest threshold (fewest false rejects) with no more false accepts than
    :data:`MAX_FALSE_ACCEPTS`, on a grid of 0.01."""
    for threshold in np.arange(0.5, 1.0, 0.01):
        if rates(genuine, impostor, threshold)[0] <= MAX_FALSE_ACCEPTS:
            return round(float(threshold), 2)
    return 1.0


def measure(data: Path, threshold: float | None = None) -> dict[str, float]:
    found = speakers(data)
    stored, probes = {}, {}
    for name, files in found.items():
        stored[name], probes[name] = embeddings(files)
    tune, held_out = halves(list(found))
    tune_scores = scores(tune, stored, probes)
    chosen = threshold if threshold is not None else choose_threshold(*tune_scores)
    held_scores = scores(held_out, stored, probes)
    fa_tune, fr_tune = rates(*tune_scores, chosen)
    fa, fr = rates(*held_scores, chosen)
    return {"threshold": chosen, "tune_false_accepts": fa_tune, "tune_false_rejects": fr_tune,
            "false_accepts": fa, "false_rejects": fr,
            "genuine_trials": len(held_scores[0]), "impostor_trials": len(held_scores[1]),
            "genuine_median": float(np.median(held_scores[0])),
            "impostor_p99": float(np.percentile(held_scores[1], 99))}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threshold", type=float)
    args = parser.parse_args()
    if not any(args.data.glob("*.flac")):
        print(f"no LibriSpeech utterances in {args.data}", file=sys.stderr)
        return 1
    tune, held_out = halves(list(speakers(args.data)))
    result = measure(args.data, args.threshold)
    print(f"tuning speakers {', '.join(tune)}; held-out speakers {', '.join(held_out)}")
    print(
        f"threshold {result['threshold']:.2f} "
        f"({'given' if args.threshold is not None else 'chosen on the tuning speakers'})"
    )
    print(
        f"tuning:   false accepts {result['tune_false_accepts']:.1%}, "
        f"false rejects {result['tune_false_rejects']:.1%}"
    )
    print(f"held out: false accepts {result['false_accepts']:.1%}, "
          f"false rejects {result['false_rejects']:.1%} "
          f"({result['genuine_trials']} genuine, {result['impostor_trials']} impostor trials; "
          f"genuine median {result['genuine_median']:.3f}, impostor p99 "
          f"{result['impostor_p99']:.3f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    sys.exit(main())
