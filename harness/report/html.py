"""The run report: one self-contained HTML page, a row per scenario and target.

Expanding a row shows the scenario's timeline as inline SVG (endpoints and
BFE sessions as lanes; classify, pend -> complete and closure as marks and
arrows; transactions as bars; violations ringed in red with their rule IDs)
and the violations with their evidence. Everything is inline: the page works
offline, from a file, with no CDN and no script required.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.contract.report import format_event
from harness.report.timeline import Timeline, build_timeline
from harness.trace.events import Event
from harness.trace.reader import TraceReader

LANE_H = 26
LABEL_W = 260
TOP = 24


@dataclass
class ReportItem:
    """One row: a scenario run on one target."""

    name: str
    target: str
    outcome: str  # passed | failed | error | known | flaky | skipped
    violations: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    duration_s: float = 0.0
    trace_path: str | None = None
    message: str = ""
    events: list[Event] | None = None
    expected_rules: list[str] = field(default_factory=list)
    #: what went wrong, one line each (rule failures, then knock-on ones)
    failures: list[str] = field(default_factory=list)
    #: how many leading events are the harness's set-up (None: find out from the trace)
    setup_events: int | None = None


_RULE_LINE = re.compile(r"^[A-Z]{2}\d{3} ")


def split_failures(failures: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(rule failures, knock-on failures): a step's outcome or a count that is
    off usually follows from a broken rule, so it is listed under the rules."""
    root = [f for f in failures if _RULE_LINE.match(f)]
    return root, [f for f in failures if not _RULE_LINE.match(f)]


def rules_text(violations: tuple[dict[str, Any], ...] | list[dict[str, Any]],
               expected: tuple[str, ...] | list[str]) -> str:
    """``PC001 EP009 (expected)``: the rules broken, expected ones marked."""
    rules = sorted({str(v["rule"]) for v in violations})
    return " ".join(f"{r} (expected)" if r in expected else r for r in rules)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _load_events(item: ReportItem, limit: int = 20000) -> list[Event]:
    if item.events is not None:
        return item.events
    if not item.trace_path or not Path(item.trace_path).is_file():
        return []
    out: list[Event] = []
    try:
        for ev in TraceReader(item.trace_path):
            out.append(ev)
            if len(out) >= limit:
                break
    except Exception:
        pass
    return out


def render_svg(tl: Timeline) -> str:
    """The timeline: a lane-label column that stays put and the lanes, which
    scroll sideways under it."""
    if not tl.marks and not tl.bars and not tl.bands:
        return '<p class="empty">No events.</p>'
    step = 16 if tl.width <= 250 else max(4, 4000 // max(tl.width, 1))
    width = step * (tl.width + 1) + 40
    height = TOP + LANE_H * max(len(tl.lanes), 1) + 10

    def cx(x: int) -> int:
        return step * x + step // 2

    def cy(lane: int) -> int:
        return TOP + lane * LANE_H + LANE_H // 2

    labels = [f'<svg class="lanelabels" xmlns="http://www.w3.org/2000/svg" width="{LABEL_W}" '
              f'height="{height}" viewBox="0 0 {LABEL_W} {height}">'
              f'<text class="axislabel" x="6" y="{TOP - 8}">time (event order)</text>']
    out = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for i, label in enumerate(tl.lanes):
        y = TOP + i * LANE_H
        out.append(f'<rect class="lane{i % 2}" x="0" y="{y}" width="{width}" height="{LANE_H}"/>')
        labels.append(f'<rect class="lane{i % 2}" x="0" y="{y}" width="{LABEL_W}" '
                      f'height="{LANE_H}"/><text class="lanelabel" x="6" y="{y + 17}">'
                      f"{_esc(label[:40])}<title>{_esc(label)}</title></text>")
    labels.append("</svg>")
    for x, label in tl.ticks:
        out.append(f'<line class="tick" x1="{cx(x)}" y1="{TOP - 4}" x2="{cx(x)}" y2="{TOP}"/>'
                   f'<text class="ticklabel" x="{cx(x) + 2}" y="{TOP - 12}">{_esc(label)}</text>')
    for band in tl.bands:
        x1, x2 = step * band.x1, step * (band.x2 + 1)
        tip = _esc("; ".join([band.label, *band.detail]))
        out.append(f'<g class="band {_esc(band.css)}"><title>{tip}</title>'
                   f'<rect x="{x1 + 1}" y="{TOP}" width="{x2 - x1 - 2}" '
                   f'height="{height - TOP - 10}" rx="3"/>')
        if band.css == "setup":
            room = max((height - TOP - 16) // 13, 1)
            lines = [band.label.replace(": ", " (") + ")"]
            detail = list(band.detail)
            lines += detail[:room - 1]  # the rest is in the band's tooltip
            for n, line in enumerate(lines):
                out.append(f'<text class="bandlabel" x="{x1 + 4}" y="{TOP + 14 + 13 * n}">'
                           f"{_esc(line)}</text>")
        else:
            out.append(f'<text class="gaplabel" x="{x1 + step // 2}" y="{TOP - 12}">…</text>')
        out.append("</g>")
    for x, label in tl.rules_x:
        out.append(
            f'<line class="policy" x1="{cx(x)}" y1="{TOP}" x2="{cx(x)}" y2="{height}">'
            f"<title>{_esc(label)}</title></line>"
        )
    for bar in tl.bars:
        x1, x2 = cx(bar.x1), cx(bar.x2)
        out.append(
            f'<rect class="{_esc(bar.css)}" x="{x1}" y="{cy(bar.lane) - 7}" '
            f'width="{max(x2 - x1, 3)}" height="14" rx="3"><title>transaction: '
            f"{_esc(bar.label)}</title></rect>"
        )
    for a in tl.arrows:
        out.append(
            f'<path class="arrow {_esc(a.css)}" d="M{cx(a.x1)},{cy(a.lane1)} '
            f'C{cx(a.x1)},{cy(a.lane1) - 12} {cx(a.x2)},{cy(a.lane2) - 12} '
            f'{cx(a.x2)},{cy(a.lane2)}" marker-end="url(#arrowhead)"/>'
        )
    label_end: dict[int, int] = {}  # lane -> x where its last rule label ends
    for m in tl.marks:
        x, y = cx(m.x), cy(m.lane)
        tip = _esc(format_event(m.ev))
        seq = m.ev.get("seq")
        shape = _shape(m.kind, x, y)
        out.append(f'<g class="mark {_esc(m.css)}" id="e{_esc(seq)}"><title>{tip}</title>{shape}')
        if m.rules:
            out.append(f'<circle class="halo" cx="{x}" cy="{y}" r="8"/>')
            text = ",".join(sorted(set(m.rules)))
            if x >= label_end.get(m.lane, -1):  # labels never overprint each other
                out.append(f'<text class="rule" x="{x + 6}" y="{y - 8}">{_esc(text)}</text>')
                label_end[m.lane] = x + 6 + 7 * len(text)
        out.append("</g>")
    out.append(
        '<defs><marker id="arrowhead" markerWidth="6" markerHeight="6" refX="5" refY="3" '
        'orient="auto"><path d="M0,0 L6,3 L0,6 z" class="arrowhead"/></marker></defs>'
    )
    out.append("</svg>")
    return ('<div class="tl">' + "".join(labels) + '<div class="tlscroll">' + "".join(out)
            + "</div></div>")


def _shape(kind: str, x: int, y: int) -> str:
    if kind in ("pend_operation", "complete_operation", "pend_classify", "complete_classify"):
        return f'<path d="M{x},{y - 5} L{x + 5},{y} L{x},{y + 5} L{x - 5},{y} z"/>'
    if kind in ("clone", "inject", "inject_complete"):
        return f'<path d="M{x - 4},{y + 4} L{x + 4},{y + 4} L{x},{y - 5} z"/>'
    if kind in ("alloc", "free", "queue", "object_add", "object_delete"):
        return f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8"/>'
    if kind == "classify_done":
        return f'<circle cx="{x}" cy="{y}" r="3"/>'
    return f'<circle cx="{x}" cy="{y}" r="5"/>'


_CSS = (Path(__file__).with_name("report.css")).read_text(encoding="utf-8")


def _row(item: ReportItem) -> str:
    evidence: dict[int, list[str]] = {}
    for v in item.violations:
        for seq in v.get("events", []):
            evidence.setdefault(int(seq), []).append(str(v.get("rule")))
    events = _load_events(item)
    tl = build_timeline(events, evidence, setup=item.setup_events)
    open_attr = " open" if item.outcome in ("failed", "error") else ""
    rules = rules_text(item.violations, item.expected_rules)
    parts = [
        f'<details class="item" data-outcome="{_esc(item.outcome)}"{open_attr}>',
        f'<summary><span class="badge {_esc(item.outcome)}">{_esc(item.outcome)}</span>'
        f'<span class="name">{_esc(item.name)}</span>'
        f'<span class="target">{_esc(item.target)}</span>'
        f"<span>{len(item.violations)} violation(s) {_esc(rules)}</span>"
        f"<span>seed {_esc(item.seed)}</span><span>{item.duration_s:.2f} s</span></summary>",
        '<div class="body">',
    ]
    if item.message:
        parts.append(f"<p><code>{_esc(item.message)}</code></p>")
    if item.failures:
        root, knock_on = split_failures(tuple(item.failures))
        parts.append('<ul class="failures">' + "".join(f"<li>{_esc(f)}</li>" for f in root))
        if root and knock_on:
            parts.append("<li>following from them:<ul>")
        parts.append("".join(f"<li>{_esc(f)}</li>" for f in knock_on))
        parts.append("</ul></li></ul>" if root and knock_on else "</ul>")
    if item.trace_path:
        trace = Path(item.trace_path)
        href = trace.as_uri() if trace.is_absolute() else item.trace_path
        parts.append(
            f'<p>trace: <a href="{_esc(href)}"><code>{_esc(item.trace_path)}</code></a></p>'
        )
    parts.append(render_svg(tl))
    if tl.truncated:
        parts.append(f"<p>{tl.truncated} events not drawn (evidence events always are).</p>")
    if item.violations:
        by_seq = {e.get("seq"): e for e in events}
        parts.append(
            '<table class="v"><tr><th>rule</th><th>party</th><th>severity</th>'
            "<th>message</th><th>evidence</th></tr>"
        )
        for v in item.violations:
            ev_lines = "<br>".join(
                f'<a href="#e{_esc(s)}"><code>'
                f"{_esc(format_event(by_seq[s]) if s in by_seq else f'#{s}')}</code></a>"
                for s in v.get("events", [])
            )
            expected = " (expected)" if v.get("rule") in item.expected_rules else ""
            parts.append(
                f"<tr><td>{_esc(v.get('rule'))}{expected}</td><td>{_esc(v.get('party'))}</td>"
                f"<td>{_esc(v.get('severity'))}</td><td>{_esc(v.get('message'))}</td>"
                f"<td>{ev_lines}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</div></details>")
    return "".join(parts)


def render_html(
    items: Iterable[ReportItem], title: str = "callout-harness run", **meta: object
) -> str:
    rows = list(items)
    counts: dict[str, int] = {}
    for item in rows:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    summary = "".join(
        f'<span class="{_esc(k)}">{_esc(k)}: {n}</span>' for k, n in sorted(counts.items())
    )
    meta_text = " · ".join(f"{_esc(k)} {_esc(v)}" for k, v in meta.items() if v is not None)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    legend = (
        '<p class="legend"><span>● classify</span><span>● permit / ● block (return)</span>'
        "<span>▯ set-up / … events not drawn</span><span>◆ pend → complete</span>"
        "<span>▲ clone / inject</span><span>■ alloc / queue / "
        "object</span><span>▬ transaction</span><span>┆ policy change</span>"
        '<span style="color:#c0150f">◯ violation evidence</span></p>'
    )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1><div class=\"meta\">callout-harness {__version__} · {stamp}"
        f"{' · ' + meta_text if meta_text else ''}</div>"
        f'<div class="summary">{summary}</div>{legend}'
        + "".join(_row(item) for item in rows)
        + "</body></html>"
    )


def write_html(path: str | Path, items: Iterable[ReportItem], **kw: Any) -> Path:
    """Write the page whole or not at all (a temporary file renamed into place)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(items, **kw)
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out
