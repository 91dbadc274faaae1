"""Speech synthesis real-time factor (wall / audio length) of each engine available here.

    python bench/synthesize_bench.py [--lines 20]

espeak-ng and Piper (the bundled US English voice) speak real voices; XTTS runs a tiny
random model built on the spot when no XTTS v2 weights are cached (that measures the code
path, conditioning and chunking, not the real model's speed; run it on a GPU with the real
weights for that figure).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = {
    "en": "The new reading room of the city library opens next week.",
    "es": "La nueva sala de lectura de la biblioteca abre la semana que viene.",
}


def measure(engine: object, voice: str, language: str, lines: int, folder: Path) -> str:
    total_audio = 0.0
    engine.synthesize(SENTENCES[language], language, voice, folder / "warm.wav")  # type: ignore[attr-defined]
    began = time.perf_counter()
    for index in range(lines):
        result = engine.synthesize(  # type: ignore[attr-defined]
            SENTENCES[language], language, voice, folder / f"{index}.wav"
        )
        total_audio += result.duration_s
    wall = time.perf_counter() - began
    return f"{wall / total_audio:.3f} (wall {wall:.2f} s for {total_audio:.1f} s of speech)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20)
    args = parser.parse_args()
    from octavia_cli.engines.tts.espeak import EspeakEngine
    from octavia_cli.engines.tts.piper import PiperEngine

    print("speech synthesis, real-time factor (lower is faster), 2 CPU cores:")
    with tempfile.TemporaryDirectory(prefix="octavia-bench-tts-") as scratch:
        folder = Path(scratch)
        espeak = EspeakEngine()
        figure = measure(espeak, espeak.voice_for("es"), "es", args.lines, folder)
        print(f"  espeak-ng es        {figure}")
        piper = PiperEngine("")
        if "en" in piper.languages():
            figure = measure(piper, piper.voice_for("en"), "en", args.lines, folder)
            print(f"  piper en (joe)      {figure}")
        try:
            line = xtts_tiny(folder, max(2, args.lines // 4))
        except ImportError:
            line = "not installed (pip install 'octavia-cli[quality]')"
        print(f"  xtts (tiny random)  {line}")
    return 0


def xtts_tiny(folder: Path, lines: int) -> str:
    import os
    import subprocess

    import torch  # noqa: F401

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "engines"))
    from test_xtts import tiny_xtts  # the tests' tiny XTTS recipe

    model_dir = tiny_xtts.__wrapped__(_Factory(folder))  # type: ignore[attr-defined]
    os.environ["OCTAVIA_TTS_MODEL"] = str(model_dir)
    os.environ["OCTAVIA_TTS_ACCEPT_LICENSE"] = "true"
    os.environ["XDG_DATA_HOME"] = str(folder / "data")
    reference = folder / "ref.wav"
    subprocess.run(["espeak-ng", "-w", str(reference), SENTENCES["en"] * 2], check=True,
                   env={**os.environ, "XDG_RUNTIME_DIR": str(folder)})  # fmt: skip
    from octavia_cli.config import load_settings
    from octavia_cli.engines.tts.xtts import XttsEngine
    from octavia_cli.models import voices
    from octavia_cli.pipeline.voices import check_references

    engine = XttsEngine(load_settings({}))
    checked = check_references([reference])
    voices.save(voices.VoiceProfile("bench", "xtts", str(model_dir), checked),
                engine.clone([reference]), force=True)  # fmt: skip
    return measure(engine, "bench", "es", lines, folder)


class _Factory:
    """Stands in for pytest's tmp_path_factory when the fixture's recipe is reused here."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def mktemp(self, name: str) -> Path:
        path = self.folder / name
        path.mkdir()
        return path


if __name__ == "__main__":
    sys.exit(main())
