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


def _run(name: str, out: Path, **options: object):  # type: ignore[no-untyped-def]
    from harness.scenario.loader import load_scenario
    from harness.session import HarnessSession, SessionOptions

    session_options = SessionOptions(out_dir=out, **options)  # type: ignore[arg-type]
    record = HarnessSession(session_options).run_item(
        load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / f"{name}.toml"))
    return session_options, record


def test_set_up_collapses_into_one_band_and_the_scenario_comes_first(tmp_path: Path) -> None:
    _, record = _run("connect-pend-permit", tmp_path)
    assert record.setup_events and record.setup_events > 50
    from harness.trace.reader import TraceReader

    events = list(TraceReader(record.trace))
    tl = build_timeline(events, {}, setup=record.setup_events)
    setup = [b for b in tl.bands if b.css == "setup"]
    assert len(setup) == 1 and setup[0].label == f"set-up: {record.setup_events} events"
    assert "20 callouts registered" in setup[0].detail
    # no mark of the set-up is drawn; the first mark is the scenario's first classify
    first = min(tl.marks, key=lambda m: m.x)
    assert first.ev["ev"] == "classify" and first.x >= setup[0].x2
    # and without the target's word, the trace's own shape finds the same band
    assert build_timeline(events, {}).bands[0].label == setup[0].label
    assert tl.ticks and tl.ticks[0][1].startswith("t=")


def test_a_long_trace_elides_so_the_first_evidence_is_in_view() -> None:
    events = [{"seq": i, "t": i / 1000, "ev": "classify", "id": i, "endpoint": 1}
              for i in range(1, 401)]
    tl = build_timeline(events, {380: ["EP006"]})
    halo = [m for m in tl.marks if m.rules]
    assert halo and halo[0].x < 90
    gaps = [b for b in tl.bands if b.css == "gap"]
    assert gaps and gaps[0].label.endswith("events")
    assert all("t=" in d for g in gaps for d in g.detail)


@needs_chromium
def test_expanded_passing_and_failing_rows_in_chromium(tmp_path: Path) -> None:
    """Screenshots of an expanded failing row and an expanded passing row."""
    from PIL import Image

    from harness.report.failure import write_run_report
    from harness.report.html import LABEL_W
    from harness.session import report_header

    options, bad = _run("closure-udp-many-peers", tmp_path / "bad",
                        callout="mutant:forgets_complete")
    _, good = _run("connect-pend-permit", tmp_path / "good")
    _, negative = _run("client-leaves-transaction-open", tmp_path / "neg")
    page = write_run_report(tmp_path, [("a", "failed", bad), ("b", "passed", good),
                                       ("c", "passed", negative)], **report_header(options))
    html_text = page.read_text()
    assert "callout mutant:forgets_complete" in html_text  # the header names the callout
    assert "TX008 (expected)" in html_text
    assert html_text.count('class="lanelabels"') == 3  # labels outside the scrolling lanes
    assert "following from them:" in html_text  # knock-on failures under the rules
    # the failing row's first evidence is within the first screen of its timeline
    first_halo = re.search(r'class="halo" cx="(\d+)"', html_text)
    assert first_halo and LABEL_W + int(first_halo.group(1)) < 1300 - 60

    # expand the passing rows as a reader would (failing rows open by themselves)
    expanded = html_text.replace('data-outcome="passed">', 'data-outcome="passed" open>')
    page.write_text(expanded)
    dom = dump_dom(page, tmp_path)
    assert dom.count("set-up (") >= 3  # each row's set-up band, as Chromium parsed it
    shot = screenshot(page, tmp_path / "rows.png", size=(1300, 2600))
    image = Image.open(shot).convert("RGB")
    width, height = image.size
    # red evidence halos of the failing row are drawn in the first screen width
    top = image.crop((0, 0, width, 900))
    top_colours = top.getcolors(maxcolors=1 << 20) or []
    red = sum(n for n, (r, g, b) in top_colours if r > 200 and g < 60 and b < 60)
    assert red > 40
    # the passing rows' timelines are drawn too: blue classify marks further down
    lower = image.crop((0, 900, width, height))
    lower_colours = lower.getcolors(maxcolors=1 << 20) or []
    blue = sum(n for n, (r, g, b) in lower_colours if b > 180 and r < 90 and 90 < g < 150)
    assert blue > 40
