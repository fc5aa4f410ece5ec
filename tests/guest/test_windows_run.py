"""A scenario's run in a Windows guest, end to end against a scripted guest on loopback.

The harness side is the real one (pywinrm over HTTP to the loopback WS-Man
endpoint, the agent built with mingw-w64 and uploaded in chunks, the plan,
the scheduled-task scripts, the .etl fetched gzip-compressed and decoded).
The guest side runs the uploaded agent under Wine and writes the .etl the
ETW session would have written (see tests/guest/windows_guest.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.agent import AGENT_PROVIDER
from harness.agent.build import AgentBuild, build_agent
from harness.agent.plan import compile_plan
from harness.agent.wine import find_wine
from harness.contract.checker import check_file
from harness.guest.credentials import Credentials, Secret
from harness.guest.scenario_run import RunPaths, WindowsScenarioRun, install_agent
from harness.scenario.loader import load_scenario
from harness.trace.reader import TraceReader
from tests.guest.conftest import USER, http_settings
from tests.guest.windows_guest import ScriptedWindowsGuest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"
CALLOUT = "{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"

pytestmark = pytest.mark.skipif(
    shutil.which("x86_64-w64-mingw32-gcc") is None or find_wine() is None,
    reason="needs mingw-w64 (gcc-mingw-w64-x86-64) and Wine (wine64)")


def _register(eb: Any) -> None:
    eb.add_guid_bytes_le(b"callout", bytes.fromhex("105c1e9a3d2b604fa1728394a5b6c701"))
    eb.add_hexint32(b"status", 0)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> AgentBuild:
    return build_agent(tmp_path_factory.mktemp("agent"))


@pytest.fixture
def guest(tmp_path: Path, password: str) -> Iterator[ScriptedWindowsGuest]:
    root = tmp_path / "guest"
    root.mkdir()
    server = ScriptedWindowsGuest(root, username=USER, password=password,
                                  driver_events=[("callout_register", _register)],
                                  driver_provider=PROBE).start()
    yield server
    server.stop()


@pytest.fixture
def transport(guest: ScriptedWindowsGuest, password: str) -> Iterator[Any]:
    from harness.guest.winrm import WinRMTransport

    t = WinRMTransport(http_settings(guest, operation_timeout_s=30, read_timeout_s=60),
                       Credentials(USER, Secret(password)))
    yield t
    t.close()


def test_a_scenario_runs_through_agent_etw_and_decoder(
        agent: AgentBuild, guest: ScriptedWindowsGuest, transport: Any, tmp_path: Path) -> None:
    remote = install_agent(transport, agent.image, agent.digest)
    # one process received the whole agent over its stdin, in 128 KB sends
    size = agent.image.stat().st_size
    assert guest.steps_seen == ["file-hash", "receive-file"]
    assert guest.sends == -(-size // (128 * 1024)) and size > 256 * 1024
    assert guest.subset.path(remote).read_bytes() == agent.image.read_bytes()
    uploads = len(guest.stats.scripts)
    assert install_agent(transport, agent.image, agent.digest) == remote
    assert len(guest.stats.scripts) == uploads + 1  # the same build: only its hash is asked

    scenario = load_scenario(ROOT / "scenarios" / "mixed-traffic.toml")
    plan = compile_plan(scenario, seed=3, callouts={"ALE_AUTH_CONNECT_V4": CALLOUT})
    local = tmp_path / "out" / "mixed-traffic.win11.seed3.jsonl"
    run = WindowsScenarioRun(transport, agent=remote, driver_provider=PROBE)
    steps, meta = run.run(plan, RunPaths.for_run(scenario.name, 3), local, target="win11",
                          scenario=scenario.name, seed=3)

    # what the agent observed, step by step (Wine: sockets real, BFE a stub)
    assert {n: r.outcome for n, r in steps.items() if n != "f1"} == {
        n: "allowed" for n in ("srv", "c1", "c2", "c3", "a1", "u1", "send#7", "send#8")}
    assert steps["f1"].status == "0x800706E4" and "RPC_S_CANNOT_SUPPORT" in steps["f1"].detail
    assert "CalloutHarnessProbe" in meta["probe"].detail  # no driver under Wine

    # the scripts ran in order, the agent as a task
    order = [s for s in guest.steps_seen if s not in ("file-hash", "receive-file")]
    assert order[0] == "etw-start" and order[1] == "agent-start"
    assert order[-3:] == ["etw-stop", "gzip", "agent-remove"]
    assert set(order[2:-3]) == {"agent-wait"}
    assert guest.agent_runs == 1
    assert guest.session is not None and guest.session["providers"] == [PROBE, AGENT_PROVIDER]

    # the trace: both providers on one clock, a header, the promised end
    reader = TraceReader(local)
    events = list(reader)
    assert reader.header is not None
    assert (reader.header["target"], reader.header["seed"], reader.header["ends"]) == (
        "win11", 3, True)
    assert [e["ev"] for e in events] == ["callout_register", "session_open"]
    assert events[0]["callout"] == CALLOUT and events[0]["status"] == "STATUS_SUCCESS"
    assert events[1]["status"] == "0x800706E4" and events[1]["dynamic"] is False
    assert events[1]["t"] > events[0]["t"]
    assert meta["etl_events"] == 2
    result = check_file(local)
    assert result is not None  # judged as a whole trace: no bad input
    assert not (tmp_path / "out" / "mixed-traffic.win11.seed3.etl.gz").exists()
    assert (tmp_path / "out" / "mixed-traffic.win11.seed3.etl").stat().st_size > 4096


def test_the_run_fails_clearly_when_the_agent_never_reports(
        agent: AgentBuild, guest: ScriptedWindowsGuest, transport: Any, tmp_path: Path) -> None:

    remote = install_agent(transport, agent.image, agent.digest)
    scenario = load_scenario(ROOT / "scenarios" / "mixed-traffic.toml")
    plan = compile_plan(scenario, seed=1, callouts={"ALE_AUTH_CONNECT_V4": CALLOUT})
    plan["plan"] = 99  # the agent refuses it, writing results with the error
    run = WindowsScenarioRun(transport, agent=remote, driver_provider=PROBE)
    steps, meta = run.run(plan, RunPaths.for_run(scenario.name, 1), tmp_path / "t.jsonl")
    assert steps == {}
    assert meta["agent_error"] == 'the plan: expected an object with "plan": 1'
    assert guest.steps_seen[-1] == "agent-remove"


def test_an_agent_that_never_reports_times_out_and_the_task_is_removed(
        agent: AgentBuild, guest: ScriptedWindowsGuest, transport: Any, tmp_path: Path) -> None:
    from harness.errors import TargetError

    remote = install_agent(transport, agent.image, agent.digest)
    # the agent's image replaced by something that never writes results
    guest.subset.path(remote).write_bytes(b"not a program")
    scenario = load_scenario(ROOT / "scenarios" / "mixed-traffic.toml")
    plan = compile_plan(scenario, seed=1, callouts={"ALE_AUTH_CONNECT_V4": CALLOUT})
    run = WindowsScenarioRun(transport, agent=remote, driver_provider=PROBE, run_timeout_s=1)
    with pytest.raises(TargetError, match="the step agent did not finish within 1 s"):
        run.run(plan, RunPaths.for_run(scenario.name, 1), tmp_path / "t.jsonl")
    assert guest.steps_seen[-2:] == ["etw-stop", "agent-remove"]


def test_a_reboot_waits_for_a_new_boot_time(guest: ScriptedWindowsGuest, transport: Any) -> None:
    from harness.guest.deploy import reboot_and_wait

    transport.run_powershell("Write-Output 'before'").check("a command before the reboot")
    naps: list[float] = []
    elapsed = reboot_and_wait(transport, timeout_s=60, poll_s=0.01, sleep=naps.append)
    assert elapsed >= 0 and guest.boots == 1
    assert guest.steps_seen == ["boot-time", "reboot", "boot-time"]
    assert guest.stats.shells_created >= 2  # the old shell died with the guest
