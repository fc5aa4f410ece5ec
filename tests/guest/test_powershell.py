"""The rendered PowerShell: quoting, encoding, and a syntax check of every script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.guest import powershell as ps
from harness.guest.deploy import GuestLayout, render_scripts
from harness.guest.etw import EtwSession
from harness.guest.manifest import load_manifest
from tests.guest.conftest import syntax_errors

REPO = Path(__file__).resolve().parents[2]
NASTY = [
    "plain", "it's", "\u2018curly\u2019 and \u201alow\u201b", "$(Remove-Item C:\\ -Recurse)", "`n`t", '"double"',
    "a''b", "semi; colon | pipe & amp", "{brace}", "ünïcödé 雪", "",
]


def every_script() -> dict[str, str]:
    manifest = load_manifest(REPO / "drivers" / "probe" / "driver.toml", check_binaries=False)
    scripts = render_scripts(manifest)
    layout = GuestLayout()
    scripts.update(EtwSession.for_driver("probe", manifest.etw_provider, layout.trace_dir).scripts())
    scripts["install_pnp"] = ps.install_pnp("C:\\drv\\probe.inf")
    scripts["uninstall_pnp"] = ps.uninstall("CalloutProbe", inf_name="probe.inf",
                                            sys_name="probe.sys")
    scripts["write_chunk_first"] = ps.write_chunk("C:\\a b\\it's.sys", "QUJD", first=True)
    scripts["write_chunk_next"] = ps.write_chunk("C:\\a b\\it's.sys", "QUJD", first=False)
    scripts["file_sha256"] = ps.file_sha256("C:\\a b\\it's.sys")
    scripts["file_length"] = ps.file_length("C:\\a b\\it's.etl")
    scripts["read_base64_range"] = ps.read_base64_range("C:\\a b\\it's.etl", 4096, 1024)
    return scripts


@pytest.mark.parametrize("name", sorted(every_script()))
def test_every_generated_script_parses(ps_parser: Any, name: str) -> None:
    assert syntax_errors(ps_parser, every_script()[name]) == []


def test_the_syntax_check_does_catch_broken_scripts(ps_parser: Any) -> None:
    assert syntax_errors(ps_parser, "if ($x -eq 1) { Write-Output 'a'\n")
    assert syntax_errors(ps_parser, "Write-Output 'unterminated\n")


@pytest.mark.parametrize("value", NASTY, ids=range(len(NASTY)))
def test_quoted_values_stay_one_verbatim_string(ps_parser: Any, value: str) -> None:
    script = f"Write-Output {ps.quote(value)}\n"
    assert syntax_errors(ps_parser, script) == []
    tree = ps_parser.parse(script.encode())
    strings = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "verbatim_string_characters":
            strings.append(node.text.decode())
        stack.extend(node.children)
    assert strings == [ps.quote(value)]


def test_an_injection_attempt_stays_data(ps_parser: Any) -> None:
    hostile = "x' ; Remove-Item -Recurse C:\\ ; '"
    script = ps.install_service(hostile, "C:\\d\\probe.sys")
    commands = []
    stack = [ps_parser.parse(script.encode()).root_node]
    while stack:
        node = stack.pop()
        if node.type == "command_name":
            commands.append(node.text.decode())
        stack.extend(node.children)
    assert "Remove-Item" not in commands
    assert "'x'' ; Remove-Item -Recurse C:\\ ; '''" in script


def test_encoded_command_is_utf16le_base64() -> None:
    script = "Write-Output 'Grüße'"
    assert ps.encode(script) == "VwByAGkAdABlAC0ATwB1AHQAcAB1AHQAIAAnAEcAcgD8AN8AZQAnAA=="
    assert ps.decode(ps.encode(script)) == script
    assert ps.command_line(script).split()[-2:] == ["-EncodedCommand", ps.encode(script)]


def test_a_script_too_long_for_one_command_line_is_refused() -> None:
    with pytest.raises(ValueError, match="the limit is 8191"):
        ps.command_line("Write-Output '" + "x" * 4000 + "'")


def test_native_calls_exit_with_the_tools_code() -> None:
    assert ps.native("sc.exe", "query", "X") == (
        "& 'sc.exe' 'query' 'X'\nif ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }\n"
    )
    assert "$LASTEXITCODE -notin 0, 3010" in ps.install_pnp("C:\\d\\x.inf")


def test_deployment_uses_the_documented_commands() -> None:
    scripts = every_script()
    assert "& 'bcdedit.exe' '/set' 'testsigning' 'on'" in scripts["enable_test_signing"]
    assert ("Import-Certificate -FilePath 'C:\\callout-harness\\driver\\probe-test.cer' "
            "-CertStoreLocation 'Cert:\\LocalMachine\\Root'") in scripts["import_certificate"]
    assert "'Cert:\\LocalMachine\\TrustedPublisher'" in scripts["import_certificate"]
    assert ("& 'sc.exe' 'create' 'CalloutProbe' 'type=' 'kernel' 'start=' 'demand' "
            "'binPath=' 'System32\\drivers\\probe.sys'") in scripts["install"]
    assert ("& 'pnputil.exe' '/add-driver' 'C:\\drv\\probe.inf' '/install'"
            in scripts["install_pnp"])
    # a kernel driver's state comes from the service controller, not from driverquery
    assert "& 'sc.exe' 'query' 'CalloutProbe'" in scripts["start"]
    assert "STATE\\s+:\\s+4\\s+RUNNING" in scripts["start"]
    assert "driverquery" not in scripts["start"] and "Get-Service" not in scripts["start"]
    assert "& 'verifier.exe' '/standard' '/driver' 'probe.sys'" in scripts["enable_verifier"]
    assert ("& 'netsh.exe' 'wfp' 'show' 'state' 'file=C:\\callout-harness\\wfpstate.xml'"
            in scripts["dump_wfp_state"])
    assert "& 'sc.exe' 'delete' 'CalloutProbe'" in scripts["uninstall"]
    assert "'/delete-driver'" in scripts["uninstall_pnp"]
