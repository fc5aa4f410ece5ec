"""``vm list`` and ``vm gc`` see only harness-tagged domains; gc removes the
stale ones with their files and nothing else."""

from __future__ import annotations

import argparse
import io
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.vm import cli
from harness.vm.domainxml import render_domain
from harness.vm.gc import collect_garbage, list_domains
from harness.vm.metadata import LeaseRecord
from harness.vm.profile import find_profile
from tests.support.vm_guest import FIXTURES

URI = "test:///default"



@pytest.fixture
def planted(conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stale harness domain, a live one, and an untagged one."""
    monkeypatch.setenv("CALLOUT_HARNESS_GUEST", str(tmp_path))
    profile = find_profile("linux-tcg", [FIXTURES])
    dead = subprocess.Popen(["true"])
    dead.wait()
    records = {
        "ch-stale": replace(LeaseRecord.new(slot="ch-stale", run_id="gone", profile="linux-tcg",
                                            ttl_s=3600, work_dir=tmp_path), pid=dead.pid),
        "ch-live": LeaseRecord.new(slot="ch-live", run_id="running", profile="linux-tcg",
                                   ttl_s=3600, work_dir=tmp_path),
    }
    for record in records.values():
        xml = render_domain(profile, record, uuid=str(uuid.uuid4()), host_ports={"ssh": 1}).xml
        domain = conn.defineXML(xml)
        domain.create()
        domain.snapshotCreateXML("<domainsnapshot><name>clean</name></domainsnapshot>", 0)
        record.overlay.write_bytes(b"overlay")
        record.serial_log.write_text("serial")
    conn.defineXML("<domain type='test'><name>not-ours</name><memory unit='MiB'>64</memory>"
                   "<os><type>hvm</type></os></domain>")
    return records


def names(conn: Any) -> set[str]:
    return {d.name() for d in conn.listAllDomains(0)}


def run_cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = cli.run(parser.parse_args(["vm", *argv]), out=out, err=out)
    return code, out.getvalue()


def test_list_shows_only_harness_domains(conn: Any, planted: dict[str, Any]) -> None:
    found = {d.name: d for d in list_domains([URI])}
    assert set(found) == {"ch-stale", "ch-live"}
    assert found["ch-live"].stale_reason is None
    assert "is gone" in (found["ch-stale"].stale_reason or "")
    code, text = run_cli("list", "--uri", URI)
    assert code == 0
    assert "not-ours" not in text and "test " not in text
    assert "ch-stale" in text and "ch-live" in text


def test_gc_removes_stale_domains_and_their_files_only(
    conn: Any, planted: dict[str, Any]
) -> None:
    code, text = run_cli("gc", "--uri", URI)
    assert code == 0, text
    assert "removed ch-stale" in text
    assert "ch-stale" not in names(conn)
    assert {"ch-live", "not-ours", "test"} <= names(conn)
    stale, live = planted["ch-stale"], planted["ch-live"]
    assert not stale.overlay.exists() and not stale.serial_log.exists()
    assert live.overlay.exists()


def test_gc_all_also_removes_live_harness_domains_but_never_foreign_ones(
    conn: Any, planted: dict[str, Any]
) -> None:
    removed = collect_garbage([URI], include_live=True)
    assert {d.name for d in removed} == {"ch-stale", "ch-live"}
    assert {"not-ours", "test"} <= names(conn)
    assert not planted["ch-live"].overlay.exists()


def test_cli_reports_errors_in_one_line(tmp_path: Path) -> None:
    code, text = run_cli("list", "--uri", "qemu+unix:///session?socket=" + str(tmp_path / "no"))
    assert code == 1
    assert text.startswith("callout-harness vm list: connecting to qemu+unix")
    assert text.count("\n") == 1


def test_cli_reads_uris_from_a_pool_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLOUT_HARNESS_IMAGES", str(tmp_path))
    pool = tmp_path / "pool.toml"
    pool.write_text(f'[pool]\noverlay_dir = "{tmp_path}"\n\n[[slot]]\nname = "ch-p"\n'
                    f'uri = "{URI}"\nprofile = "win10"\n')
    code, text = run_cli("list", "--pool", str(pool), "--profiles", str(FIXTURES))
    assert code == 0, text
    assert text.strip() == f"no harness domains on {URI}"
