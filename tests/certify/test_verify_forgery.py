"""What ``certify verify`` refuses: forged results, links and special files, archive
bombs, unsigned or wrongly signed bundles, and bundles of interrupted runs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from harness.certify import tree
from harness.certify.bundle import finish_bundle, write_archive, write_sums
from harness.certify.verify import verify
from harness.cli import main
from harness.errors import BundleError
from harness.history.store import add_run
from tests.certify.helpers import make_items

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                                      reason="ssh-keygen (openssh-client) is not installed")


def _bundle(tmp_path: Path, **kw: Any) -> Path:
    items = make_items(tmp_path / "work")
    finish_bundle(tmp_path / "bundle", items, vm="sim", driver=None, root=tmp_path, **kw)
    return tmp_path / "bundle"


def _forge_passes(bundle: Path) -> None:
    """Turn every failure into a pass in results.json and regenerate SHA256SUMS."""
    path = bundle / "results.json"
    doc = json.loads(path.read_text())
    for item in doc["items"]:
        if item["outcome"] in ("failed", "flaky"):
            item["outcome"] = "passed"
            item["failures"] = []
            item["violations"] = []
            for attempt in item["attempts"]:
                attempt["outcome"] = "passed"
    doc["summary"] = {"passed": len(doc["items"])}
    doc["ok"] = True
    path.write_text(json.dumps(doc, indent=1))
    write_sums(bundle)


def test_a_forged_results_json_with_new_sums_is_caught_by_judging_the_traces(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _bundle(tmp_path)
    _forge_passes(bundle)
    assert main(["certify", "verify", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert "rejudged: connect-leak[sim]: results.json records violations none, its trace " \
           "traces/connect-leak.sim.seed7.jsonl shows ['PC001']" in out
    assert "rejudged: connect-leak[sim]: results.json says passed, but its trace " \
           "traces/connect-leak.sim.seed7.jsonl breaks PC001" in out
    assert "rejudged: flaky[sim]: attempt 0 is recorded as passed" in out
    # and history refuses to record the forged run
    with pytest.raises(Exception, match="a bundle that 'certify verify' accepts"):
        add_run(bundle, tmp_path / "history.jsonl")
    assert not (tmp_path / "history.jsonl").exists()


def test_a_summary_that_does_not_count_the_items_is_caught(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    doc = json.loads((bundle / "results.json").read_text())
    doc["summary"] = {"passed": 3}
    doc["ok"] = True
    (bundle / "results.json").write_text(json.dumps(doc))
    write_sums(bundle)
    problems = verify(bundle).problems
    assert any(p.startswith("changed: results.json summary") for p in problems)
    assert any(p.startswith('changed: results.json says "ok": true') for p in problems)


def test_links_inside_a_bundle_directory_are_refused_never_followed(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    trace = bundle / "traces" / "connect-ok.sim.seed7.jsonl"
    trace.unlink()
    trace.symlink_to("/etc/passwd")
    (bundle / "traces" / "etc").symlink_to("/etc")
    problems = verify(bundle).problems
    assert "refused: traces/connect-ok.sim.seed7.jsonl (a symbolic link); a bundle holds " \
           "regular files only" in problems
    assert "refused: traces/etc (a symbolic link); a bundle holds regular files only" in problems
    assert not any("passwd" in p or p.startswith("unlisted: traces/etc/") for p in problems)


def test_a_fifo_and_a_hard_link_are_refused(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    os.mkfifo(bundle / "traces" / "pipe")
    os.link(bundle / "junit.xml", bundle / "traces" / "again.xml")
    problems = verify(bundle).problems
    assert "refused: traces/pipe (a FIFO); a bundle holds regular files only" in problems
    assert any(p.startswith("refused: traces/again.xml (a hard link)") for p in problems)


def _archive(tmp_path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    out = tmp_path / "evil.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        for member in members:
            payload = data.get(member.name)
            tar.addfile(member, io.BytesIO(payload) if payload is not None else None)
    return out


@pytest.mark.parametrize("kind,says", [
    (tarfile.SYMTYPE, "a symbolic link"), (tarfile.LNKTYPE, "a hard link"),
    (tarfile.CHRTYPE, "a device"), (tarfile.FIFOTYPE, "a FIFO"),
])
def test_links_and_special_members_of_an_archive_are_refused(
        tmp_path: Path, kind: bytes, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    member = tarfile.TarInfo("bundle/traces/x.jsonl")
    member.type = kind
    member.linkname = "/etc/passwd"
    archive = _archive(tmp_path, [member], {})
    assert main(["certify", "verify", str(archive)]) == 2
    err = capsys.readouterr().err
    assert f"bundle/traces/x.jsonl: {says}; a bundle holds regular files only" in err


def test_an_archive_bomb_is_refused_from_its_headers(tmp_path: Path) -> None:
    # A 3 GiB member of zeros: the header alone says too much, nothing is unpacked.
    out = tmp_path / "bomb.tar.gz"
    member = tarfile.TarInfo("bundle/traces/zeros.jsonl")
    member.size = 3 << 30
    with out.open("wb") as raw:
        import gzip

        with gzip.GzipFile(fileobj=raw, mode="wb") as gz:
            gz.write(member.tobuf(format=tarfile.GNU_FORMAT))
            # just enough of the body that the archive is plausible
            gz.write(b"\0" * (1 << 20))
    with pytest.raises(BundleError, match=r"more than \d+ bytes"):
        verify(out)


def test_the_ratio_bound_catches_a_small_archive_of_a_large_member(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree, "RATIO_FLOOR_BYTES", 1 << 20)
    member = tarfile.TarInfo("bundle/traces/zeros.jsonl")
    member.size = 8 << 20
    archive = _archive(tmp_path, [member], {member.name: b"\0" * member.size})
    with pytest.raises(BundleError, match="200 times the archive's size"):
        verify(archive)


def test_an_archive_of_too_many_members_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree, "MAX_MEMBERS", 50)
    members = []
    for n in range(200):
        m = tarfile.TarInfo(f"bundle/traces/{n}.jsonl")
        m.size = 0
        members.append(m)
    with pytest.raises(BundleError, match="more than 50 members"):
        verify(_archive(tmp_path, members, {}))


def _keypair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True, capture_output=True)
    return key, Path(f"{key}.pub")


@needs_ssh_keygen
def test_a_signed_bundle_verifies_against_its_trusted_key_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, pub = _keypair(tmp_path, "lab")
    _, other = _keypair(tmp_path, "someone-else")
    bundle = _bundle(tmp_path, sign_key=key)
    assert (bundle / "SHA256SUMS.sig").is_file()
    with tarfile.open(tmp_path / "bundle.tar.gz") as tar:
        assert "bundle/SHA256SUMS.sig" in tar.getnames()
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], check=True,
                                 capture_output=True, text=True).stdout.split()[1]
    assert main(["certify", "verify", str(tmp_path / "bundle.tar.gz"), "--trusted", str(pub)]) == 0
    assert f"signed by trusted ED25519 key {fingerprint}" in capsys.readouterr().out
    assert main(["certify", "verify", str(bundle), "--trusted", str(other)]) == 1
    assert "signature: signed by ED25519 key" in capsys.readouterr().out
    # forging the results and the sums breaks the signature
    _forge_passes(bundle)
    assert main(["certify", "verify", str(bundle), "--trusted", str(pub)]) == 1
    assert "signature: SHA256SUMS.sig does not verify over SHA256SUMS" in capsys.readouterr().out


@needs_ssh_keygen
def test_an_unsigned_bundle_says_so_and_fails_when_a_signature_is_required(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, pub = _keypair(tmp_path, "lab")
    bundle = _bundle(tmp_path)
    assert main(["certify", "verify", str(bundle)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("; unsigned")
    assert main(["certify", "verify", str(bundle), "--trusted", str(pub)]) == 1
    assert "unsigned: no SHA256SUMS.sig" in capsys.readouterr().out


def test_a_trusted_file_that_holds_no_public_key_is_bad_usage_and_never_echoed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _bundle(tmp_path)
    secret = tmp_path / "oops"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    assert main(["certify", "verify", str(bundle), "--trusted", str(secret)]) == 2
    err = capsys.readouterr().err
    assert "oops:1: expected an OpenSSH public key" in err
    assert "b3BlbnNzaC1rZXkt" not in err and "BEGIN" not in err


def test_an_interrupted_run_writes_an_incomplete_bundle_that_verify_refuses(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, complete=False, interrupted="KeyboardInterrupt after 3 of 44 items")
    doc = json.loads((bundle / "results.json").read_text())
    assert doc["complete"] is False
    problems = verify(bundle).problems
    assert problems == ["incomplete: results.json is not marked complete (KeyboardInterrupt "
                        "after 3 of 44 items); an interrupted run is no certification"]


def test_a_trace_cut_short_inside_a_bundle_fails_verify(tmp_path: Path) -> None:
    from harness.trace.writer import TraceWriter

    bundle = _bundle(tmp_path)
    trace = bundle / "traces" / "connect-ok.sim.seed7.jsonl"
    with trace.open("wb") as out:  # a target that promised an end and was interrupted
        writer = TraceWriter(out)
        writer.header(ends=True, target="sim")
        writer.emit("policy_change", layer="X")
    write_sums(bundle)
    problems = verify(bundle).problems
    assert any(p.startswith("rejudged: traces/connect-ok.sim.seed7.jsonl:2: cut short after line 2")
               for p in problems), problems


def test_archive_and_directory_are_written_under_temporary_names(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _bundle(tmp_path)
    before = hashlib.sha256((tmp_path / "bundle.tar.gz").read_bytes()).hexdigest()

    def interrupted(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    import harness.certify.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "_report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finish_bundle(bundle, make_items(tmp_path / "work2"), vm="sim", driver=None, root=tmp_path)
    # the previous bundle and its archive are untouched, and no partial file is left
    assert hashlib.sha256((tmp_path / "bundle.tar.gz").read_bytes()).hexdigest() == before
    assert verify(bundle).problems == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "bundle.tar.gz", "work", "work2"]
    monkeypatch.undo()
    archive = write_archive(bundle)
    assert not archive.with_name(archive.name + ".partial").exists()


def test_certify_run_refuses_a_foreign_out_directory_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    root = Path(__file__).resolve().parents[2]
    code = main(["certify", "run", "--scenario", str(root / "scenarios" / "connect-pend-permit.toml"),
                 "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "holds files a bundle does not" in err and "connect-pend-permit ..." not in err


def test_an_interrupted_certify_run_writes_no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import harness.commands.run as run_module

    def interrupted(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "execute", interrupted)
    root = Path(__file__).resolve().parents[2]
    code = main(["certify", "run", "--scenario", str(root / "scenarios" / "connect-pend-permit.toml"),
                 "--out", str(tmp_path / "cert")])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_long_path_in_the_sums_is_cut_in_the_problem_line(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    with (bundle / "SHA256SUMS").open("a") as sums:
        sums.write("0" * 64 + "  " + "x" * 300_000 + "\n")
    problems = verify(bundle).problems
    assert any(p.startswith("missing: xxx") for p in problems)
    assert all(len(p) < 400 for p in problems)
