"""Every line checked, on real speech: each shared dialogue dubbed offline, checks on and off.

    python bench/check_bench.py [--data ../shared/data/dialogues] [--only NAME ...]
                                [--to es] [--max-attempts 3]

Each dialogue is dubbed twice, each time a whole process from an empty folder: ``octavia
dub NAME.flac --to es --from en --preset offline`` with the checks on (``--qa all``, up to
``--max-attempts`` takes of a failing line) and with them off (``--qa off``). Per dialogue:
its lines, how many have a recorded check, how many were spoken again, how many are still
flagged, how many were dropped (a line with text and no speech in the dub: must be 0), and
the wall time of both dubs. Then, over all dialogues and per engine, the distribution of the
character error rate of the first take and of the kept take (median, 90th, 95th percentile,
mean, share over the engine's limit), the share of lines flagged (the issue's target: at
most 5%), and what the flagged lines were heard saying.
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


def dub(source: Path, scratch: Path, target: str, qa: str, attempts: int) -> tuple[float, Path]:
    folder = scratch / qa
    folder.mkdir(exist_ok=True)
    began = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "octavia_cli", "--quiet", "dub", str(source), "--to", target,
         "--from", "en", "--preset", "offline", "--qa", qa, "--max-attempts", str(attempts),
         "--workdir", str(folder), "-o", str(folder / f"{source.stem}.{target}.flac")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"{source.name}: the dub failed: {result.stderr.strip()}")
    return wall, folder / f"{source.stem}.octavia"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--to", default="es")
    parser.add_argument("--max-attempts", type=int, default=3)
    args = parser.parse_args()
    from octavia_cli.stages.check import cer_limit

    names = args.only or sorted(p.stem for p in args.data.glob("*.rttm"))
    first: dict[str, list[float]] = {}
    kept: dict[str, list[float]] = {}
    flagged_lines: list[tuple[str, str, str, str]] = []
    totals = {"lines": 0, "checked": 0, "retaken": 0, "flagged": 0, "dropped": 0}
    walls = {"all": 0.0, "off": 0.0}
    media_s = 0.0
    print(f"{'dialogue':<30} lines checked retaken flagged dropped   wall on  wall off")
    with tempfile.TemporaryDirectory(prefix="octavia-checks-") as scratch_name:
        scratch = Path(scratch_name)
        for name in names:
            source = Path(shutil.copy(args.data / f"{name}.flac", scratch / f"{name}.flac"))
            wall_on, project_folder = dub(source, scratch, args.to, "all", args.max_attempts)
            wall_off, _ = dub(source, scratch, args.to, "off", args.max_attempts)
            walls["all"] += wall_on
            walls["off"] += wall_off
            project = json.loads((project_folder / "project.json").read_text())
            media_s += project["source"]["media"]["duration_s"]
            report = json.loads((project_folder / "report" / f"timing.{args.to}.json").read_text())
            row = {"lines": 0, "checked": 0, "retaken": 0, "flagged": 0, "dropped": 0}
            for line in report["lines"]:
                row["lines"] += 1
                check = line.get("check")
                if line["text"].strip() and line["dub_s"] <= 0:
                    row["dropped"] += 1
                if not check:
                    continue
                row["checked"] += 1
                row["retaken"] += check["takes"] > 1
                segment = next(s for s in project["transcript"]["segments"]
                               if s["id"] == line["id"])  # fmt: skip
                engine = segment["clips"][args.to]["engine"]
                takes = segment["checks"][args.to]["takes"]
                first.setdefault(engine, []).append(takes[0]["cer"])
                kept.setdefault(engine, []).append(check["cer"])
                if check["flagged"]:
                    row["flagged"] += 1
                    flagged_lines.append((f"{name}/{line['id']}", line["text"], check["heard"],
                                          "; ".join(check["problems"])))  # fmt: skip
            for key in totals:
                totals[key] += row[key]
            print(
                f"{name:<30} {row['lines']:>5} {row['checked']:>7} {row['retaken']:>7} "
                f"{row['flagged']:>7} {row['dropped']:>7}  {wall_on:>7.1f}s {wall_off:>8.1f}s"
            )
    print(f"{'all':<30} {totals['lines']:>5} {totals['checked']:>7} {totals['retaken']:>7} "
          f"{totals['flagged']:>7} {totals['dropped']:>7}  {walls['all']:>7.1f}s "
          f"{walls['off']:>8.1f}s")  # fmt: skip
    share = totals["flagged"] / max(totals["lines"], 1)
    print(f"\nflagged after retakes: {totals['flagged']} of {totals['lines']} lines ({share:.1%}; "
          f"target <= 5%: {'PASS' if share <= 0.05 else 'MISS'}); every line checked: "
          f"{'yes' if totals['checked'] == totals['lines'] else 'NO'}; dropped: "
          f"{totals['dropped']}")  # fmt: skip
    print(
        f"time: {walls['all']:.1f} s with checks, {walls['off']:.1f} s without "
        f"(+{walls['all'] / walls['off'] - 1:.0%}); RTF {walls['all'] / media_s:.3f} and "
        f"{walls['off'] / media_s:.3f} over {media_s:.0f} s of media, one process per dub"
    )
    print("\nCER of each line, heard by the check (first take -> kept take):")
    print("engine     takes  lines  median   p90    p95    mean   over limit")
    for engine in sorted(first):
        limit = cer_limit(engine, args.to, 1.0)
        for label, values in (("first", first[engine]), ("kept", kept[engine])):
            rates = np.array(values)
            print(
                f"{engine:<10} {label:<5} {len(rates):>6}  {np.median(rates):.3f}  "
                f"{np.percentile(rates, 90):.3f}  {np.percentile(rates, 95):.3f}  "
                f"{rates.mean():.3f}  {(rates > limit).mean():.1%} (limit {limit:.2f})"
            )
    if flagged_lines:
        print("\nstill flagged:")
        for where, text, heard, problems in flagged_lines:
            print(f"  {where}: {text!r} heard {heard!r}: {problems}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
