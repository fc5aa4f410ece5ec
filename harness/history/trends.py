"""Trends over the history file, and the trend page that shows them.

Runs are grouped per driver build and OS build: a run that covered several
OS builds (a pool of profiles) contributes to one group per build. Within a
group, the last run is compared with the one before it: items that are red
now and were not are *newly failing*; items that are green now (passed or
flaky) and were red or known are *newly passing*.

The page is one offline, self-contained HTML file (inline CSS and SVG, no
script): per group a stacked bar per night, the counts as a table, and the
newly failing and newly passing items.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.verdict import OUTCOMES, RED

GREEN = frozenset({"passed", "flaky"})
NO_DRIVER = "no driver (engine model callout)"


@dataclass
class Night:
    """One run's items within a group."""

    night: str
    created: str
    outcomes: dict[str, str]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts


@dataclass
class Group:
    """The runs of one driver build on one OS build."""

    driver: str
    os_build: str
    nights: list[Night] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.driver, self.os_build

    def newly_failing(self) -> list[tuple[str, str, str]]:
        """(item, outcome before, outcome now) of items red now and not red before."""
        if len(self.nights) < 2:
            return []
        now, before = self.nights[-1].outcomes, self.nights[-2].outcomes
        return [
            (item, before.get(item, "new"), outcome)
            for item, outcome in sorted(now.items())
            if outcome in RED and before.get(item) not in RED
        ]

    def newly_passing(self) -> list[tuple[str, str, str]]:
        """(item, outcome before, outcome now) of items green now that were red or known."""
        if len(self.nights) < 2:
            return []
        now, before = self.nights[-1].outcomes, self.nights[-2].outcomes
        return [
            (item, before[item], outcome)
            for item, outcome in sorted(now.items())
            if outcome in GREEN and before.get(item) in (RED | {"known"})
        ]


def driver_label(driver: dict[str, Any] | None) -> str:
    """A driver build: its name and SHA-256 (or version), or the model's callout."""
    if not driver:
        return NO_DRIVER
    name = driver.get("name") or "driver"
    if driver.get("sha256"):
        return f"{name} sha256:{str(driver['sha256'])[:16]}"
    if driver.get("version"):
        return f"{name} {driver['version']}"
    return str(name)


def build_groups(records: Iterable[dict[str, Any]]) -> list[Group]:
    """Groups in order of first appearance; nights in history order."""
    groups: dict[tuple[str, str], Group] = {}
    for record in records:
        label = driver_label(record.get("driver"))
        by_build: dict[str, dict[str, str]] = {}
        for item in record.get("items", []):
            build = str(item.get("os_build") or "unknown")
            by_build.setdefault(build, {})[str(item.get("id"))] = str(item.get("outcome"))
        for build, outcomes in by_build.items():
            group = groups.setdefault((label, build), Group(label, build))
            group.nights.append(Night(str(record.get("night", "?")),
                                      str(record.get("created", "")), outcomes))
    return list(groups.values())


# -- the page ---------------------------------------------------------------------

#: Bottom to top in a bar; colours match the run report's badges.
STACK = ("passed", "flaky", "known", "failed", "error", "skipped")
COLOURS = {
    "passed": "#2e8b57", "flaky": "#7b5cc4", "known": "#d9a400",
    "failed": "#c0150f", "error": "#7a0b07", "skipped": "#9aa0a6",
}
BAR_W, GAP, CHART_H, LABEL_H, LEFT = 28, 14, 140, 34, 36

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d1d1f}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}
.meta{color:#666;margin-bottom:16px}section{border-top:1px solid #ddd;padding-top:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:2px 8px;
text-align:right}th:first-child,td:first-child{text-align:left}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:10px;
height:10px;margin-right:4px;vertical-align:middle}
ul.newly-failing li{color:#c0150f}ul.newly-passing li{color:#2e8b57}
.none{color:#666;font-style:italic}svg text{font-size:10px;fill:#444}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def bar_chart(nights: list[Night]) -> str:
    """An inline SVG: one stacked bar per night, scaled to the largest night."""
    peak = max((sum(n.counts.values()) for n in nights), default=0) or 1
    width = LEFT + len(nights) * (BAR_W + GAP) + GAP
    height = CHART_H + LABEL_H
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
           f'<line x1="{LEFT - 4}" y1="{CHART_H}" x2="{width}" y2="{CHART_H}" stroke="#999"/>',
           f'<text x="2" y="12">{peak}</text><text x="2" y="{CHART_H}">0</text>']
    for i, night in enumerate(nights):
        x = LEFT + GAP + i * (BAR_W + GAP)
        y = float(CHART_H)
        counts = night.counts
        for outcome in STACK:
            n = counts.get(outcome, 0)
            if not n:
                continue
            h = CHART_H * n / peak
            y -= h
            out.append(f'<rect x="{x}" y="{y:.1f}" width="{BAR_W}" height="{h:.1f}" '
                       f'fill="{COLOURS[outcome]}"><title>{_esc(night.night)}: {n} '
                       f"{outcome}</title></rect>")
        out.append(f'<text x="{x + BAR_W / 2:.0f}" y="{CHART_H + 14}" text-anchor="middle">'
                   f"{_esc(night.night[5:] or night.night)}</text>")
    out.append("</svg>")
    return "".join(out)


def _items(css: str, title: str, rows: list[tuple[str, str, str]]) -> str:
    if not rows:
        return f'<h3>{_esc(title)}</h3><p class="none">none</p>'
    lis = "".join(f"<li><code>{_esc(item)}</code> {_esc(before)} → {_esc(now)}</li>"
                  for item, before, now in rows)
    return f'<h3>{_esc(title)}</h3><ul class="{css}">{lis}</ul>'


def _section(group: Group) -> str:
    header = "".join(f"<th>{o}</th>" for o in STACK)
    rows = "".join(
        f"<tr><td>{_esc(n.night)}</td>"
        + "".join(f"<td>{n.counts.get(o, 0)}</td>" for o in STACK) + "</tr>"
        for n in group.nights
    )
    since = group.nights[-2].night if len(group.nights) > 1 else None
    suffix = f" since {since}" if since else " (no previous run)"
    return (
        f'<section data-driver="{_esc(group.driver)}" data-os-build="{_esc(group.os_build)}">'
        f"<h2>{_esc(group.driver)} · OS build {_esc(group.os_build)}</h2>"
        f"{bar_chart(group.nights)}"
        f"<table><tr><th>night</th>{header}</tr>{rows}</table>"
        + _items("newly-failing", "Newly failing" + suffix, group.newly_failing())
        + _items("newly-passing", "Newly passing" + suffix, group.newly_passing())
        + "</section>"
    )


def render_trends(groups: Iterable[Group], title: str = "callout-harness trends") -> str:
    groups = list(groups)
    legend = "".join(f'<span><i style="background:{COLOURS[o]}"></i>{o}</span>' for o in STACK)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = "".join(_section(g) for g in groups) or '<p class="none">No runs recorded yet.</p>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1><div class=\"meta\">callout-harness {__version__} · {stamp} · "
        f"{len(groups)} driver/OS build group(s)</div><p class=\"legend\">{legend}</p>"
        f"{body}</body></html>"
    )


def write_trends(path: str | Path, groups: Iterable[Group]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_trends(groups), encoding="utf-8")
    return out
