"""The run-time scripts of a Windows scenario run: parsed, and saying what they must."""

from __future__ import annotations

from typing import Any

import pytest

from harness.agent import AGENT_PROVIDER
from harness.guest import powershell as ps
from harness.guest.scenario_run import TASK, RunPaths, agent_remote_path
from tests.guest.conftest import syntax_errors

PROBE = "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"
PATHS = RunPaths.for_run("connect-pend-permit", 7)
SCRIPTS = {
    "etw-start": ps.etw_session_start("callout-harness", [PROBE, AGENT_PROVIDER], PATHS.etl),
    "etw-stop": ps.etw_session_stop("callout-harness"),
    "agent-start": ps.agent_start(TASK, agent_remote_path("ab" * 32), PATHS.plan,
                                  PATHS.results, PATHS.work, 660),
    "agent-wait": ps.agent_wait(TASK, PATHS.results, 20),
    "agent-remove": ps.agent_task_remove(TASK),
    "gzip": ps.gzip_file(PATHS.etl, PATHS.etl_gz),
    "file-hash": ps.file_sha256_or_none(agent_remote_path("ab" * 32)),
    "receive-file": ps.receive_file(agent_remote_path("ab" * 32)),
    "boot-time": ps.last_boot_time(),
    "reboot": ps.restart(),
    "deploy-start": ps.start_and_verify("CalloutProbe"),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_run_script_parses_and_names_its_step(name: str, ps_parser: Any) -> None:
    script = SCRIPTS[name]
    assert syntax_errors(ps_parser, script) == []
    assert script.startswith(f"{ps.STEP_MARKER}{name}\n")
    ps.command_args(script)  # fits on one WinRM command line


def test_one_session_for_both_providers_on_the_qpc_clock() -> None:
    script = SCRIPTS["etw-start"]
    assert ("& 'logman.exe' 'create' 'trace' 'callout-harness' '-ow' '-o' "
            "'C:\\callout-harness\\runs\\connect-pend-permit-seed7\\trace.etl' '-p' "
            f"'{PROBE}' '0xffffffffffffffff' '0xff' '-ct' 'perf' '-bs' '1024' '-nb' '16' '256' "
            "'-ets'") in script
    assert (f"& 'logman.exe' 'update' 'trace' 'callout-harness' '-p' '{AGENT_PROVIDER}' "
            "'0xffffffffffffffff' '0xff' '-ets'") in script


def test_the_agent_runs_as_a_system_task_not_a_shell_child() -> None:
    script = SCRIPTS["agent-start"]
    assert "New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount" in script
    assert "Register-ScheduledTask -TaskName 'callout-harness-agent'" in script
    assert "Start-ScheduledTask -TaskName 'callout-harness-agent'" in script
    assert ("-Argument '--plan \"C:\\callout-harness\\runs\\connect-pend-permit-seed7\\"
            "plan.json\" --results \"C:\\callout-harness\\runs\\connect-pend-permit-seed7\\"
            "results.json\"'") in script
    assert "New-TimeSpan -Seconds 660" in script
    wait = SCRIPTS["agent-wait"]
    assert ps.AGENT_DONE in wait and ps.AGENT_RUNNING in wait
    assert "the agent task ended without results" in wait
