"""PowerShell errors over WinRM arrive as CLIXML; the harness reports their text."""

from __future__ import annotations

from pathlib import Path

from harness.guest.clixml import decode_clixml
from harness.guest.winrm import WinRMTransport

# The shape Windows PowerShell 5.1 writes to stderr when a remote script fails:
# a progress record first, then the error record split into lines.
REAL_SHAPE = (
    "#< CLIXML\r\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
    "</T><T>System.Object</T></TN><MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\">"
    '<AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC>'
    '<T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>'
    "<S S=\"Error\">Get-Item : Cannot find path 'C:\\nope' because it does not exist._x000D__x000A_</S>"
    '<S S="Error">At line:3 char:1_x000D__x000A_</S>'
    "<S S=\"Error\">+ Get-Item -LiteralPath 'C:\\nope'_x000D__x000A_</S>"
    '<S S="Error">+ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~_x000D__x000A_</S>'
    '<S S="Error">    + CategoryInfo          : ObjectNotFound: (C:\\nope:String) [Get-Item], '
    "ItemNotFoundException_x000D__x000A_</S>"
    '<S S="Warning">the _x0022_quoted_x0022_ warning_x000D__x000A_</S>'
    "</Objs>"
)


def test_error_records_become_plain_lines() -> None:
    text = decode_clixml(REAL_SHAPE)
    lines = text.splitlines()
    assert lines[0] == "Get-Item : Cannot find path 'C:\\nope' because it does not exist."
    assert lines[1] == "At line:3 char:1"
    assert "ObjectNotFound: (C:\\nope:String)" in lines[4]
    assert lines[-1] == 'the "quoted" warning'
    assert "Preparing modules" not in text and "<" not in text


def test_plain_text_and_broken_clixml_are_kept() -> None:
    assert decode_clixml("sc.exe: access denied\n") == "sc.exe: access denied\n"
    broken = "#< CLIXML\r\n<Objs><S S=\"Error\">unclosed</Objs>"
    assert decode_clixml(broken) == broken
    assert decode_clixml("native tool said this\r\n" + REAL_SHAPE).startswith(
        "native tool said this\nGet-Item : Cannot find path")


def test_the_winrm_transport_reports_the_decoded_text(wsman: object, password: str,
                                                      tmp_path: Path) -> None:
    from harness.guest.credentials import Credentials, Secret
    from tests.guest.conftest import USER, http_settings

    transport = WinRMTransport(http_settings(wsman), Credentials(USER, Secret(password)))
    try:
        # the loopback peer writes this stderr verbatim, as Windows would hand it over
        one_line = REAL_SHAPE.replace("\r\n", "").replace("'", "''")
        result = transport.run_powershell(f"[Console]::Error.WriteLine('{one_line}')\n")
        assert result.rc == 1
        assert result.stderr.splitlines()[0] == (
            "Get-Item : Cannot find path 'C:\\nope' because it does not exist.")
        assert "CLIXML" not in result.stderr and "_x000D_" not in result.stderr
    finally:
        transport.close()
