"""Translation throughput, and what length control does to the speed-up a dub needs.

    python bench/translate_bench.py [--lines 200] [--model PATH_OR_HUB_ID]

1. Throughput (lines/s) of each engine available here: Apertium, and the transformers
   engine with --model if given, else with a tiny random MarianMT built on the spot (that
   measures the engine's code path, batching and beam search, not a real model's speed).
2. A 15 s clip of espeak-ng English with filler words ("you know", "basically"), each line
   in a slot just long enough for the English, dubbed into Spanish with the offline preset
   twice: without and with length control. For each, the speed-up every line would need to
   fit its slot (synthesized length with its silent edges trimmed / slot), its mean and
   maximum, and how many lines need more than the allowed 1.3x (those run on into the
   following pause).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = [
    "Welcome to the city library.",
    "Today we talk about old books and the people who wrote them.",
    "The new reading room opens next week, right after the holidays.",
    "Thank you for watching, and see you next time.",
    "Could you tell me where the station is?",
    "We have been working on this project for three years.",
]
FILLER_LINES = (
    (0.5, "Well, you know, I think that basically the new library is very very beautiful."),
    (6.5, "So, um, the reading room opens, I mean, next week, to be honest."),
    (12.0, "Thank you for watching."),
)


def throughput(engine: object, lines: list[str], label: str) -> None:
    engine.translate(lines[:4], "en", "es")  # type: ignore[attr-defined]  # load, warm up
    began = time.perf_counter()
    engine.translate(lines, "en", "es")  # type: ignore[attr-defined]
    wall = time.perf_counter() - began
    print(f"  {label:<44} {len(lines) / wall:8.1f} lines/s ({len(lines)} lines, {wall:.2f} s)")


def tiny_marian(folder: Path) -> Path:
    import sentencepiece
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    for name in ("source", "target"):
        (folder / f"{name}.txt").write_text("\n".join(SENTENCES))
        sentencepiece.SentencePieceTrainer.train(
            input=str(folder / f"{name}.txt"), model_prefix=str(folder / name),
            vocab_size=80, hard_vocab_limit=False, minloglevel=2,
        )  # fmt: skip
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for name in ("source", "target"):
        processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / f"{name}.model"))
        for index in range(processor.get_piece_size()):
            vocab.setdefault(processor.id_to_piece(index), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    MarianTokenizer(
        source_spm=str(folder / "source.model"), target_spm=str(folder / "target.model"),
        vocab=str(folder / "vocab.json"),
    ).save_pretrained(folder)  # fmt: skip
    torch.manual_seed(0)
    network = MarianMTModel(
        MarianConfig(
            vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
            decoder_ffn_dim=64, pad_token_id=2, eos_token_id=0, decoder_start_token_id=2,
        )
    )  # fmt: skip
    network.final_logits_bias[0, 0] = 0.2  # end sentences at a plausible length
    network.save_pretrained(folder)
    return folder


def needed_speeds(project_folder: Path, target: str) -> list[float]:
    data = json.loads((project_folder / "project.json").read_text())
    speeds = []
    for segment in data["transcript"]["segments"]:
        fit = segment["fits"][target]  # natural (trimmed) length = fitted length x speed
        natural = (fit["end_s"] - fit["start_s"]) * fit["speed"]
        speeds.append(natural / (fit["slot_end_s"] - fit["slot_start_s"]))
    return speeds


def length_control(scratch: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import make_media  # the tests' espeak-ng + ffmpeg clip maker
    from octavia_cli.config import load_settings
    from octavia_cli.pipeline import DubRequest, dub

    env = os.environ
    env.setdefault("XDG_RUNTIME_DIR", str(scratch))
    clip = make_media(scratch / "fillers.mp4", FILLER_LINES, duration_s=15.0)
    print("\nlength control, offline preset (Apertium, espeak-ng), en -> es, max speed 1.3:")
    for enabled in (False, True):
        folder = scratch / ("on" if enabled else "off")
        folder.mkdir()
        source = Path(shutil.copy(clip, folder / clip.name))
        settings = load_settings({"general.preset": "offline", "mt.length_control": enabled})
        result = dub(DubRequest(source=source, targets=("es",), source_language="en"), settings)
        speeds = needed_speeds(result.project_folder, "es")
        data = json.loads((result.project_folder / "project.json").read_text())
        texts = [s["translations"]["es"]["text"] for s in data["transcript"]["segments"]]
        label = "with length control   " if enabled else "without length control"
        print(
            f"  {label}: speed-up needed per line {', '.join(f'{s:.2f}' for s in speeds)}; "
            f"mean {sum(speeds) / len(speeds):.2f}, max {max(speeds):.2f}, "
            f"over 1.3x: {sum(s > 1.3 for s in speeds)}"
        )
        for text in texts:
            print(f"      {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--model", default="")
    args = parser.parse_args()
    lines = [SENTENCES[i % len(SENTENCES)] for i in range(args.lines)]
    from octavia_cli.config import load_settings
    from octavia_cli.engines.mt import get_translation_engine

    print("translation throughput, en -> es, 2 CPU cores:")
    throughput(get_translation_engine(load_settings({"mt.engine": "apertium"})), lines,
               "apertium")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="octavia-bench-mt-") as scratch:
        try:
            model = args.model or str(tiny_marian(Path(scratch)))
        except ImportError:
            print("  transformers: not installed (pip install 'octavia-cli[quality]')")
        else:
            label = f"transformers {args.model or '(tiny random Marian)'}"
            settings = load_settings({"mt.engine": "transformers", "mt.model": model})
            throughput(get_translation_engine(settings), lines, label)
        work = Path(scratch) / "dub"
        work.mkdir()
        length_control(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
