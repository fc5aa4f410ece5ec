"""The certification bundle: its content, and what ``certify verify`` says when it is altered."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from harness.certify.bundle import finish_bundle, write_bundle
from harness.certify.environment import driver_entry, sha256_file
from harness.certify.verify import verify
from harness.cli import main
from tests.certify.helpers import make_items


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    items = make_items(tmp_path / "work")
    finish_bundle(tmp_path / "bundle", items, vm="sim", driver=None, root=tmp_path)
    return tmp_path / "bundle"


def test_bundle_holds_results_traces_report_environment_junit_and_sums(bundle: Path) -> None:
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert names == [
        "SHA256SUMS", "environment.json", "junit.xml", "report.html", "results.json",
        "traces/connect-leak.sim.seed7.jsonl", "traces/connect-ok.sim.seed7.jsonl",
        "traces/flaky.sim.seed7-try1.jsonl", "traces/flaky.sim.seed7.jsonl",
    ]
    results = json.loads((bundle / "results.json").read_text())
    assert results["summary"]["failed"] == 1 and results["summary"]["flaky"] == 1
    assert results["ok"] is False
    leak = next(i for i in results["items"] if i["scenario"] == "connect-leak")
    assert leak["trace"] == "traces/connect-leak.sim.seed7.jsonl"
    assert leak["seed"] == 7 and leak["outcome"] == "failed"
    assert [(v["rule"], v["events"]) for v in leak["violations"]] == [("PC001", [1, 2])]
    flaky = next(i for i in results["items"] if i["scenario"] == "flaky")
    assert [(a["outcome"], a["trace"]) for a in flaky["attempts"]] == [
        ("failed", "traces/flaky.sim.seed7.jsonl"), ("passed", "traces/flaky.sim.seed7-try1.jsonl")]
    env = json.loads((bundle / "environment.json").read_text())
    assert env["targets"] == [{"name": "sim", "profile": "engine-model", "os_build": "engine-model"}]
    assert env["virtualization"] == {"libvirt": None, "qemu": None}
    assert env["seeds"] == {"connect-ok[sim]": 7, "connect-leak[sim]": 7, "flaky[sim]": 7}
    assert env["dependencies"]["orjson"]  # a declared dependency, installed
    assert env["harness"]["commit"]
    sums = (bundle / "SHA256SUMS").read_text().splitlines()
    assert f"{sha256_file(bundle / 'results.json')}  results.json" in sums
    assert len(sums) == 8
    page = (bundle / "report.html").read_text()
    assert 'class="badge flaky"' in page and "passed after 1 retry" in page
    assert 'href="traces/connect-leak.sim.seed7.jsonl"' in page  # links stay inside the bundle


def test_the_archive_has_the_same_files(bundle: Path) -> None:
    archive = bundle.with_name("bundle.tar.gz")
    with tarfile.open(archive) as tar:
        names = sorted(m.name for m in tar.getmembers())
    assert "bundle/SHA256SUMS" in names and "bundle/traces/flaky.sim.seed7-try1.jsonl" in names
    assert len(names) == 9


def test_junit_written_for_runs_without_pytest(bundle: Path) -> None:
    xml = (bundle / "junit.xml").read_text()
    assert 'tests="3" failures="1"' in xml
    assert '<property name="rules" value="PC001" />' in xml
    assert '<property name="harness_outcome" value="flaky" />' in xml
    assert '<property name="trace" value="traces/connect-leak.sim.seed7.jsonl" />' in xml


def test_verify_accepts_an_untouched_bundle_and_archive(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(bundle).problems == []
    assert main(["certify", "verify", str(bundle.with_name("bundle.tar.gz"))]) == 0
    out = capsys.readouterr().out
    assert "OK (8 files match SHA256SUMS, 3 trace(s) judged again and consistent)" in out
    assert out.rstrip().endswith("; unsigned")


def test_verify_names_a_tampered_file(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = bundle / "traces" / "connect-ok.sim.seed7.jsonl"
    trace.write_text(trace.read_text().replace("complete_operation", "free"))
    assert main(["certify", "verify", str(bundle)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "changed: traces/connect-ok.sim.seed7.jsonl (SHA-256 differs from SHA256SUMS)"
    # the edited trace no longer completes its pend: judged again, it contradicts results.json
    assert any(line.startswith("rejudged: connect-ok[sim]: results.json says passed") and
               "breaks PC001" in line for line in lines[1:])


def test_verify_names_a_missing_trace(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (bundle / "traces" / "flaky.sim.seed7.jsonl").unlink()
    assert main(["certify", "verify", str(bundle)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "missing: traces/flaky.sim.seed7.jsonl (listed in SHA256SUMS; trace of flaky[sim] "
        "in results.json)"]


def test_verify_checks_an_archive_too(bundle: Path, tmp_path: Path) -> None:
    (bundle / "notes.txt").write_text("added later")
    bad = tmp_path / "altered.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(bundle, arcname="bundle")
    assert verify(bad).problems == ["unlisted: notes.txt (not in SHA256SUMS)"]


def test_a_results_json_that_no_bundle_writes_is_bad_input(bundle: Path) -> None:
    from harness.errors import BundleError

    (bundle / "results.json").write_text("{}")
    with pytest.raises(BundleError, match=r"bundle: results\.json: items: expected an array"):
        verify(bundle)


def test_verify_reports_missing_environment_keys(bundle: Path) -> None:
    env = json.loads((bundle / "environment.json").read_text())
    del env["seeds"]
    (bundle / "environment.json").write_text(json.dumps(env))
    assert verify(bundle).problems == [
        "changed: environment.json (SHA-256 differs from SHA256SUMS)",
        'incomplete: environment.json has no "seeds"',
    ]


def test_verify_of_something_else_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certify", "verify", str(tmp_path / "nope")]) == 2
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("not an archive")
    assert main(["certify", "verify", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "nope: no such bundle directory or archive" in err
    assert "junk.tar.gz: not a readable bundle archive" in err


def test_a_bundle_never_clears_a_directory_it_did_not_write(tmp_path: Path) -> None:
    from harness.errors import UsageError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="holds files a bundle does not"):
        write_bundle(tmp_path / "mine", [], {})
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_driver_manifest_and_every_file_it_names_are_hashed(tmp_path: Path) -> None:
    pkg = tmp_path / "drivers" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "demo.sys").write_bytes(b"MZ not really a driver")
    (pkg / "demo.inf").write_text('[Version]\nSignature = "$Windows NT$"\nCatalogFile = demo.cat\n'
                                  "[Demo.Services]\nAddService = Demo, 0x2, Demo_Service\n")
    manifest = pkg / "driver.toml"
    manifest.write_text(
        '[driver]\nname = "demo"\nsys = "demo.sys"\ninf = "demo.inf"\ncat = "demo.cat"\n'
        'cer = "demo.cer"\nservice = "Demo"\n'
        'etw_provider = "{01234567-89ab-cdef-0123-456789abcdef}"\n'
        'provider_key = "{11234567-89ab-cdef-0123-456789abcdef}"\n'
        '[[callouts]]\nkey = "{21234567-89ab-cdef-0123-456789abcdef}"\n'
        'layer = "ALE_AUTH_CONNECT_V4"\n')
    entry = driver_entry(manifest)
    assert entry is not None
    assert entry["name"] == "demo"
    assert entry["manifest_sha256"] == sha256_file(manifest)
    assert entry["files"]["sys"] == {"path": "demo.sys", "sha256": sha256_file(pkg / "demo.sys")}
    assert entry["files"]["inf"]["sha256"] == sha256_file(pkg / "demo.inf")
    assert entry["files"]["cat"] == {"path": "demo.cat", "sha256": None, "missing": True}


def test_the_probe_manifest_is_read_with_the_strict_loader() -> None:
    root = Path(__file__).resolve().parents[2]
    entry = driver_entry(root / "drivers" / "probe" / "driver.toml")
    assert entry is not None and entry["name"] == "probe"
    assert set(entry["files"]) == {"sys", "inf", "cat", "cer"}
    assert entry["files"]["inf"]["sha256"] == sha256_file(root / "drivers" / "probe" / "probe.inf")
