"""report.html rendered by a real browser (Chromium's headless shell, from Debian): the
page draws, and its timeline shows every source line and every dub line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SOURCE_BLUE = (0x9E, 0xCA, 0xE1)
DUB_COLOURS = [(0x2C, 0xA0, 0x2C), (0xBC, 0xBD, 0x22), (0xFF, 0x7F, 0x0E), (0xD6, 0x27, 0x28)]


def _browser() -> str:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: scripts/install-system-deps.sh installs it")
    pytest.skip("no Chromium here (scripts/install-system-deps.sh installs it)")


def _pixels(png: Path) -> np.ndarray:
    """The screenshot as (height, width, 3) bytes, decoded by ffmpeg."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "json", str(png)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    size = json.loads(probe.stdout)["streams"][0]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(png), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(size["height"], size["width"], 3)


def _bars(row: np.ndarray, colours: list[tuple[int, int, int]]) -> int:
    """How many separate bars of any of ``colours`` a row of pixels has (a gap of a few
    pixels, where a grid line crosses a bar, does not split it)."""
    hit = np.zeros(len(row), bool)
    for colour in colours:
        hit |= (np.abs(row.astype(int) - colour) <= 3).all(axis=1)
    where = np.flatnonzero(hit)
    if not len(where):
        return 0
    return 1 + int(np.count_nonzero(np.diff(where) > 4))


@pytest.mark.slow
def test_report_renders_with_every_line_on_its_timeline(cli, talk: Path, tmp_path: Path) -> None:
    browser = _browser()
    code, _, err = cli("dub", str(talk), "--to", "es", "--from", "en")
    assert code == 0, err
    report = talk.parent / "talk.octavia" / "report.html"
    png = tmp_path / "report.png"
    subprocess.run(
        [browser, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={png}", "--window-size=1600,700", report.resolve().as_uri()],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    image = _pixels(png)
    assert image.shape[:2] == (700, 1600)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # text and bars, not a blank page
    lines = json.loads(report.with_name("project.json").read_text())["transcript"]["segments"]
    source_rows = [_bars(row, [SOURCE_BLUE]) for row in image]
    dub_rows = [_bars(row, DUB_COLOURS) for row in image]
    assert max(source_rows) == len(lines)  # one bar per source line...
    assert max(dub_rows) == len(lines)  # ...and one per dubbed line, on one speaker's rows
