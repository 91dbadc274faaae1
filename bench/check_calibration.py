"""The check stage's baselines: how well the recogniser hears each offline engine's clean,
unstretched speech (``BASELINES`` in ``src/octavia_cli/stages/check.py``).

    python bench/check_calibration.py [--data ../shared/data/dialogues] [--only NAME ...]
                                      [--model bundled:whisper-base]

The texts are real ones: each shared dialogue is dubbed offline to Spanish with the checks
off, and its lines are taken as Octavia transcribed them (English) and as Apertium
translated them (Spanish). Each line is then spoken, at the engine's own rate and without
any stretching, by each offline engine that speaks the language, in the voice the dub gave
its speaker (espeak-ng: the speaker's variant; Piper: the bundled voice), and heard the
way the check stage hears a dub (``hear_clips``: clips end to end, a second apart). Prints,
per engine and language, the lines and the character error rate's median, 90th and 95th
percentile and mean, and the share of lines over the limit the stage would apply.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "dialogues"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--model", default="bundled:whisper-base")
    parser.add_argument("--engines", nargs="*", help="ENGINE:LANGUAGE pairs (default: all)")
    parser.add_argument(
        "--texts", type=Path, help="keep the lines' texts in this JSON file (read it if it exists)"
    )
    args = parser.parse_args()

    from octavia_cli.config import load_settings
    from octavia_cli.engines.asr import get_asr_engine
    from octavia_cli.engines.tts.espeak import EspeakEngine
    from octavia_cli.engines.tts.piper import PiperEngine
    from octavia_cli.media.audio import read_audio, to_channels, trim_silence
    from octavia_cli.pipeline.runner import checker_settings
    from octavia_cli.stages.check import cer_limit, hear_clips
    from octavia_cli.text.length import spoken_characters
    from octavia_cli.text.scoring import character_error_rate

    names = args.only or sorted(p.stem for p in args.data.glob("*.rttm"))
    lines: list[dict] = []  # text per language, and the speaker's espeak-ng variant
    if args.texts and args.texts.exists():
        lines = json.loads(args.texts.read_text())
        names = sorted({line["id"].split("/")[0] for line in lines})
    with tempfile.TemporaryDirectory(prefix="octavia-calibration-") as scratch:
        for name in names if not lines else ():
            source = Path(shutil.copy(args.data / f"{name}.flac", Path(scratch) / f"{name}.flac"))
            result = subprocess.run(
                [sys.executable, "-m", "octavia_cli", "--quiet", "dub", str(source), "--to",
                 "es", "--from", "en", "--preset", "offline", "--qa", "off", "-o",
                 str(Path(scratch) / f"{name}.es.flac")],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                print(f"{name}: the dub failed: {result.stderr.strip()}", file=sys.stderr)
                continue
            project = json.loads((Path(scratch) / f"{name}.octavia" / "project.json").read_text())
            for segment in project["transcript"]["segments"]:
                clip = segment["clips"]["es"]
                variant = clip["voice"].partition("+")[2]
                lines.append({"id": f"{name}/{segment['id']}", "en": segment["text"],
                              "es": segment["translations"]["es"]["text"],
                              "variant": variant})  # fmt: skip

        if args.texts and not args.texts.exists():
            args.texts.write_text(json.dumps(lines, ensure_ascii=False, indent=1))
        settings = load_settings({"qa.model": args.model, "general.preset": "offline"})
        recogniser = get_asr_engine(checker_settings(settings))  # as the check stage hears
        espeak, piper = EspeakEngine(), PiperEngine()
        speakers = {
            ("espeak-ng", "es"): lambda line: (espeak, "es" + _variant(line)),
            ("espeak-ng", "en"): lambda line: (espeak, "en" + _variant(line)),
            ("piper", "en"): lambda line: (piper, piper.voice_for("en")),
        }
        if args.engines:
            speakers = {k: v for k, v in speakers.items() if ":".join(k) in args.engines}
        rows = []
        for (engine_name, language), voice_of in speakers.items():
            clips = []
            for index, line in enumerate(lines):
                if not line[language].strip():
                    continue
                engine, voice = voice_of(line)
                path = Path(scratch) / f"{engine_name}-{language}-{index}.wav"
                engine.synthesize(line[language], language, voice, path)
                audio, rate = read_audio(path, 16_000)
                mono = trim_silence(to_channels(audio, 1), rate)[0]
                clips.append((str(index), len(mono) / rate, lambda mono=mono: mono))
            began = time.perf_counter()
            texts = {str(i): line[language] for i, line in enumerate(lines)}
            heard = hear_clips(clips, recogniser, language, texts)
            hearing_s = time.perf_counter() - began
            rates = np.array([
                character_error_rate(lines[int(i)][language], heard.get(i, ""), language)
                for i, *_ in clips
            ])  # fmt: skip
            limit = cer_limit(engine_name, language, 1.0)
            # Length against the text's at the median rate (lines of 12 characters or more).
            characters = np.array([spoken_characters(lines[int(i)][language]) for i, *_ in clips])
            seconds = np.array([length for _, length, _ in clips])
            long = characters >= 12
            rate = np.median(characters[long] / seconds[long])
            ratios = seconds / np.maximum(characters / rate, 0.05)
            rows.append((engine_name, language, len(rates), np.median(rates),
                         np.percentile(rates, 90), np.percentile(rates, 95), rates.mean(),
                         limit, float((rates > limit).mean()),
                         np.percentile(ratios[long], [1, 5, 95, 99]),
                         np.percentile(ratios[~long], [0, 100]) if (~long).any()
                         else [], hearing_s, float(seconds.sum())))  # fmt: skip
    print(f"recogniser: {args.model}; {len(lines)} lines of {len(names)} dialogues")
    print(
        "engine     lang  lines  median   p90    p95    mean   limit  over   "
        "length ratio p1 p5 p95 p99 (short lines: min max)"
    )
    for row in rows:
        engine_name, language, count, median, p90, p95, mean, limit, over = row[:9]
        spread, short, hearing_s, speech_s = row[9:]
        print(
            f"{engine_name:<10} {language:<5} {count:>5}  {median:.3f}  {p90:.3f}  {p95:.3f}  "
            f"{mean:.3f}  {limit:.3f}  {over:>5.1%}  "
            + " ".join(f"{x:.2f}" for x in spread)
            + "  ("
            + " ".join(f"{x:.2f}" for x in short)
            + f")  heard {speech_s:.0f} s of speech in {hearing_s:.1f} s"
        )
    return 0


def _variant(line: dict) -> str:
    return f"+{line['variant']}" if line["variant"] else ""


if __name__ == "__main__":
    sys.exit(main())
