"""The history file and the trend page: newly failing / passing, per driver and OS build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.certify.bundle import finish_bundle
from harness.cli import main
from harness.errors import InputError
from harness.history.records import read_history
from harness.history.trends import build_groups
from tests.certify.helpers import make_items
from tests.support.browser import dump_dom, find_chromium, screenshot

needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (Debian package 'chromium')"
)
PROBE = {"name": "probe", "sha256": "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
         "version": None}


def _night(day: int, outcomes: dict[str, str], build: str = "22631.2861",
           matched: list[str] | None = None) -> dict:
    return {
        "format": 1, "run_id": f"run{day}", "created": f"2026-11-{day:02d}T02:00:00Z",
        "night": f"2026-11-{day:02d}", "bundle": f"nightly/{day}/bundle", "driver": PROBE,
        "items": [{"id": f"{name}[win11]", "scenario": name, "target": "win11",
                   "os_build": build, "outcome": outcome} for name, outcome in outcomes.items()],
        "errata": {"entries": ["rule=PC001 scenario=* target=win11* os_build=*"],
                   "matched": matched or []},
    }


@pytest.fixture
def history(tmp_path: Path) -> Path:
    nights = [
        _night(17, {"connect-pend": "passed", "txn-abort": "failed", "closure": "passed",
                    "reauth": "known"}),
        _night(18, {"connect-pend": "passed", "txn-abort": "failed", "closure": "flaky",
                    "reauth": "known"}),
        _night(19, {"connect-pend": "passed", "txn-abort": "failed", "closure": "passed",
                    "reauth": "known"}),
        _night(20, {"connect-pend": "failed", "txn-abort": "passed", "closure": "passed",
                    "reauth": "known"}),
        _night(20, {"connect-pend": "passed", "txn-abort": "passed"}, build="26100.1"),
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(n) + "\n" for n in nights))
    return path


def test_groups_are_per_driver_build_and_os_build(history: Path) -> None:
    groups = build_groups(read_history(history))
    assert [g.key for g in groups] == [("probe sha256:ab12cd34ef56ab12", "22631.2861"),
                                      ("probe sha256:ab12cd34ef56ab12", "26100.1")]
    win11 = groups[0]
    assert [n.night for n in win11.nights] == ["2026-11-17", "2026-11-18", "2026-11-19",
                                               "2026-11-20"]
    assert win11.nights[1].counts["flaky"] == 1 and win11.nights[1].counts["known"] == 1
    assert win11.newly_failing() == [("connect-pend[win11]", "passed", "failed")]
    assert win11.newly_passing() == [("txn-abort[win11]", "failed", "passed")]
    assert groups[1].newly_failing() == [] and groups[1].newly_passing() == []


def test_history_add_records_a_bundle_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = make_items(tmp_path / "work")
    finish_bundle(tmp_path / "bundle", items, vm="sim", driver=None, root=tmp_path)
    file = tmp_path / "h" / "history.jsonl"
    assert main(["history", "add", str(tmp_path / "bundle"), "--file", str(file)]) == 0
    assert main(["history", "add", str(tmp_path / "bundle.tar.gz"), "--file", str(file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{file}: recorded the run of ")
    assert out[0].endswith("(1 failed, 1 flaky, 1 passed)")
    assert "already recorded" in out[1]  # the archive is the same run
    (record,) = read_history(file)
    assert record["driver"] is None
    assert {i["id"]: (i["outcome"], i["os_build"]) for i in record["items"]} == {
        "connect-ok[sim]": ("passed", "engine-model"),
        "connect-leak[sim]": ("failed", "engine-model"),
        "flaky[sim]": ("flaky", "engine-model")}


def test_a_broken_history_line_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(_night(17, {"a": "passed"})) + "\n{not json\n")
    with pytest.raises(InputError, match=r"history.jsonl:2: expected one JSON object per line"):
        read_history(path)


def test_history_report_writes_a_self_contained_page(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trends.html"
    assert main(["history", "report", "--file", str(history), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("newly failing: connect-pend[win11] (probe sha256:ab12cd34ef56ab12, 22631.2861): "
            "passed -> failed") in printed
    page = out.read_text()
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"https?://", page)  # no CDN, no remote asset
    assert page.count("<svg") == 2  # one chart per group
    assert page.count('<rect x=') >= 9  # stacked bars


@needs_chromium
def test_trend_page_renders_in_chromium(history: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "trends.html"
    assert main(["history", "report", "--file", str(history), "--out", str(out)]) == 0
    png = screenshot(out, tmp_path / "trends.png")
    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20  # text, bars and lines, not a blank page
    # The bar colours are really painted: green for passed, red for failed.
    painted = {rgb for _n, rgb in colours}
    assert (0x2E, 0x8B, 0x57) in painted and (0xC0, 0x15, 0x0F) in painted
    dom = dump_dom(out, tmp_path)
    failing = dom.split('<ul class="newly-failing">', 1)[1].split("</ul>", 1)[0]
    assert "<code>connect-pend[win11]</code> passed → failed" in failing
    passing = dom.split('<ul class="newly-passing">', 1)[1].split("</ul>", 1)[0]
    assert "<code>txn-abort[win11]</code> failed → passed" in passing
    assert "Newly failing since 2026-11-19" in dom
