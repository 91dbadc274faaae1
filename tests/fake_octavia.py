"""The ``octavia`` console program with the fake engines of ``fakes.py``, for the tests of the
plumbing that run the program in a subprocess (killing it, a server, a full disk):
``[sys.executable, FAKE_OCTAVIA, "dub", ...]``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import FakeEngines
from octavia_cli.cli import main
from octavia_cli.pipeline import runner

if __name__ == "__main__":
    engines = FakeEngines()
    # A test of queueing can make speaking take time, so that jobs wait for workers.
    engines.speech.delay_s = float(os.environ.get("FAKE_OCTAVIA_SPEECH_DELAY_S", "0"))
    runner.FACTORIES = engines.factories()
    # No line checks (the fake recogniser reads a script): as the fake_engines fixture.
    os.environ.setdefault("OCTAVIA_QA_MODE", "off")
    main()
