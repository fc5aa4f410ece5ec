"""A scripted Windows guest behind the loopback WS-Man endpoint.

The harness's run-time scripts start with ``# callout-harness step: NAME``
(:data:`harness.guest.powershell.STEP_MARKER`); this peer plays each step the
way Windows would, with real parts where they exist here:

etw-start      remembers the session (its providers, the .etl path) and its clock
agent-start    runs the uploaded harness-agent.exe, the very bytes the harness
               copied in, under Wine in the background (a scheduled task
               outlives the shell too), with the plan and results paths the
               script names
agent-wait     waits for the results file, as the script would, within its slice
etw-stop       writes the .etl the session would have: the agent's TraceLogging
               events (its --dump-tlg bytes, time-stamped from its --events
               stream) and the driver's (given by the test), in per-processor
               buffers with a QPC clock
gzip, file-hash, agent-remove   what the scripts do

File transfers and everything else go to the endpoint's PowerShell subset.
The deployment scripts (test signing, certificate, install, start) are
answered as a guest that already has test signing on would answer them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.agent import AGENT_PROVIDER
from harness.agent.wine import find_wine, windows_path
from harness.guest import powershell as ps
from tests.etw import etlbuild, tlgdynamic
from tests.support.wsman_server import (
    NS,
    Command,
    PowerShellSubset,
    WSManServer,
    _envelope,
    _Handler,
    _text,
)

LIT = PowerShellSubset.LIT
SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"


class _SendHandler(_Handler):
    """The endpoint's handler plus WS-Man Send (a command's stdin), which Windows has."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if SEND.encode() in body and self._authorized():
            root = ET.fromstring(body)
            header = root.find("s:Header", NS)
            assert header is not None
            selector = header.find("w:SelectorSet/w:Selector", NS)
            shell_id = selector.text if selector is not None and selector.text else ""
            stream = root.find("s:Body/rsp:Send/rsp:Stream", NS)
            assert stream is not None
            self.endpoint.stdin(shell_id, stream.get("CommandId", ""),
                                base64.b64decode(stream.text or ""), stream.get("End") == "true")
            self._send(200, _envelope(_text(header, "a:MessageID"), "<rsp:SendResponse/>"))
            return
        # the base handler reads the body itself; the connection's stream stays for keep-alive
        connection = self.rfile
        self.rfile = io.BytesIO(body)
        try:
            super().do_POST()
        finally:
            self.rfile = connection
PERF_FREQ = 10_000_000


def literals(script: str) -> list[str]:
    return [PowerShellSubset.unquote(m) for m in re.findall(LIT, script)]


class ScriptedWindowsGuest(WSManServer):
    def __init__(self, root: Path, *, username: str, password: str,
                 driver_events: list[tuple[str, Any]] | None = None,
                 driver_provider: str = "") -> None:
        super().__init__(root, username=username, password=password)
        self.subset = PowerShellSubset(root)
        self.session: dict[str, Any] | None = None
        self.agent_thread: threading.Thread | None = None
        self.steps_seen: list[str] = []
        self.private = root / "peer"
        self.private.mkdir(parents=True, exist_ok=True)
        self.driver_events = driver_events or []
        self.driver_provider = driver_provider
        self.agent_runs = 0
        self.deployed: list[str] = []
        self.boots = 0
        self.receivers: dict[str, tuple[str, bytearray]] = {}
        self.sends = 0

    def start(self, port: int = 0) -> ScriptedWindowsGuest:
        from http.server import ThreadingHTTPServer

        server = self

        class Handler(_SendHandler):
            endpoint = server

        httpd = ThreadingHTTPServer((self.host, port), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stdin(self, shell_id: str, command_id: str, data: bytes, end: bool) -> None:
        path, buf = self.receivers[command_id]
        buf += data
        self.sends += 1
        if end:
            target = self.subset.path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"".join(base64.b64decode(line) for line in
                                        bytes(buf).split(b"\r\n") if line))
            cmd = self.shells[shell_id][command_id]
            with cmd.cond:
                cmd.stdout += (hashlib.sha256(target.read_bytes()).hexdigest().upper()
                               + "\n").encode()
                cmd.rc = 0
                cmd.cond.notify_all()

    def command(self, shell_id: str, line: str, argv: list[str]) -> str:
        program = argv[0].lower().rsplit("\\", 1)[-1] if argv else ""
        if program in ("powershell.exe", "powershell") and "-EncodedCommand" in argv:
            script = ps.decode(argv[argv.index("-EncodedCommand") + 1])
            step = re.match(re.escape(ps.STEP_MARKER) + r"(\S+)", script)
            if step and step[1] == "receive-file":
                self.stats.scripts.append(script)
                self.steps_seen.append(step[1])
                return self._receiving(shell_id, line, literals(script.split(ps.PREAMBLE, 1)[-1]))
            if step:
                self.stats.scripts.append(script)
                self.steps_seen.append(step[1])
                out, err, rc = self.play(step[1], script)
                return self._done(shell_id, line, out, err, rc)
        return super().command(shell_id, line, argv)

    def _receiving(self, shell_id: str, line: str, args: list[str]) -> str:
        import uuid

        command_id = str(uuid.uuid4()).upper()
        self.stats.commands.append((shell_id, line))
        self.shells[shell_id][command_id] = Command()  # runs until its stdin ends
        self.receivers[command_id] = (args[-2], bytearray())
        return command_id

    def _done(self, shell_id: str, line: str, out: str, err: str, rc: int) -> str:
        import uuid

        command_id = str(uuid.uuid4()).upper()
        cmd = Command()
        cmd.stdout += out.encode()
        cmd.stderr += err.encode()
        cmd.rc = rc
        self.stats.commands.append((shell_id, line))
        self.shells[shell_id][command_id] = cmd
        return command_id

    # -- the steps ----------------------------------------------------------------------

    def play(self, step: str, script: str) -> tuple[str, str, int]:
        args = literals(script.split(ps.PREAMBLE, 1)[-1])
        if step == "file-hash":
            path = self.subset.path(args[0])
            return (hashlib.sha256(path.read_bytes()).hexdigest().upper() + "\n"
                    if path.exists() else "none\n"), "", 0
        if step == "etw-start":
            providers = [args[i + 1].upper() for i, a in enumerate(args) if a == "-p"]
            assert "-ct" in args and args[args.index("-ct") + 1] == "perf", args
            self.session = {"etl": args[args.index("-o") + 1], "providers": providers,
                            "start": time.monotonic()}
            return "", "", 0
        if step == "agent-start":
            return self.start_agent(script)
        if step == "agent-wait":
            results = self.subset.path(args[0])
            found = re.search(r"AddSeconds\((\d+)\)", script)
            assert found, script
            wait_s = int(found[1])
            deadline = time.monotonic() + wait_s
            while not results.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return (ps.AGENT_DONE if results.exists() else ps.AGENT_RUNNING) + "\n", "", 0
        if step == "etw-stop":
            self.write_etl()
            return "", "", 0
        if step == "gzip":
            with self.subset.path(args[0]).open("rb") as src, \
                    gzip.open(self.subset.path(args[1]), "wb") as dst:
                shutil.copyfileobj(src, dst)
            return "", "", 0
        if step == "boot-time":
            return f"2026-03-04T10:00:{self.boots:02d}.0000000Z\n", "", 0
        if step == "reboot":
            # the guest goes down: every shell is gone, and it comes back after a while
            self.boots += 1
            threading.Timer(0.05, self.forget_shells).start()
            return "", "", 0
        if step.startswith("deploy-"):
            # a guest whose test signing is on already and whose driver starts
            self.deployed.append(step)
            return "", "", 0
        if step == "agent-remove":
            if self.agent_thread is not None:
                self.agent_thread.join(timeout=120)
            return "", "", 0
        return "", f"scripted guest: no step {step}\n", 1

    def start_agent(self, script: str) -> tuple[str, str, int]:
        execute = re.search(rf"-Execute {LIT}", script)
        argument = re.search(rf"-Argument {LIT}", script)
        assert execute and argument, script
        exe = self.subset.path(PowerShellSubset.unquote(execute[1]))
        plan, results = re.findall(r'"([^"]+)"', PowerShellSubset.unquote(argument[1]))
        wine = find_wine()
        if wine is None or not exe.exists():
            return "", "scripted guest: no Wine or no agent to run\n", 1
        self.agent_runs += 1
        events, dump = self.private / "events.jsonl", self.private / "dump.jsonl"
        command = [wine, str(exe), "--plan", windows_path(self.subset.path(plan)),
                   "--results", windows_path(self.subset.path(results)),
                   "--events", windows_path(events), "--dump-tlg", windows_path(dump)]

        def task() -> None:
            import os
            import subprocess

            env = dict(os.environ, WINEPREFIX=str(self.root.parent / "wineprefix"),
                       WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
            done = subprocess.run(command, env=env, capture_output=True, timeout=300,
                                  check=False, text=True)
            (self.private / "agent.log").write_text(
                f"exit {done.returncode}\n{done.stdout}{done.stderr}")

        self.agent_thread = threading.Thread(target=task, daemon=True)
        self.agent_thread.start()
        return "", "", 0

    def write_etl(self) -> None:
        assert self.session is not None
        tld = tlgdynamic.load()
        capture = etlbuild.Capture(perf_freq=PERF_FREQ)
        base = 5_000_000
        # the driver: events the test scripted, at the session's start
        for i, (name, build) in enumerate(self.driver_events):
            eb = tld.EventBuilder()
            eb.reset(name.encode())
            build(eb)
            meta, data = tlgdynamic.blobs(eb)
            capture.events.append(etlbuild.Event(base + i, self.driver_provider, meta, data,
                                                 tlgdynamic.traits(b"CalloutProbe"), cpu=0,
                                                 pid=4))
        events_path, dump_path = self.private / "events.jsonl", self.private / "dump.jsonl"
        if dump_path.exists():
            dump = [json.loads(x) for x in dump_path.read_text().splitlines()]
            stream = [json.loads(x) for x in events_path.read_text().splitlines()]
            traits = bytes.fromhex(dump[0]["traits"])
            for blob, ev in zip(dump[1:], stream, strict=True):
                stamp = base + 1000 + int(ev["t"] * PERF_FREQ)
                capture.events.append(etlbuild.Event(
                    stamp, AGENT_PROVIDER, bytes.fromhex(blob["meta"]),
                    bytes.fromhex(blob["data"]), traits, cpu=1, pid=900))
        etl = self.subset.path(self.session["etl"])
        etl.parent.mkdir(parents=True, exist_ok=True)
        capture.write(etl)
