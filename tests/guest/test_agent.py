"""The step agent: cross-compiled with mingw-w64, run under Wine, its events decoded on the host.

Under Wine the socket steps run for real against loopback peers; Wine's
fwpuclnt answers every BFE call with RPC_S_CANNOT_SUPPORT, which the agent
must report naming the step. The TraceLogging bytes the agent would hand to
EventWriteTransfer are dumped (--dump-tlg) and decoded with the host's
decoder: they must say exactly what the agent's JSON event stream says.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.agent import AGENT_PROVIDER, AGENT_PROVIDER_NAME
from harness.agent.build import AgentBuild, AgentBuildError, build_agent, check_image, source_dir
from harness.agent.plan import compile_plan, write_plan
from harness.agent.results import read_results
from harness.agent.wine import find_wine, run_agent
from harness.errors import ScenarioError
from harness.etw.tracelogging import decode_data, parse_event_metadata, parse_provider_traits
from harness.guest.manifest import load_manifest
from harness.scenario.loader import load_scenario
from tests.etw import tlgdynamic

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
RPC_S_CANNOT_SUPPORT = "0x800706E4"

needs_mingw = pytest.mark.skipif(shutil.which("x86_64-w64-mingw32-gcc") is None,
                                 reason="mingw-w64 (gcc-mingw-w64-x86-64) is not installed")
needs_wine = pytest.mark.skipif(find_wine() is None, reason="Wine (wine64) is not installed")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> AgentBuild:
    if shutil.which("x86_64-w64-mingw32-gcc") is None:
        pytest.skip("mingw-w64 (gcc-mingw-w64-x86-64) is not installed")
    return build_agent(tmp_path_factory.mktemp("agent"))


@pytest.fixture(scope="module")
def wineprefix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("wineprefix")


def callouts() -> dict[str, str]:
    manifest = load_manifest(ROOT / "drivers" / "probe" / "driver.toml", check_binaries=False)
    return {c.layer: c.key for c in manifest.callouts}


def run_scenario(agent: AgentBuild, prefix: Path, tmp_path: Path, name: str
                 ) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    plan = write_plan(compile_plan(scenario, seed=1, callouts=callouts(), probe=False),
                      tmp_path / "plan.json")
    run = run_agent(agent.image, plan, tmp_path / "run", prefix=prefix)
    assert run.returncode == 0, run.stderr
    steps, _rest = read_results(run.results)
    events = [json.loads(line) for line in run.events.read_text().splitlines()]
    return {k: v for k, v in steps.items()}, events, run


@needs_mingw
def test_the_agent_is_a_static_pe32_plus_x64_console_image(agent: AgentBuild) -> None:
    check_image(agent.image)
    data = agent.image.read_bytes()
    # static: no MinGW or GCC runtime DLL to carry into the guest (msvcrt.dll is Windows' own)
    for dll in (b"libgcc_s", b"libwinpthread", b"libstdc++"):
        assert dll not in data.lower()
    assert b"fwpuclnt.dll" in data.lower() and b"ws2_32.dll" in data.lower()


@needs_mingw
def test_the_build_is_cached_by_source_hash(agent: AgentBuild, tmp_path: Path) -> None:
    again = build_agent(agent.image.parent)
    assert again.cached and again.digest == agent.digest
    copy = tmp_path / "agent"
    shutil.copytree(source_dir(), copy)
    (tmp_path / "probe").mkdir()
    shutil.copy(source_dir().parent / "probe" / "probe_ioctl.h", tmp_path / "probe")
    with (copy / "agent.c").open("a") as f:
        f.write("\nstatic int unused_function(void) { return 1; }\n")
    with pytest.raises(AgentBuildError) as caught:
        build_agent(tmp_path / "out", src=copy)
    message = str(caught.value)
    assert "building the agent failed" in message and "unused_function" in message
    assert not list((tmp_path / "out").glob("*.exe"))  # nothing half-built is kept


@needs_mingw
def test_cli_agent_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["agent", "build", "--out", str(tmp_path)]) == 0
    assert "harness-agent.exe: built (sources " in capsys.readouterr().out
    assert main(["agent", "build", "--out", str(tmp_path)]) == 0
    assert ": cached (sources " in capsys.readouterr().out
    assert main(["agent", "build", "--out", str(tmp_path), "--compiler", "no-such-cc"]) == 2
    assert "no-such-cc not found: install mingw-w64" in capsys.readouterr().err


@needs_wine
def test_socket_steps_run_against_loopback_peers(agent: AgentBuild, wineprefix: Path,
                                                 tmp_path: Path) -> None:
    steps, events, _run = run_scenario(agent, wineprefix, tmp_path, "mixed-traffic")
    sockets = {n: r for n, r in steps.items() if n != "f1"}
    assert sockets and all(r.outcome == "allowed" for r in sockets.values()), sockets
    assert set(steps) == {"srv", "c1", "c2", "c3", "a1", "u1", "f1", "send#7", "send#8"}
    # the filter step meets Wine's BFE stub: a failure naming the step, never a success
    assert steps["f1"].status == RPC_S_CANNOT_SUPPORT
    assert steps["f1"].detail == ("step f1 (add_filter): FwpmEngineOpen0 failed with "
                                  "0x800706E4 (RPC_S_CANNOT_SUPPORT: no BFE here)")
    assert [e["ev"] for e in events] == ["session_open"]


@needs_wine
def test_udp_and_closure_steps(agent: AgentBuild, wineprefix: Path, tmp_path: Path) -> None:
    steps, _events, _run = run_scenario(agent, wineprefix, tmp_path, "closure-udp-many-peers")
    assert steps and all(r.outcome in ("allowed", None) and not r.detail
                         for r in steps.values()), steps


@needs_wine
def test_bfe_steps_fail_with_wines_stub_error_naming_each_step(
        agent: AgentBuild, wineprefix: Path, tmp_path: Path) -> None:
    steps, events, _run = run_scenario(agent, wineprefix, tmp_path, "txn-atomic-abort")
    assert steps["s1"].status == RPC_S_CANNOT_SUPPORT
    assert steps["s1"].detail.startswith("step s1 (session_open): FwpmEngineOpen0 failed")
    for name in ("b1", "p1", "l1", "x1", "p2", "l2"):
        assert steps[name].status == "0x80070006", name  # E_HANDLE: the session never opened
        assert steps[name].detail.startswith(f"step {name} (") and "s1 is not open" in \
            steps[name].detail
    assert events[0]["ev"] == "session_open" and events[0]["status"] == RPC_S_CANNOT_SUPPORT
    assert events[0]["dynamic"] is False and events[0]["kernel"] is False


@needs_wine
def test_the_tracelogging_bytes_decode_to_the_agents_own_event_stream(
        agent: AgentBuild, wineprefix: Path, tmp_path: Path) -> None:
    _steps, events, run = run_scenario(agent, wineprefix, tmp_path, "txn-wait-custom-timeout")
    dump = [json.loads(line) for line in run.dump.read_text().splitlines()]
    traits = parse_provider_traits(bytes.fromhex(dump[0]["traits"]))
    assert traits.name == AGENT_PROVIDER_NAME
    decoded = []
    for blob in dump[1:]:
        schema = parse_event_metadata(bytes.fromhex(blob["meta"]))
        decoded.append({"ev": schema.name, **decode_data(schema, bytes.fromhex(blob["data"]))})
    expected = [{k: v for k, v in e.items() if k != "t"} for e in events]
    # the decoder renders HEXINT values in lower case, the agent's JSON in its own case
    normal = [{k: v.lower() if isinstance(v, str) and v.startswith("0x") else v
               for k, v in e.items()} for e in expected]
    assert decoded == normal and len(decoded) >= 2
    assert {e["ev"] for e in decoded} >= {"session_open"}
    assert [e["txn_wait_ms"] for e in decoded[:2]] == [60000, 2000]


def test_the_agents_provider_id_is_the_etw_name_hash_of_its_name() -> None:
    tld = tlgdynamic.load()
    assert "{" + str(tld.providerid_from_name(AGENT_PROVIDER_NAME)).upper() + "}" == \
        AGENT_PROVIDER
    source = (source_dir() / "tlg.c").read_text().lower()
    assert "0x25d608eb, 0x8ee4, 0x5db8, {0xde, 0x6a, 0x77, 0x0e, 0xf8, 0x7b, 0x01, 0x1a}" in \
        source


def test_every_catalog_scenario_compiles_into_a_plan() -> None:
    for path in sorted(SCENARIOS.glob("*.toml")):
        plan = compile_plan(load_scenario(path), seed=1, callouts=callouts())
        assert plan["plan"] == 1 and plan["groups"], path
        for group in plan["groups"]:
            assert 1 <= len(group["steps"]) <= 64
    plan = compile_plan(load_scenario(SCENARIOS / "txn-wait-infinite.toml"), seed=1)
    waits = [s["args"]["txn_wait_ms"] for g in plan["groups"] for s in g["steps"]
             if s["do"] == "session_open"]
    assert 0xFFFFFFFF in waits
    assert plan["probe"]["config"]["flags"] & 0x8  # the probe adds its own policy


def test_a_callout_filter_without_a_driver_callout_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('description = "x"\n\n[[steps]]\nid = "f"\ndo = "add_filter"\n'
                    'layer = "STREAM"\naction = "callout_terminating"\n')
    only_connect = {"ALE_AUTH_CONNECT_V4": "{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"}
    with pytest.raises(ScenarioError) as caught:
        compile_plan(load_scenario(path), seed=1, callouts=only_connect)
    assert str(caught.value) == (
        f"{path}:3: steps[0].action: expected a layer where the driver has a callout "
        "(ALE_AUTH_CONNECT_V4), found callout_terminating at STREAM_V4")
