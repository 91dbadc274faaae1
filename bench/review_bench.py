"""How fast ``octavia review`` stays on a long project: a dubbed shared dialogue repeated
to a film's length (its lines, timing report and audio laid end to end), then its API and
its page in headless Chromium.

    python bench/review_bench.py [--copies 170] [--dialogue two-on-the-phone]

Prints: lines, the project's size, the time of ``/api/project`` and of ``/api/energy``
(first, computing the envelopes, and again, from the cache), the page's time to its first
drawn rows, the rows in the document (the list is virtualised: a screen's worth), and the
time to scroll the list to its end and to select the last line.
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

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "dialogues"


def long_project(folder: Path, dialogue: str, copies: int) -> Path:
    """A dub of ``dialogue``, its lines and audio repeated ``copies`` times."""
    import numpy as np
    import soundfile

    source = Path(shutil.copy(DATA / f"{dialogue}.flac", folder / "call.flac"))
    subprocess.run([sys.executable, "-m", "octavia_cli", "--quiet", "dub", str(source), "--to",
                    "es", "--from", "en", "--qa", "off"], check=True)  # fmt: skip
    project = folder / "call.octavia"
    manifest = json.loads((project / "project.json").read_text())
    report_path = project / "report" / "timing.es.json"
    report = json.loads(report_path.read_text())
    length = manifest["source"]["media"]["duration_s"]
    segments, lines = [], []
    for copy in range(copies):
        shift = copy * length
        for segment, line in zip(manifest["transcript"]["segments"], report["lines"], strict=True):
            new_id = f"s{len(segments) + 1:05d}"
            moved = json.loads(json.dumps(segment))
            moved["id"], moved["start_s"], moved["end_s"] = (
                new_id,
                segment["start_s"] + shift,
                segment["end_s"] + shift,
            )
            moved["words"] = [dict(w, start_s=w["start_s"] + shift, end_s=w["end_s"] + shift)
                              for w in segment["words"]]  # fmt: skip
            moved["fits"]["es"].update(start_s=segment["fits"]["es"]["start_s"] + shift,
                                       end_s=segment["fits"]["es"]["end_s"] + shift)  # fmt: skip
            segments.append(moved)
            lines.append(dict(line, id=new_id, start_s=line["start_s"] + shift,
                              end_s=line["end_s"] + shift))  # fmt: skip
    manifest["transcript"]["segments"] = segments
    manifest["source"]["media"]["duration_s"] = length * copies
    report["lines"] = lines
    (project / "project.json").write_text(json.dumps(manifest))
    report_path.write_text(json.dumps(report))
    for name in ("audio/source.wav", "mix/voice.es.wav", "mix/dub.es.wav"):
        audio, rate = soundfile.read(str(project / name), dtype="float32", always_2d=True)
        soundfile.write(str(project / name), np.tile(audio, (copies, 1)), rate)
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=170)
    parser.add_argument("--dialogue", default="two-on-the-phone")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "tests"))
    import httpx
    from playwright.sync_api import sync_playwright

    from test_review import Review, _browser

    with tempfile.TemporaryDirectory(prefix="octavia-review-bench-") as scratch:
        project = long_project(Path(scratch), args.dialogue, args.copies)
        manifest = json.loads((project / "project.json").read_text())
        count = len(manifest["transcript"]["segments"])
        hours = manifest["source"]["media"]["duration_s"] / 3600
        print(f"{count} lines, {hours:.2f} h, project.json "
              f"{(project / 'project.json').stat().st_size / 1e6:.1f} MB")  # fmt: skip
        with Review(project) as review:
            session = httpx.get(review.url, follow_redirects=False).cookies["octavia_review"]
            api = httpx.Client(base_url=review.base, cookies={"octavia_review": session},
                               timeout=600)  # fmt: skip
            for name in ("/api/project", "/api/energy", "/api/energy"):
                began = time.perf_counter()
                size = len(api.get(name).content)
                print(f"{name}: {time.perf_counter() - began:.2f} s, {size / 1e6:.1f} MB")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=_browser(),
                                                     args=["--no-sandbox"])  # fmt: skip
                context = browser.new_context(viewport={"width": 1400, "height": 800})
                context.add_cookies([{"name": "octavia_review", "value": session,
                                      "url": review.base}])  # fmt: skip
                page = context.new_page()
                began = time.perf_counter()
                page.goto(review.base + "/")
                page.wait_for_selector("#rows .row")
                print(f"page to its first rows: {time.perf_counter() - began:.2f} s; rows in "
                      f"the document: {page.locator('#rows .row').count()} of {count}")  # fmt: skip
                began = time.perf_counter()
                page.evaluate("() => { const l = document.getElementById('list');"
                              " l.scrollTop = l.scrollHeight; }")  # fmt: skip
                page.wait_for_selector(f"#rows .row[data-id='s{count:05d}']")
                page.click(f"#rows .row[data-id='s{count:05d}']")
                page.wait_for_function(f"() => document.querySelector('#detail h2')"
                                       f".textContent.startsWith('s{count:05d}')")  # fmt: skip
                print(f"scroll to the end and select the last line: "
                      f"{time.perf_counter() - began:.2f} s")  # fmt: skip
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
