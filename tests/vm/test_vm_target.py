"""The whole distributed path on a real guest: lease a slot, copy the harness's
engine model and a scenario in over SFTP, run it in the guest over SSH, pull
the trace back, check it on the host, revert. Driven exactly as a user would:
``pytest --vm linux-tcg scenarios -k ...``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.trace.reader import TraceReader

REPO = Path(__file__).resolve().parents[2]
HANDFUL = ("connect-pend-block", "recv-accept-reinject", "closure-udp-many-peers",
           "txn-wait-default-timeout", "stream-out-of-band")

pytestmark = pytest.mark.guest


def _env(guest_image: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CALLOUT_HARNESS_GUEST": str(guest_image.directory),
        "CALLOUT_HARNESS_SSH_USER": "root",
        "CALLOUT_HARNESS_SSH_KEY": str(guest_image.private_key),
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def _out_dir(vm_daemon: Any, name: str) -> Path:
    # the session daemon's user (nobody) creates the overlays under it
    return Path(vm_daemon.workdir(name))


def test_pytest_runs_scenarios_in_the_guest(vm_daemon: Any, guest_image: Any,
                                            tmp_path: Path) -> None:
    out = _out_dir(vm_daemon, "pytest-out")
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "-k", " or ".join(HANDFUL),
         "--vm", "linux-tcg", "--vm-uri", vm_daemon.uri, "--harness-out", str(out),
         "-p", "no:cacheprovider", "-p", "no:randomly", "--junitxml", str(junit), "-q"],
        cwd=REPO, env=_env(guest_image), capture_output=True, text=True, timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(HANDFUL)} passed" in proc.stdout
    traces = sorted((out / "traces").glob("*.linux-tcg.seed*.jsonl"))
    assert len(traces) == len(HANDFUL)
    for trace in traces:
        reader = TraceReader(trace)
        events = list(reader)
        # made in the guest, by the guest's python3, then checked here
        assert reader.header is not None and reader.header["target"] == "linux-tcg"
        assert events and events[-1]["seq"] == len(events)
    # the slot was released: nothing of ours is left on the daemon (other tests'
    # guests may share it)
    import libvirt

    conn = libvirt.open(vm_daemon.uri)
    try:
        names = [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()
    assert not [n for n in names if n.startswith("harness-linux-tcg-")], names
    assert not list((out / "vm").glob("*.qcow2"))


@pytest.mark.parametrize("profile", [
    "linux-tcg", pytest.param("linux-tcg-uefi", marks=pytest.mark.uefi),
])
def test_vm_target_reverts_between_scenarios(vm_daemon: Any, guest_image: Any,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             profile: str) -> None:
    """Each scenario starts from the golden snapshot (internal on BIOS, a saved
    state on UEFI), and a failure on the guest comes back as a failing scenario
    with the guest's own trace."""
    from harness.scenario.loader import load_scenario
    from harness.session import HarnessSession, SessionOptions

    for key, value in _env(guest_image).items():
        monkeypatch.setenv(key, value)
    out = _out_dir(vm_daemon, f"session-out-{profile}")
    session = HarnessSession(SessionOptions(
        vm=profile, out_dir=out, vm_uri=vm_daemon.uri, search_dirs=(REPO / "fixtures",),
        progress=lambda event: None,
    ))
    try:
        sc = load_scenario(REPO / "scenarios" / "txn-one-per-session.toml")
        first = session.run(sc)
        second = session.run(sc, seed=2)
        assert first.outcome == "passed" and second.outcome == "passed"
        assert first.run.meta["revert_s"] > 0 and second.run.meta["revert_s"] > 0
        assert first.run.steps["b2"].status == "FWP_E_TXN_IN_PROGRESS"
        # the guest's scratch files from the first run were reverted away
        target: Any = session.target
        transport = target._transport()
        try:
            listing = transport.run("ls /tmp/harness-run 2>/dev/null || true").stdout
        finally:
            transport.close()
        assert "txn-one-per-session" in listing  # only the last run's folder...
        assert listing.split() == ["txn-one-per-session"]
    finally:
        session.close()


def test_nightly_script_on_a_linux_tcg_pool(vm_daemon: Any, guest_image: Any,
                                            tmp_path: Path) -> None:
    """ci/nightly.sh on a pool of one linux-tcg slot: a verified bundle and a history."""
    pool = tmp_path / "tcg-pool.toml"
    pool.write_text(
        "[pool]\nlease_ttl_s = 3600\n"
        f'overlay_dir = "{vm_daemon.workdir("pool-overlays")}"\n\n'
        f'[[slot]]\nname = "ch-nightly-tcg-a"\nuri = "{vm_daemon.uri}"\nprofile = "linux-tcg"\n'
    )
    out = _out_dir(vm_daemon, "nightly-out")
    env = _env(guest_image)
    env.update({"HARNESS_POOL": str(pool), "HARNESS_WORKERS": "1", "HARNESS_OUT": str(out),
                "HARNESS_RETRIES": "0"})
    proc = subprocess.run(
        ["bash", "ci/nightly.sh", "-k", "connect-pend-block or txn-read-only"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
    run = (out / "latest").resolve()
    assert (run / "bundle" / "SHA256SUMS").is_file() and (run / "bundle.tar.gz").is_file()
    results = json.loads((run / "bundle" / "results.json").read_text())
    assert {item["target"] for item in results["items"]} == {"linux-tcg"}
    assert "OK" in proc.stdout  # certify verify passed
    assert len((out / "history.jsonl").read_text().splitlines()) == 1
    assert (out / "trends.html").is_file()


def test_guest_crash_mid_scenario_fails_with_evidence(vm_daemon: Any, guest_image: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest that panics while a scenario runs fails that scenario with "guest
    crashed", a memory dump and the serial log; the slot is reverted for the next."""
    from harness.errors import GuestCrashed
    from harness.scenario.loader import load_scenario
    from harness.session import HarnessSession, SessionOptions
    from harness.targets.vm import VmTarget

    for key, value in _env(guest_image).items():
        monkeypatch.setenv(key, value)
    out = _out_dir(vm_daemon, "crash-out")
    session = HarnessSession(SessionOptions(
        vm="linux-tcg", out_dir=out, vm_uri=vm_daemon.uri, search_dirs=(REPO / "fixtures",),
        progress=lambda event: None,
    ))
    original = VmTarget._run_in_linux_guest

    def panic_first(self: VmTarget, transport: Any, *args: Any) -> Any:
        # the guest's kernel panics (pvpanic tells QEMU) while the scenario runs
        transport.run("sh -c 'sleep 1; echo c > /proc/sysrq-trigger' >/dev/null 2>&1 &",
                      timeout_s=30)
        transport.run("sleep 8", timeout_s=12)
        return original(self, transport, *args)

    sc = load_scenario(REPO / "scenarios" / "txn-read-only.toml")
    try:
        monkeypatch.setattr(VmTarget, "_run_in_linux_guest", panic_first)
        with pytest.raises(GuestCrashed) as info:
            session.run(sc)
        message = str(info.value)
        assert "guest crashed" in message and "the slot was reverted" in message
        crash_dir = next((out / "traces").glob("*.crash"))
        assert list(crash_dir.glob("*serial.log"))
        monkeypatch.setattr(VmTarget, "_run_in_linux_guest", original)
        assert session.run(sc).outcome == "passed"  # the next scenario starts clean
    finally:
        session.close()
