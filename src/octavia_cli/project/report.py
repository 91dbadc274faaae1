"""``report.html``: one self-contained page per project to look at a dub.

A timeline per language and speaker, source lines above dub lines, each dub line coloured
by its speed factor and marked when it breaks a rule; the loudness before and after; the
stage timings; and a table of every line. Inline SVG and CSS only: it opens in any browser,
offline, and can be mailed as one file.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from octavia_cli.files import atomic_write_bytes
from octavia_cli.project.manifest import Project

REPORT = "report.html"
ROW_H = 22
PX_PER_S = 40


def _flagged(line: dict[str, Any]) -> bool:
    return bool((line.get("check") or {}).get("flagged"))


def _colour(speed: float, violations: list[str], flagged: bool = False) -> str:
    if violations or flagged:
        return "#d62728"
    if speed <= 1.0:
        return "#2ca02c"
    if speed <= 1.15:
        return "#bcbd22"
    return "#ff7f0e"


LEFT = 100  # the row labels' column: bars start right of it


def _timeline(report: dict[str, Any], duration_s: float, labels: dict[str, str]) -> str:
    speakers = sorted({line["speaker"] for line in report["lines"]})
    width = max(400, int(duration_s * PX_PER_S) + LEFT + 10)
    height = (len(speakers) * 2) * ROW_H + 30
    parts = [f'<svg width="{width}" height="{height}">']
    for second in range(int(duration_s) + 1):
        x = LEFT + second * PX_PER_S
        parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{height - 20}" class="tick"/>')
        if second % 5 == 0:
            parts.append(f'<text x="{x + 2}" y="{height - 6}" class="label">{second}s</text>')
    for row, speaker in enumerate(speakers):
        y_source, y_dub = row * 2 * ROW_H, (row * 2 + 1) * ROW_H
        for line in (item for item in report["lines"] if item["speaker"] == speaker):
            check = line.get("check") or {}
            title = html.escape(
                f"{line['id']}: {line['source']} → {line['text']} "
                f"(speed {line['speed']:.2f}x, shift {line['shift_s']:+.2f} s"
                + (f"; {'; '.join(line['violations'])}" if line["violations"] else "")
                + (f"; heard: {check['heard']} (CER {check['cer']:.2f})" if check else "")
                + ("; STILL UNCLEAR" if check.get("flagged") else "")
                + ")"
            )
            x1 = LEFT + line["slot_start_s"] * PX_PER_S
            w1 = max(1.0, (line["slot_end_s"] - line["slot_start_s"]) * PX_PER_S)
            parts.append(
                f'<rect x="{x1:.1f}" y="{y_source + 3}" width="{w1:.1f}" height="{ROW_H - 6}" '
                f'class="source"><title>{title}</title></rect>'
            )
            x2 = LEFT + line["start_s"] * PX_PER_S
            w2 = max(1.0, (line["end_s"] - line["start_s"]) * PX_PER_S)
            colour = _colour(line["speed"], line["violations"], _flagged(line))
            parts.append(
                f'<rect x="{x2:.1f}" y="{y_dub + 3}" width="{w2:.1f}" height="{ROW_H - 6}" '
                f'fill="{colour}" data-line="{html.escape(line["id"])}"><title>{title}</title>'
                "</rect>"
            )
        name = html.escape(labels.get(speaker, speaker)[:14])
        parts.append(f'<text x="2" y="{y_source + 14}" class="label">{name} source</text>')
        parts.append(f'<text x="2" y="{y_dub + 14}" class="label">dub</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(project: Project) -> str:
    transcript = project.require_transcript()
    duration = project.media.output_duration_s if project.media else transcript.duration_s
    labels = {speaker.id: speaker.label for speaker in project.speakers}
    sections = []
    for target in sorted(
        name.removeprefix("fit:") for name in project.stages if name.startswith("fit:")
    ):
        path = project.path(f"report/timing.{target}.json")
        if not path.exists():
            continue
        report = json.loads(path.read_text(encoding="utf-8"))
        totals = report["totals"]
        mix = project.stages.get(f"mix:{target}")
        loudness = ""
        if mix is not None:
            info = mix.info
            loudness = (
                f"<p>Loudness: source {info.source_lufs} LUFS → output "
                f"{info.output_lufs} LUFS (target {info.target_lufs}), true peak "
                f"{info.true_peak_dbtp} dBTP, ducking {info.ducking}.</p>"
            )
        rows = "".join(
            "<tr{cls}><td>{id}</td><td>{speaker}</td><td>{slot}</td><td>{dub}</td>"
            "<td>{speed:.2f}x</td><td>{shift:+.2f}</td><td>{source}</td><td>{text}</td>"
            "<td>{heard}</td><td>{cer}</td><td>{similarity}</td><td>{takes}</td>"
            "<td>{violations}</td></tr>".format(
                cls=(
                    ' class="flagged"'
                    if _flagged(line)
                    else ' class="bad"'
                    if line["violations"]
                    else ""
                ),
                heard=html.escape((line.get("check") or {}).get("heard", "")),
                cer=_number((line.get("check") or {}).get("cer")),
                similarity=_number((line.get("check") or {}).get("similarity")),
                takes=(line.get("check") or {}).get("takes", ""),
                id=html.escape(line["id"]),
                speaker=html.escape(line["speaker"]),
                slot=f"{line['slot_start_s']:.2f}–{line['slot_end_s']:.2f}",
                dub=f"{line['start_s']:.2f}–{line['end_s']:.2f}",
                speed=line["speed"],
                shift=line["shift_s"],
                source=html.escape(line["source"]),
                text=html.escape(line["text"]),
                violations=html.escape(
                    "; ".join(
                        line["violations"] + (line.get("check") or {}).get("problems", [])
                        if _flagged(line)
                        else line["violations"]
                    )
                ),
            )
            for line in report["lines"]
        )
        checked = f"<p>{html.escape(check_summary(report))}.</p>" if "checked" in totals else ""
        lipsync = _lip_sync_table(project, target)
        sections.append(
            f"<h2>{html.escape(target)}</h2>"
            f"<p>{totals['lines']} lines; {totals['within_10_percent']} within ±10% of their "
            f"slot; fastest {totals['max_speed']:.2f}x; {totals['sped_up']} sped up; "
            f"{totals['borrowed']} started early; {totals['overflowing']} ran over; "
            f"{totals['late']} late.</p>{checked}{loudness}"
            f'<div class="timeline">{_timeline(report, duration, labels)}</div>'
            "<table><tr><th>line</th><th>speaker</th><th>slot (s)</th><th>dub (s)</th>"
            "<th>speed</th><th>shift (s)</th><th>source</th><th>dub</th><th>heard</th>"
            "<th>CER</th><th>similarity</th><th>takes</th><th>problems</th>"
            f"</tr>{rows}</table>{lipsync}"
        )
    timings = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{record.seconds:.2f}</td></tr>"
        for name, record in project.stages.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Octavia report: {
        html.escape(Path(project.source_path).name)
    }</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
.timeline {{ overflow-x: auto; border: 1px solid #ccc; margin: 1em 0; }}
.source {{ fill: #9ecae1; }} .tick {{ stroke: #eee; }} .label {{ font-size: 11px; fill: #555; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: 2px 6px; }}
tr.bad td {{ background: #fde0dd; }} tr.flagged td {{ background: #f4a6a6; }}
</style></head><body>
<h1>{html.escape(Path(project.source_path).name)}</h1>
<p>Spoken language: {html.escape(transcript.language)}; {len(transcript.segments)} lines;
{duration:.1f} s. Dub colours: green natural speed, yellow up to 1.15x, orange faster,
red a rule broken or a line still unclear after its takes (its row red in the table).</p>
{"".join(sections)}
<h2>Stages</h2><table><tr><th>stage</th><th>seconds</th></tr>{timings}</table>
</body></html>
"""


def _lip_sync_table(project: Project, target: str) -> str:
    """The lip-sync stage's shots: which were re-drawn, and why the others were left."""
    record = project.stages.get(f"lipsync:{target}")
    if record is None:
        return ""
    rows = "".join(
        "<tr{cls}><td>{start:.2f}–{end:.2f}</td><td>{status}</td><td>{speaker}</td>"
        "<td>{frames}</td></tr>".format(
            cls=' class="bad"' if shot["status"] == "failed" else "",
            start=shot["start_s"], end=shot["end_s"], status=html.escape(shot["status"]),
            speaker=html.escape(shot.get("speaker", "")),
            frames=f"{shot.get('frames_synced', 0)} of {shot['frames']}",
        )
        for shot in record.info.shots
    )  # fmt: skip
    return (
        f"<h3>Lip-sync</h3><p>{record.info.synced_shots} of {len(record.info.shots)} shot(s) "
        f"re-drawn by {html.escape(record.info.engine)}; the others are left as they were.</p>"
        "<table><tr><th>shot (s)</th><th>status</th><th>speaker</th><th>frames re-drawn</th>"
        f"</tr>{rows}</table>"
    )


def write_report(project: Project) -> Path:
    path = project.path(REPORT)
    atomic_write_bytes(path, render(project).encode("utf-8"))
    return path


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def check_summary(report: dict) -> str:
    """The check's line for the end of a run ("es: 48 lines checked, 3 spoken again, 1
    still unclear: s0031"), from a language's timing report once the check stage ran."""
    t = report["totals"]
    flagged = t.get("flagged_lines", [])
    shown = ", ".join(flagged[:8]) + (f" and {len(flagged) - 8} more" if len(flagged) > 8 else "")
    return f"{report['language']}: {t['checked']} lines checked, {t['retaken']} spoken again, " + (
        f"{len(flagged)} still unclear: {shown}" if flagged else "all clear"
    )


def timing_summary(report: dict) -> str:
    """One line for the end of a run, from a language's timing report (the fit stage's)."""
    t = report["totals"]
    return (
        f"{report['language']}: {t['lines']} lines, {t['within_10_percent']} within ±10% of "
        f"their slot, fastest {t['max_speed']:.2f}x, {t['sped_up']} sped up, "
        f"{t['borrowed']} started early, {t['overflowing']} ran over, {t['late']} late"
        + (
            f", picture slowed under {t['video_stretched']} (+{t['video_added_s']:.2f} s)"
            if t.get("video_stretched")
            else ""
        )
        + (f", {t['from_source']} in their source words" if t.get("from_source") else "")
        + (f", {t['merged']} said by a neighbouring line" if t.get("merged") else "")
    )
