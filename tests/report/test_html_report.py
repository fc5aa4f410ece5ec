"""The HTML run report: self-contained, offline, and it renders in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.report import ReportItem, build_timeline, write_html
from tests.support.browser import dump_dom, find_chromium, screenshot
from tests.support.tracebuild import TraceBuilder

needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (Debian package 'chromium')"
)


def _connection_trace() -> tuple[list[dict], int]:
    tb = TraceBuilder()
    tb.add("session_open", session=1, dynamic=True, txn_wait_ms=0, kernel=False, status="STATUS_SUCCESS")
    tb.add("txn_begin", session=1, read_only=False, waited_ms=0, status="STATUS_SUCCESS")
    tb.add("object_add", session=1, type="filter", key="f1", lifetime="dynamic",
           layer="ALE_AUTH_CONNECT_V4", status="STATUS_SUCCESS")
    tb.add("txn_commit", session=1, status="STATUS_SUCCESS")
    tb.add("policy_change", layer="ALE_AUTH_CONNECT_V4")
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=5, proto="tcp", dir="out", can_pend=True)
    tb.add("pend_operation", id=c, ctx="c1", status="STATUS_SUCCESS")
    tb.done(c, "BLOCK", True)
    tb.add("complete_operation", ctx="c1", dt=0.05)
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=5, proto="tcp", reauth=True)
    tb.done(c, "PERMIT")
    c = tb.classify(layer="ALE_AUTH_CONNECT_V4", endpoint=6, proto="udp", can_pend=True)
    leak = tb.add("pend_operation", id=c, ctx="c2", status="STATUS_SUCCESS")
    tb.done(c, "BLOCK", True)
    return tb.events, leak


def test_timeline_lanes_arrows_bars() -> None:
    events, leak = _connection_trace()
    tl = build_timeline(events, {leak: ["PC001"]})
    assert tl.lanes[:3] == ["BFE session 1", "endpoint 5 tcp out", "endpoint 6 udp"]
    assert len(tl.arrows) == 1  # pend c1 -> complete c1
    assert [b.css for b in tl.bars] == ["txn commit"]
    assert [m.rules for m in tl.marks if m.rules] == [["PC001"]]
    assert len(tl.rules_x) == 1


def test_timeline_truncates_but_keeps_evidence() -> None:
    events = [{"seq": i, "t": 0, "ev": "classify", "id": i, "endpoint": i % 7} for i in range(1, 5001)]
    tl = build_timeline(events, {4999: ["EP006"]}, max_marks=100)
    assert tl.truncated == 4899
    assert any(m.rules == ["EP006"] for m in tl.marks)


def test_page_is_self_contained(tmp_path: Path) -> None:
    events, leak = _connection_trace()
    page = write_html(tmp_path / "report.html", [
        ReportItem("ok-scenario", "sim", "passed", seed=1, events=events),
        ReportItem("bad <scenario>", "sim", "failed", seed=2, events=events, violations=[
            {"rule": "PC001", "party": "driver", "severity": "error",
             "message": "pend 'c2' never completed", "events": [leak]},
        ]),
    ])
    text = page.read_text()
    assert not re.search(r"(src|href)=\"https?://", text)  # no CDN, no remote asset
    assert "<script" not in text
    assert "bad &lt;scenario&gt;" in text  # names are escaped
    assert text.count("<details") == 2
    assert 'id="e' + str(leak) + '"' in text


@needs_chromium
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    from PIL import Image

    events, leak = _connection_trace()
    page = write_html(tmp_path / "report.html", [
        ReportItem("connect-pend-leak", "sim", "failed", seed=2, events=events, violations=[
            {"rule": "PC001", "party": "driver", "severity": "error",
             "message": "pend 'c2' never completed", "events": [leak]},
        ]),
    ])
    dom = dump_dom(page, tmp_path)
    assert "connect-pend-leak" in dom and "<svg" in dom
    shot = screenshot(page, tmp_path / "report.png")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1300, 900)
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the page rendered nearly blank"
    # the violation halo is drawn in red: some strongly red pixels exist
    red = sum(n for n, (r, g, b) in colours if r > 180 and g < 80 and b < 80)
    assert red > 20
