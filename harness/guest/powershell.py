"""Every PowerShell script the harness sends to a guest is rendered here.

One place renders scripts so that one set of rules holds for all of them:

- every interpolated value goes through :func:`quote` (a single-quoted string,
  embedded quotes doubled; PowerShell also treats the typographic quotes
  U+2018..U+201B as single quotes, so those are doubled too);
- every native tool call goes through :func:`native`, which stops the script
  with the tool's own exit code when it fails (PowerShell does not);
- scripts are plain statements (no here-strings, no splatting), which keeps
  them readable in a transcript and checkable by the tests' parser.

Scripts travel as ``powershell -EncodedCommand`` (UTF-16LE, base64), so no
quoting layer of cmd.exe or of the transport ever sees them.
"""

from __future__ import annotations

import base64
import ntpath
from collections.abc import Iterable

#: cmd.exe's command-line limit, which WinRM's shell applies to each command.
MAX_COMMAND_LINE = 8191
POWERSHELL = "powershell.exe"
POWERSHELL_ARGS = ("-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")
_SINGLE_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")

PREAMBLE = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n"

#: Each deployment and run-time script starts with this marker and its step's
#: name, so a transcript (and a scripted test guest) can tell the steps apart.
STEP_MARKER = "# callout-harness step: "


def _step(name: str) -> str:
    return f"{STEP_MARKER}{name}\n{PREAMBLE}"


def quote(value: str) -> str:
    """``value`` as a PowerShell single-quoted string literal (no expansion)."""
    if "\x00" in value:
        raise ValueError("a NUL character cannot be passed to PowerShell")
    for mark in _SINGLE_QUOTES:
        value = value.replace(mark, mark * 2)
    return f"'{value}'"


def encode(script: str) -> str:
    """The ``-EncodedCommand`` argument for ``script``: base64 of UTF-16LE."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def decode(encoded: str) -> str:
    """The script inside an ``-EncodedCommand`` argument (the inverse of :func:`encode`)."""
    return base64.b64decode(encoded).decode("utf-16-le")


def command_args(script: str) -> list[str]:
    """``powershell.exe``'s arguments for running ``script``; checks the length limit."""
    args = [*POWERSHELL_ARGS, "-EncodedCommand", encode(script)]
    length = len(POWERSHELL) + sum(len(a) + 1 for a in args)
    if length > MAX_COMMAND_LINE:
        raise ValueError(
            f"the encoded script is {length} characters on the command line; "
            f"the limit is {MAX_COMMAND_LINE}"
        )
    return args


def command_line(script: str) -> str:
    """The whole command line that runs ``script`` in Windows PowerShell."""
    return " ".join([POWERSHELL, *command_args(script)])


def native(exe: str, *args: str, ok_codes: Iterable[int] = (0,)) -> str:
    """A native tool call; the script exits with the tool's code unless it is in ``ok_codes``."""
    codes = sorted(set(ok_codes))
    call = " ".join(["&", quote(exe), *(quote(a) for a in args)])
    if codes == [0]:
        test = "$LASTEXITCODE -ne 0"
    else:
        test = "$LASTEXITCODE -notin " + ", ".join(str(c) for c in codes)
    return f"{call}\nif ({test}) {{ exit $LASTEXITCODE }}\n"


def fail(message: str, code: int = 1) -> str:
    """Statements that print ``message`` on stderr and exit with ``code``."""
    return f"[Console]::Error.WriteLine({quote(message)})\nexit {code}\n"


# -- files -------------------------------------------------------------------

def ensure_directory(path: str) -> str:
    return f"New-Item -ItemType Directory -Force -Path {quote(path)} | Out-Null\n"


def write_chunk(path: str, chunk_b64: str, *, first: bool) -> str:
    """Append one base64 chunk to ``path`` (truncating it for the first chunk)."""
    mode = "Create" if first else "Append"
    return (
        PREAMBLE
        + (ensure_directory(ntpath.dirname(path)) if first and ntpath.dirname(path) else "")
        + f"$bytes = [Convert]::FromBase64String({quote(chunk_b64)})\n"
        + f"$stream = [IO.File]::Open({quote(path)}, [IO.FileMode]::{mode})\n"
        + "try { $stream.Write($bytes, 0, $bytes.Length) } finally { $stream.Dispose() }\n"
    )


def file_sha256(path: str) -> str:
    """Print the SHA-256 of ``path`` (hex) on stdout."""
    return PREAMBLE + f"(Get-FileHash -LiteralPath {quote(path)} -Algorithm SHA256).Hash\n"


def file_length(path: str) -> str:
    """Print the size of ``path`` in bytes."""
    return PREAMBLE + f"(Get-Item -LiteralPath {quote(path)}).Length\n"


def read_base64_range(path: str, offset: int, count: int) -> str:
    """Print ``count`` bytes of ``path`` from ``offset`` (fewer at its end) as base64,
    reading only that range (a large file is fetched in pieces)."""
    return PREAMBLE + (
        f"$stream = [IO.File]::OpenRead({quote(path)})\n"
        f"try {{ [void]$stream.Seek({int(offset)}, 'Begin'); $buffer = New-Object byte[] "
        f"{int(count)}; $read = $stream.Read($buffer, 0, {int(count)}); "
        "[Convert]::ToBase64String($buffer, 0, $read) } finally { $stream.Dispose() }\n"
    )


# -- deployment ----------------------------------------------------------------

REBOOT_MARKER = "callout-harness: reboot required"


def enable_test_signing() -> str:
    """Turn test signing on unless it already is; print the reboot marker when it changed."""
    return (
        _step("deploy-testsigning")
        + "$current = & 'bcdedit.exe' '/enum' '{current}' | Out-String\n"
        + "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }\n"
        + "if ($current -match '(?m)^testsigning\\s+Yes') { exit 0 }\n"
        + native("bcdedit.exe", "/set", "testsigning", "on")
        + f"Write-Output {quote(REBOOT_MARKER)}\n"
    )


def import_certificate(cer_path: str) -> str:
    """Trust the driver's test certificate for kernel-mode code signing."""
    lines = [_step("deploy-certificate")]
    for store in ("Root", "TrustedPublisher"):
        location = f"Cert:\\LocalMachine\\{store}"
        lines.append(
            f"Import-Certificate -FilePath {quote(cer_path)} "
            f"-CertStoreLocation {quote(location)} | Out-Null\n"
        )
    return "".join(lines)


def install_pnp(inf_path: str) -> str:
    """Add the package to the driver store and install it (3010: reboot pending)."""
    return _step("deploy-install") + native("pnputil.exe", "/add-driver", inf_path, "/install",
                                            ok_codes=(0, 3010))


def _system_driver_path(sys_name: str) -> str:
    relative = quote("System32\\drivers\\" + sys_name)
    return f"(Join-Path $env:SystemRoot {relative})"


def install_service(service: str, sys_path: str) -> str:
    """Copy the .sys into System32\\drivers and create a kernel service for it."""
    sys_name = ntpath.basename(sys_path)
    return (
        _step("deploy-install")
        + f"Copy-Item -LiteralPath {quote(sys_path)} -Destination "
        + f"{_system_driver_path(sys_name)} -Force\n"
        + native(
            "sc.exe", "create", service, "type=", "kernel", "start=", "demand",
            "binPath=", "System32\\drivers\\" + sys_name,
        )
    )


def start_and_verify(service: str) -> str:
    """Start the driver's service; fail unless ``sc query`` reports it RUNNING.

    A kernel driver is a service that Get-Service does not list and that
    driverquery lists whether or not it runs, so the state comes from the
    service controller itself, polled while it is START_PENDING.
    """
    # 1056: ERROR_SERVICE_ALREADY_RUNNING
    return (
        _step("deploy-start")
        + native("sc.exe", "start", service, ok_codes=(0, 1056))
        + "$deadline = (Get-Date).AddSeconds(30)\n"
        + "do {\n"
        + f"    $query = & 'sc.exe' 'query' {quote(service)} | Out-String\n"
        + "    if ($LASTEXITCODE -ne 0) { [Console]::Error.WriteLine($query.Trim());"
        + " exit $LASTEXITCODE }\n"
        + "    if ($query -match 'STATE\\s+:\\s+4\\s+RUNNING') { exit 0 }\n"
        + "    Start-Sleep -Milliseconds 500\n"
        + "} while ((Get-Date) -lt $deadline)\n"
        + "$state = ($query -split \"`n\" | Where-Object { $_ -match 'STATE' }) -join ' '\n"
        + f"[Console]::Error.WriteLine({quote(service + ' is not RUNNING: ')} + $state.Trim())\n"
        + "exit 4\n"
    )


def enable_verifier(sys_name: str) -> str:
    """Driver Verifier's standard checks for the driver; effective after a reboot."""
    # verifier.exe exits with 2 when the new settings need a reboot.
    return (
        PREAMBLE
        + native("verifier.exe", "/standard", "/driver", sys_name, ok_codes=(0, 2))
        + f"Write-Output {quote(REBOOT_MARKER)}\n"
    )


def reset_verifier() -> str:
    return PREAMBLE + native("verifier.exe", "/reset", ok_codes=(0, 2))


def uninstall(service: str, *, inf_name: str | None, sys_name: str) -> str:
    """Stop and remove the driver: the PnP package when ``inf_name`` is given, else the service."""
    # 1060: no such service; 1062: not started.
    lines = [PREAMBLE, native("sc.exe", "stop", service, ok_codes=(0, 1060, 1062))]
    if inf_name is not None:
        lines.append(
            "$packages = Get-WindowsDriver -Online | Where-Object "
            f"{{ (Split-Path -Leaf $_.OriginalFileName) -eq {quote(inf_name)} }}\n"
            "foreach ($package in $packages) {\n"
            "    & 'pnputil.exe' '/delete-driver' $package.Driver '/uninstall' '/force'\n"
            "    if ($LASTEXITCODE -notin 0, 3010) { exit $LASTEXITCODE }\n"
            "}\n"
        )
    lines.append(native("sc.exe", "delete", service, ok_codes=(0, 1060)))
    lines.append(
        f"Remove-Item -LiteralPath {_system_driver_path(sys_name)} -Force "
        "-ErrorAction SilentlyContinue\n"
    )
    return "".join(lines)


def dump_wfp_state(xml_path: str) -> str:
    """Write the engine's whole state (providers, sublayers, callouts, filters) as XML."""
    return PREAMBLE + native("netsh.exe", "wfp", "show", "state", "file=" + xml_path)


# -- tracing ---------------------------------------------------------------------

def etw_start(session: str, provider_guid: str, etl_path: str) -> str:
    """Start a real-time-less file session for one provider, all keywords, all levels."""
    return (
        PREAMBLE
        + ensure_directory(ntpath.dirname(etl_path))
        # a session left over from an aborted run would make create fail
        + f"& 'logman.exe' 'stop' {quote(session)} '-ets' | Out-Null\n"
        + native(
            "logman.exe", "create", "trace", session, "-ow", "-o", etl_path,
            "-p", "{" + provider_guid.strip("{}") + "}", "0xffffffffffffffff", "0xff", "-ets",
        )
    )


def etw_stop(session: str) -> str:
    return PREAMBLE + native("logman.exe", "stop", session, "-ets")


def etw_convert(etl_path: str, xml_path: str) -> str:
    """Render the .etl as tracerpt's XML (``-y``: never prompt)."""
    return PREAMBLE + native("tracerpt.exe", etl_path, "-of", "XML", "-o", xml_path, "-y")


# -- a scenario run: one ETW session, the agent as a scheduled task ----------------



def etw_session_start(session: str, providers: list[str], etl_path: str) -> str:
    """One file session for every provider (driver and agent) on the QPC clock.

    ``-ct perf``: QPC time stamps, so the decoder times events with the
    header's PerfFreq; 1 MB buffers, 16 to 256 of them, so a busy scenario
    loses nothing (a capture that lost events is refused on the host). The
    first provider comes with ``create``, the others with ``update``.
    """
    first, *rest = ["{" + p.strip("{}") + "}" for p in providers]
    lines = [
        _step("etw-start"), ensure_directory(ntpath.dirname(etl_path)),
        f"& 'logman.exe' 'stop' {quote(session)} '-ets' | Out-Null\n",
        native("logman.exe", "create", "trace", session, "-ow", "-o", etl_path, "-p", first,
               "0xffffffffffffffff", "0xff", "-ct", "perf", "-bs", "1024", "-nb", "16", "256",
               "-ets"),
    ]
    for provider in rest:
        lines.append(native("logman.exe", "update", "trace", session, "-p", provider,
                            "0xffffffffffffffff", "0xff", "-ets"))
    return "".join(lines)


def etw_session_stop(session: str) -> str:
    return _step("etw-stop") + native("logman.exe", "stop", session, "-ets")


def agent_start(task: str, exe: str, plan: str, results: str, work: str,
                time_limit_s: int) -> str:
    """Run the agent as a SYSTEM scheduled task: it outlives the WinRM shell that starts it."""
    arguments = f'--plan "{plan}" --results "{results}"'
    return (
        _step("agent-start")
        + f"Remove-Item -LiteralPath {quote(results)} -Force -ErrorAction SilentlyContinue\n"
        + f"$action = New-ScheduledTaskAction -Execute {quote(exe)} -Argument {quote(arguments)}"
        + f" -WorkingDirectory {quote(work)}\n"
        + "$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount"
        + " -RunLevel Highest\n"
        + "$settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries"
        + " -DontStopIfGoingOnBatteries -ExecutionTimeLimit"
        + f" (New-TimeSpan -Seconds {int(time_limit_s)})\n"
        + f"Register-ScheduledTask -TaskName {quote(task)} -Action $action -Principal $principal"
        + " -Settings $settings -Force | Out-Null\n"
        + f"Start-ScheduledTask -TaskName {quote(task)}\n"
    )


AGENT_DONE = "callout-harness: agent done"
AGENT_RUNNING = "callout-harness: agent running"


def agent_wait(task: str, results: str, wait_s: int) -> str:
    """Wait up to ``wait_s`` for the results file; say whether the agent is done.

    The host calls this again while it prints the running marker (each call
    stays well inside WinRM's operation timeout); a task that ended without
    results is an error with the task's last result code.
    """
    return (
        _step("agent-wait")
        + f"$deadline = (Get-Date).AddSeconds({int(wait_s)})\n"
        + f"while (-not (Test-Path -LiteralPath {quote(results)})) {{\n"
        + f"    $info = Get-ScheduledTaskInfo -TaskName {quote(task)}\n"
        + f"    $state = (Get-ScheduledTask -TaskName {quote(task)}).State\n"
        + "    if ($state -ne 'Running' -and $info.LastRunTime -gt [datetime]::MinValue"
        + f" -and -not (Test-Path -LiteralPath {quote(results)})) {{\n"
        + "        Start-Sleep -Milliseconds 500\n"
        + f"        if (-not (Test-Path -LiteralPath {quote(results)})) {{\n"
        + "            [Console]::Error.WriteLine('the agent task ended without results: '"
        + " + $info.LastTaskResult)\n"
        + "            exit 3\n"
        + "        }\n"
        + "    }\n"
        + f"    if ((Get-Date) -gt $deadline) {{ Write-Output {quote(AGENT_RUNNING)}; exit 0 }}\n"
        + "    Start-Sleep -Milliseconds 250\n"
        + "}\n"
        + f"Write-Output {quote(AGENT_DONE)}\n"
    )


def agent_task_remove(task: str) -> str:
    return (
        _step("agent-remove")
        + f"Stop-ScheduledTask -TaskName {quote(task)} -ErrorAction SilentlyContinue\n"
        + f"Unregister-ScheduledTask -TaskName {quote(task)} -Confirm:$false"
        + " -ErrorAction SilentlyContinue\n"
    )


def gzip_file(source: str, target: str) -> str:
    """Compress ``source`` into ``target`` (gzip): an .etl shrinks several times."""
    return (
        _step("gzip")
        + f"$in = [IO.File]::OpenRead({quote(source)})\n"
        + f"$out = [IO.File]::Create({quote(target)})\n"
        + "try {\n"
        + "    $gz = New-Object IO.Compression.GZipStream($out, "
        + "[IO.Compression.CompressionMode]::Compress)\n"
        + "    try { $in.CopyTo($gz) } finally { $gz.Dispose() }\n"
        + "} finally { $in.Dispose(); $out.Dispose() }\n"
    )


def file_sha256_or_none(path: str) -> str:
    """Print the SHA-256 of ``path``, or ``none`` when there is no such file."""
    return (
        _step("file-hash")
        + f"if (Test-Path -LiteralPath {quote(path)}) {{ "
        + f"(Get-FileHash -LiteralPath {quote(path)} -Algorithm SHA256).Hash }} "
        + "else { Write-Output 'none' }\n"
    )


# -- reboots ---------------------------------------------------------------------------

def last_boot_time() -> str:
    """Print when Windows last booted (UTC, ISO 8601): a reboot changes it."""
    return (
        _step("boot-time")
        + "(Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime"
        + ".ToUniversalTime().ToString('o')\n"
    )


def restart() -> str:
    """Restart now; the WinRM connection drops while the command returns, or before."""
    return _step("reboot") + "Restart-Computer -Force\n"


def receive_file(path: str) -> str:
    """Write the base64 lines arriving on stdin to ``path``; print its SHA-256 at the end.

    Used with WS-Man Send: one process receives the whole file in large
    chunks, instead of one process per command-line-sized chunk.
    """
    directory = ntpath.dirname(path)
    return (
        _step("receive-file")
        + (ensure_directory(directory) if directory else "")
        + f"$out = [IO.File]::Open({quote(path)}, [IO.FileMode]::Create)\n"
        + "try {\n"
        + "    while ($null -ne ($line = [Console]::In.ReadLine())) {\n"
        + "        if ($line.Length -gt 0) {\n"
        + "            $bytes = [Convert]::FromBase64String($line)\n"
        + "            $out.Write($bytes, 0, $bytes.Length)\n"
        + "        }\n"
        + "    }\n"
        + "} finally { $out.Dispose() }\n"
        + f"(Get-FileHash -LiteralPath {quote(path)} -Algorithm SHA256).Hash\n"
    )
