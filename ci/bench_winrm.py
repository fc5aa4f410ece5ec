"""Benchmark: WinRM command round trips with one reused shell vs a shell per command.

Run on demand (not a test), from the repository root::

    .venv/bin/python ci/bench_winrm.py [--commands 200] [--https]

Both modes run in the same process against the loopback WS-Management test
endpoint (tests/support/wsman_server.py), which executes each command with
/bin/sh. "new shell per command" is what pywinrm's ``Session.run_cmd`` (and
so testinfra's WinRM backend) does: open a shell, run, delete the shell and
close the HTTP session. The figures measure protocol overhead on loopback; a
real guest adds network latency and the cost of cmd.exe per shell, which makes
the gap wider, not narrower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.guest.credentials import Credentials, Secret
from harness.guest.settings import WinRMSettings
from harness.guest.winrm import WinRMTransport
from tests.support.pki import make_server_cert
from tests.support.wsman_server import WSManServer


def per_command_ms(transport: WinRMTransport, commands: int, *, new_shell: bool) -> list[float]:
    times = []
    for _ in range(commands):
        start = time.perf_counter()
        result = transport.run("true")
        if new_shell:
            transport.close()
        times.append((time.perf_counter() - start) * 1000)
        assert result.ok
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200, metavar="N",
                        help="commands per mode (default 200)")
    parser.add_argument("--https", action="store_true", help="use HTTPS with a test CA")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        tls = None
        ca = None
        if args.https:
            pki = make_server_cert(root / "pki")
            tls, ca = pki.server_context(), pki.ca_pem
        server = WSManServer(root, username="bench", password="bench-password", tls=tls).start()
        try:
            settings = WinRMSettings(
                host="127.0.0.1", port=server.port, https=args.https, auth="basic",
                insecure_http=not args.https, ca_bundle=ca,
            )
            transport = WinRMTransport(settings, Credentials("bench", Secret("bench-password")))
            per_command_ms(transport, 10, new_shell=False)  # warm-up
            transport.close()
            reused = per_command_ms(transport, args.commands, new_shell=False)
            transport.close()
            fresh = per_command_ms(transport, args.commands, new_shell=True)
            transport.close()
        finally:
            server.stop()
    reused_ms, fresh_ms = statistics.median(reused), statistics.median(fresh)
    scheme = "https" if args.https else "http"
    print(f"WinRM over {scheme} on loopback, {args.commands} commands per mode "
          "(median per command)")
    print(f"  reused shell:          {reused_ms:7.2f} ms  (mean {statistics.mean(reused):.2f})")
    print(f"  new shell per command: {fresh_ms:7.2f} ms  (mean {statistics.mean(fresh):.2f})")
    print(f"  ratio new/reused:      {fresh_ms / reused_ms:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
