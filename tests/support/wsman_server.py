"""A WS-Management endpoint on loopback that speaks the WinRM remote shell protocol.

It answers the five SOAP actions pywinrm sends to ``/wsman`` (Create a shell,
Command, Receive, Signal, Delete) with envelopes shaped like a Windows host's,
over HTTP or HTTPS, behind Basic authentication, so the real client stack
(pywinrm, requests, urllib3, TLS, xmltodict) is exercised end to end. A Receive
long-polls for the command's output up to the request's OperationTimeout and
then answers with the same WSManFault (code 2150858793) Windows sends.

What it is not: Windows. Commands do not run in cmd.exe:

- a plain command line runs through ``/bin/sh -c`` in the server's root
  directory, its output streamed back as it is produced;
- ``powershell.exe ... -EncodedCommand X`` is decoded (UTF-16LE base64, exactly
  as Windows PowerShell would) and the script is *interpreted* by a small subset
  interpreter, :class:`PowerShellSubset`, which knows only the statements the
  harness's file transfer scripts and the tests use. Anything else fails with
  exit code 1 and says so on stderr. Decoded scripts are kept in ``scripts``
  so tests can check what PowerShell would have received.

Windows paths (``C:\\dir\\file``) map to ``ROOT/C/dir/file``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
ACTION = {
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create": "create",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command": "command",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive": "receive",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal": "signal",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete": "delete",
}
DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
OPERATION_TIMEOUT_FAULT = 2150858793
SHELL_NOT_FOUND_FAULT = 2150858843


@dataclass
class Command:
    """One running command: output not yet received, and its end."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    rc: int | None = None
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Stats:
    """What the endpoint saw, from the peer's side."""

    shells_created: int = 0
    shells_deleted: int = 0
    #: (shell id, command line) of every Command, in order
    commands: list[tuple[str, str]] = field(default_factory=list)
    #: decoded PowerShell scripts, in order
    scripts: list[str] = field(default_factory=list)
    auth_failures: int = 0


class PowerShellSubset:
    """Interprets the few PowerShell statements the tests send; nothing more."""

    LIT = r"'((?:[^'\u2018-\u201b]|['\u2018-\u201b]{2})*)'"

    def __init__(self, root: Path, *, corrupt_writes: bool = False) -> None:
        self.root = root
        self.vars: dict[str, Any] = {}
        #: fault injection: flip the first bit of every chunk written to a file
        self.corrupt_writes = corrupt_writes

    def path(self, windows_path: str) -> Path:
        drive, _, rest = windows_path.partition(":")
        parts = [p for p in rest.replace("\\", "/").split("/") if p]
        return self.root.joinpath(drive.upper(), *parts)

    @staticmethod
    def unquote(text: str) -> str:
        for mark in ("'", "\u2018", "\u2019", "\u201a", "\u201b"):
            text = text.replace(mark * 2, mark)
        return text

    def run(self, script: str) -> tuple[bytes, bytes, int]:
        out: list[str] = []
        for raw in script.splitlines():
            stmt = raw.strip()
            if not stmt or re.fullmatch(r"\$(ErrorActionPreference|ProgressPreference) = '\w+'", stmt):
                continue
            try:
                result = self.statement(stmt, out)
            except OSError as exc:
                return "".join(out).encode(), f"{exc}\n".encode(), 1
            if result is not None:
                return "".join(out).encode(), result[0].encode(), result[1]
        return "".join(out).encode(), b"", 0

    def statement(self, stmt: str, out: list[str]) -> tuple[str, int] | None:
        lit = self.LIT
        if m := re.fullmatch(rf"Write-Output {lit}", stmt):
            out.append(self.unquote(m[1]) + "\n")
        elif m := re.fullmatch(r"exit (\d+)", stmt):
            return "", int(m[1])
        elif m := re.fullmatch(rf"\[Console\]::Error\.WriteLine\({lit}\)", stmt):
            return self.unquote(m[1]) + "\n", 1
        elif m := re.fullmatch(rf"New-Item -ItemType Directory -Force -Path {lit} \| Out-Null", stmt):
            self.path(self.unquote(m[1])).mkdir(parents=True, exist_ok=True)
        elif m := re.fullmatch(rf"\$bytes = \[Convert\]::FromBase64String\({lit}\)", stmt):
            self.vars["bytes"] = base64.b64decode(self.unquote(m[1]))
        elif m := re.fullmatch(rf"\$stream = \[IO\.File\]::Open\({lit}, \[IO\.FileMode\]::(Create|Append)\)", stmt):
            self.vars["stream"] = self.path(self.unquote(m[1])).open("wb" if m[2] == "Create" else "ab")
        elif stmt == "try { $stream.Write($bytes, 0, $bytes.Length) } finally { $stream.Dispose() }":
            data = self.vars["bytes"]
            if self.corrupt_writes and data:
                data = bytes([data[0] ^ 1]) + data[1:]
            with self.vars.pop("stream") as stream:
                stream.write(data)
        elif m := re.fullmatch(rf"\(Get-FileHash -LiteralPath {lit} -Algorithm SHA256\)\.Hash", stmt):
            data = self.path(self.unquote(m[1])).read_bytes()
            out.append(hashlib.sha256(data).hexdigest().upper() + "\n")
        elif m := re.fullmatch(rf"\(Get-Item -LiteralPath {lit}\)\.Length", stmt):
            out.append(f"{self.path(self.unquote(m[1])).stat().st_size}\n")
        elif m := re.fullmatch(rf"\$stream = \[IO\.File\]::OpenRead\({lit}\)", stmt):
            self.vars["reading"] = self.path(self.unquote(m[1]))
        elif m := re.fullmatch(
            r"try \{ \[void\]\$stream\.Seek\((\d+), 'Begin'\); \$buffer = New-Object byte\[\] "
            r"(\d+); \$read = \$stream\.Read\(\$buffer, 0, \d+\); "
            r"\[Convert\]::ToBase64String\(\$buffer, 0, \$read\) \} finally \{ \$stream\.Dispose\(\) \}",
            stmt,
        ):
            with self.vars.pop("reading").open("rb") as stream:
                stream.seek(int(m[1]))
                data = stream.read(int(m[2]))
            out.append(base64.b64encode(data).decode() + "\n")
        else:
            return f"test peer: PowerShell statement not interpreted: {stmt[:80]}\n", 1
        return None


class WSManServer:
    """The endpoint: ``start()`` it, point pywinrm at ``url``, ``stop()`` it."""

    def __init__(
        self, root: Path, *, username: str, password: str,
        tls: ssl.SSLContext | None = None, host: str = "127.0.0.1",
    ) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.tls = tls
        self.host = host
        self.stats = Stats()
        #: fault injection for upload checks (see PowerShellSubset.corrupt_writes)
        self.corrupt_writes = False
        self.shells: dict[str, dict[str, Command]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/wsman"

    def start(self, port: int = 0) -> WSManServer:
        server = self

        class Handler(_Handler):
            endpoint = server

        httpd = ThreadingHTTPServer((self.host, port), Handler)
        httpd.daemon_threads = True
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self.forget_shells()

    def forget_shells(self) -> None:
        """Drop every shell, as a guest reboot does."""
        with self._lock:
            for commands in self.shells.values():
                for cmd in commands.values():
                    if cmd.process is not None and cmd.process.poll() is None:
                        cmd.process.kill()
            self.shells.clear()

    # -- actions ---------------------------------------------------------------------

    def create(self) -> str:
        shell_id = str(uuid.uuid4()).upper()
        with self._lock:
            self.shells[shell_id] = {}
            self.stats.shells_created += 1
        return shell_id

    def command(self, shell_id: str, line: str, argv: list[str]) -> str:
        command_id = str(uuid.uuid4()).upper()
        cmd = Command()
        self.stats.commands.append((shell_id, line))
        self.shells[shell_id][command_id] = cmd
        program = argv[0].lower().rsplit("\\", 1)[-1] if argv else ""
        if program in ("powershell.exe", "powershell") and "-EncodedCommand" in argv:
            script = base64.b64decode(argv[argv.index("-EncodedCommand") + 1]).decode("utf-16-le")
            self.stats.scripts.append(script)
            interpreter = PowerShellSubset(self.root, corrupt_writes=self.corrupt_writes)
            stdout, stderr, rc = interpreter.run(script)
            cmd.stdout += stdout
            cmd.stderr += stderr
            cmd.rc = rc
            return command_id
        cmd.process = subprocess.Popen(
            ["/bin/sh", "-c", line], cwd=self.root, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        readers = [
            threading.Thread(target=_pump, args=(cmd, stream, buf), daemon=True)
            for stream, buf in ((cmd.process.stdout, cmd.stdout), (cmd.process.stderr, cmd.stderr))
        ]
        for reader in readers:
            reader.start()
        threading.Thread(target=_reap, args=(cmd, readers), daemon=True).start()
        return command_id

    def receive(self, shell_id: str, command_id: str, timeout_s: float) -> str | None:
        cmd = self.shells[shell_id][command_id]
        with cmd.cond:
            cmd.cond.wait_for(lambda: cmd.stdout or cmd.stderr or cmd.rc is not None, timeout_s)
            out, err, rc = bytes(cmd.stdout), bytes(cmd.stderr), cmd.rc
            cmd.stdout.clear()
            cmd.stderr.clear()
        if not out and not err and rc is None:
            return None
        streams = "".join(
            f'<rsp:Stream Name="{name}" CommandId="{command_id}">{base64.b64encode(data).decode()}'
            "</rsp:Stream>"
            for name, data in (("stdout", out), ("stderr", err)) if data
        )
        if rc is None:
            state = f'<rsp:CommandState CommandId="{command_id}" State="{RUNNING}"/>'
        else:
            state = (
                f'<rsp:CommandState CommandId="{command_id}" State="{DONE}">'
                f"<rsp:ExitCode>{rc}</rsp:ExitCode></rsp:CommandState>"
            )
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"

    def signal(self, shell_id: str, command_id: str) -> None:
        cmd = self.shells[shell_id].pop(command_id, None)
        if cmd is not None and cmd.process is not None and cmd.process.poll() is None:
            cmd.process.kill()
            cmd.process.wait()

    def delete(self, shell_id: str) -> None:
        with self._lock:
            self.shells.pop(shell_id, None)
            self.stats.shells_deleted += 1


def _pump(cmd: Command, stream: Any, buf: bytearray) -> None:
    with stream:
        while chunk := stream.read1(65536):
            with cmd.cond:
                buf += chunk
                cmd.cond.notify_all()


def _reap(cmd: Command, readers: list[threading.Thread]) -> None:
    assert cmd.process is not None
    rc = cmd.process.wait()
    for reader in readers:
        reader.join()
    with cmd.cond:
        cmd.rc = rc
        cmd.cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    endpoint: WSManServer
    protocol_version = "HTTP/1.1"
    # headers and body leave in separate writes; without TCP_NODELAY, Nagle and
    # the client's delayed ACK would add 40 ms to every request
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self._authorized():
            self.endpoint.stats.auth_failures += 1
            self._send(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        if self.path != "/wsman":
            self._send(404, b"")
            return
        root = ET.fromstring(body)
        header = root.find("s:Header", NS)
        assert header is not None
        action = ACTION[_text(header, "a:Action")]
        message_id = _text(header, "a:MessageID")
        selector = header.find("w:SelectorSet/w:Selector", NS)
        shell_id = selector.text if selector is not None and selector.text else ""
        timeout = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", _text(header, "w:OperationTimeout"))
        timeout_s = float(timeout[1]) if timeout else 20.0
        ep = self.endpoint
        if action != "create" and shell_id not in ep.shells:
            self._fault(message_id, SHELL_NOT_FOUND_FAULT, "The request for the Windows Remote "
                        f"Shell with ShellId {shell_id} failed because the shell was not found")
            return
        body_el = root.find("s:Body", NS)
        assert body_el is not None
        if action == "create":
            new_id = ep.create()
            payload = (
                "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
                "<a:ReferenceParameters><w:ResourceURI>"
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"
                f'<w:SelectorSet><w:Selector Name="ShellId">{new_id}</w:Selector></w:SelectorSet>'
                "</a:ReferenceParameters></x:ResourceCreated>"
            )
        elif action == "command":
            command = _text(body_el, "rsp:CommandLine/rsp:Command")
            arguments = _text(body_el, "rsp:CommandLine/rsp:Arguments")
            line = f"{command} {arguments}".strip()
            argv = f"{command} {arguments}".split()
            command_id = ep.command(shell_id, line, argv)
            payload = (
                f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
                "</rsp:CommandResponse>"
            )
        elif action == "receive":
            stream = body_el.find("rsp:Receive/rsp:DesiredStream", NS)
            assert stream is not None
            answer = ep.receive(shell_id, stream.get("CommandId", ""), timeout_s)
            if answer is None:
                self._fault(message_id, OPERATION_TIMEOUT_FAULT,
                            "The WS-Management service cannot complete the operation within "
                            "the time specified in OperationTimeout.")
                return
            payload = answer
        elif action == "signal":
            signal = body_el.find("rsp:Signal", NS)
            assert signal is not None
            ep.signal(shell_id, signal.get("CommandId", ""))
            payload = "<rsp:SignalResponse/>"
        else:
            ep.delete(shell_id)
            payload = ""
        self._send(200, _envelope(message_id, payload))

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user == self.endpoint.username and password == self.endpoint.password

    def _fault(self, message_id: str, code: int, reason: str) -> None:
        fault = (
            "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode>"
            "<s:Value>w:TimedOut</s:Value></s:Subcode></s:Code>"
            f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
            '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"'
            f' Code="{code}" Machine="127.0.0.1"><f:Message>{escape(reason)}</f:Message>'
            "</f:WSManFault></s:Detail></s:Fault>"
        )
        self._send(500, _envelope(message_id, fault))

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def _text(el: ET.Element, path: str) -> str:
    found = el.find(path, NS)
    return found.text or "" if found is not None else ""


def _envelope(relates_to: str, body: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        "<s:Header><a:Action>response</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()
