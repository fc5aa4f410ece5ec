"""``--vm`` with a Windows profile: the VM target's whole path, end to end.

The slot is a libvirt domain on the test driver (test:///default: leasing,
overlays, snapshots, revert and crash watch all run for real), the guest's
WinRM is the scripted Windows guest on loopback (tests/guest/windows_guest.py)
that runs the uploaded agent under Wine. The target deploys the driver and
the agent into golden, reverts, compiles the scenario, starts the agent,
fetches the .etl, decodes it and hands back steps and trace.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.agent.wine import find_wine
from harness.scenario.loader import load_scenario
from harness.targets.vm import VmTarget
from harness.trace.reader import TraceReader
from tests.guest.conftest import USER
from tests.guest.signed_pe import add_signature_placeholder
from tests.guest.windows_guest import ScriptedWindowsGuest
from tests.support.pe import write_pe

ROOT = Path(__file__).resolve().parents[2]
PROBE_DIR = ROOT / "drivers" / "probe"
PROBE = "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"
NETWORK = "harness-winloop"

pytestmark = pytest.mark.skipif(
    shutil.which("x86_64-w64-mingw32-gcc") is None or find_wine() is None
    or shutil.which("qemu-img") is None,
    reason="needs mingw-w64, Wine and qemu-img")

PROFILE = """\
name = "winloop"
os = "windows"
description = "a Windows profile whose guest is a scripted WS-Man peer on loopback"
uri = "test:///default"
template = "windows.xml"

[machine]
domain_type = "qemu"
machine_type = "pc"
memory_mib = 256
vcpus = 1
firmware = "bios"
disk_bus = "sata"
nic_model = "e1000e"

[image]
base = "{base}"
format = "qcow2"

[network]
mode = "libvirt"
name = "{network}"

[transport.winrm]
scheme = "http"
host = "127.0.0.1"
port = {port}
username_env = "CALLOUT_HARNESS_WINRM_USER"
password_env = "CALLOUT_HARNESS_WINRM_PASSWORD"

[snapshots]
clean = "clean"
golden = "driver-deployed"

[crash]
on_crash = "preserve"
dump_format = "win-dmp"
"""


class LoopbackVmTarget(VmTarget):
    """The VM target with the one setting a profile cannot carry yet: Basic auth over
    the peer's plain HTTP (the profile format has no auth key; see the report)."""

    def _transport(self) -> Any:
        from harness.guest.base import open_transport
        from harness.guest.settings import settings_from_profile

        spec = self.profile.transports["winrm"]
        _host, port = self._machine.endpoint("winrm")
        return open_transport(settings_from_profile(
            spec, port, source=str(self.profile.path), auth="basic", insecure_http=True,
            operation_timeout_s=30, read_timeout_s=90))


@pytest.fixture
def network() -> Iterator[None]:
    from harness.vm.connection import open_connection

    conn = open_connection("test:///default")
    net = conn.networkCreateXML(
        f"<network><name>{NETWORK}</name><bridge name='virbr77'/>"
        "<ip address='192.168.177.1' netmask='255.255.255.0'/></network>")
    yield
    net.destroy()
    conn.close()


@pytest.fixture
def guest(tmp_path: Path, password: str) -> Iterator[ScriptedWindowsGuest]:
    root = tmp_path / "guest"
    root.mkdir()
    server = ScriptedWindowsGuest(root, username=USER, password=password,
                                  driver_provider=PROBE).start()
    yield server
    server.stop()


def driver_package(tmp_path: Path) -> Path:
    root = tmp_path / "probe"
    root.mkdir()
    shutil.copy(PROBE_DIR / "driver.toml", root)
    shutil.copy(PROBE_DIR / "probe.inf", root)
    release = root / "build" / "x64" / "Release"
    add_signature_placeholder(write_pe(release / "probe.sys"))
    (release / "probe.cat").write_bytes(b"0\x82catalog")
    (root / "build" / "probe-test.cer").write_bytes(b"0\x82cert")
    return root / "driver.toml"


def test_a_windows_profile_runs_a_scenario_through_the_vm_target(
        tmp_path: Path, guest: ScriptedWindowsGuest, password: str, network: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures" / "templates", fixtures / "templates")
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    (fixtures / "winloop.toml").write_text(PROFILE.format(base=base, network=NETWORK,
                                                          port=guest.port))
    monkeypatch.setenv("CALLOUT_HARNESS_WINRM_USER", USER)
    monkeypatch.setenv("CALLOUT_HARNESS_WINRM_PASSWORD", password)
    seen: list[str] = []
    options = SimpleNamespace(search_dirs=[str(fixtures)], out_dir=str(tmp_path / "out"),
                              pool=None, vm="winloop", vm_uri=None,
                              driver=driver_package(tmp_path), progress=seen.append)
    target = LoopbackVmTarget.from_options(options)
    try:
        scenario = load_scenario(ROOT / "scenarios" / "closure-tcp-per-connection.toml")
        run = target.run(scenario, seed=2, out_dir=tmp_path / "traces")
        second = target.run(scenario, seed=3, out_dir=tmp_path / "traces")
    finally:
        target.close()

    # deployed once into golden: driver steps, then the agent
    assert guest.deployed == ["deploy-testsigning", "deploy-certificate", "deploy-install",
                              "deploy-start"]
    assert guest.agent_runs == 2
    assert run.target == "winloop" and run.seed == 2 and second.seed == 3
    assert run.steps and all(r.outcome in ("allowed", None) and not r.detail
                             for r in run.steps.values()), run.steps
    reader = TraceReader(run.trace_path)
    events = list(reader)
    assert reader.header is not None and reader.header["scenario"] == scenario.name
    assert reader.header["ends"] is True and events == []  # no BFE calls, no driver here
    assert run.trace_path.name == "closure-tcp-per-connection.winloop.seed2.jsonl"
    assert "revert_s" in run.meta
    # no probe device under Wine: said once per run, and the run still counts
    assert sum("no probe device in the guest" in str(m) for m in seen) == 2
