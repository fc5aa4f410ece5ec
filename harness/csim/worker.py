"""A long-lived child process that runs scenarios with C callouts, one after another.

Forking a large parent (pytest with the harness loaded) for every scenario
costs more than running the scenario. A worker is forked once per callout spec
and serves scenarios over a pipe; each scenario still gets a fresh copy of the
driver (``CCallout`` loads a private copy of the shared object), so driver
globals start fresh. When a driver kills its worker, that scenario fails as
"driver crashed" with what the worker printed during that scenario, and the
next scenario gets a new worker.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import gc
import os
import pickle
import select
import signal
import struct
import tempfile
import time
import warnings
from pathlib import Path
from typing import IO

#: Scenarios one worker runs before it is replaced (each leaves a driver copy mapped).
MAX_JOBS = 200
_LEN = struct.Struct("<Q")
#: The largest message either side accepts.
MAX_MESSAGE = 1 << 28


class Worker:
    """One forked worker; :meth:`run` returns the pickled reply, or None if it died."""

    def __init__(self) -> None:
        # closed in kill(): the file lives as long as the worker
        self.err: IO[bytes] = tempfile.TemporaryFile(prefix="csim-worker-stderr-")  # noqa: SIM115
        job_r, job_w = os.pipe()
        reply_r, reply_w = os.pipe()
        gc.freeze()  # the collector would touch (and so copy) every page the child shares
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        gc.unfreeze()
        if pid == 0:  # pragma: no cover - the worker answers through the pipe
            os.close(job_w)
            os.close(reply_r)
            _serve(job_r, reply_w, self.err.fileno())
        os.close(job_r)
        os.close(reply_w)
        self.pid = pid
        self.jobs_fd = job_w
        self.reply_fd = reply_r
        self.jobs = 0
        self.status: int | None = None

    def run(self, job: tuple[object, ...], timeout_s: float) -> tuple[bytes | None, str]:
        """(reply, what the worker printed meanwhile); reply None when the worker died."""
        start = os.fstat(self.err.fileno()).st_size
        self.jobs += 1
        data = pickle.dumps(job)
        try:
            os.write(self.jobs_fd, _LEN.pack(len(data)) + data)
            reply = self._read_reply(timeout_s)
        except OSError:
            reply = None
        if reply is None:
            self.wait_exit()
        end = os.fstat(self.err.fileno()).st_size
        printed = os.pread(self.err.fileno(), min(end - start, 1 << 20), start)
        if reply is None:
            self.kill()
        return reply, printed.decode("utf-8", "replace")

    def _read_reply(self, timeout_s: float) -> bytes | None:
        deadline = time.monotonic() + timeout_s
        buf = b""
        need = _LEN.size
        length: int | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.reply_fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(self.reply_fd, max(need - len(buf), 1 << 16))
            if not chunk:
                return None
            buf += chunk
            if length is None and len(buf) >= _LEN.size:
                (length,) = _LEN.unpack(buf[:_LEN.size])
                if length > MAX_MESSAGE:
                    return None
                buf = buf[_LEN.size:]
                need = length
            if length is not None and len(buf) >= length:
                return buf[:length]

    def kill(self) -> None:
        """End the worker (if it is still there) and keep how it ended in ``status``."""
        for fd in (self.jobs_fd, self.reply_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid == 0:  # still running: a hang, or our own shutdown
                    os.kill(self.pid, signal.SIGKILL)
                    _, status = os.waitpid(self.pid, 0)
                self.status = status
            except OSError:
                self.status = 0
        self.err.close()

    def wait_exit(self, grace_s: float = 5.0) -> None:
        """After the pipe closed: give the dying worker a moment to exit by itself."""
        deadline = time.monotonic() + grace_s
        while self.status is None and time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                return
            time.sleep(0.005)


def _serve(job_fd: int, reply_fd: int, err_fd: int) -> None:  # pragma: no cover - in the child
    from harness.csim import process
    from harness.scenario.loader import load_scenario
    from harness.targets.sim import SimTarget

    process.mark_child()
    os.dup2(err_fd, 2)
    faulthandler.disable()  # the report is the driver's C stack, not the interpreter's
    targets: dict[tuple[object, ...], SimTarget] = {}
    with os.fdopen(job_fd, "rb", buffering=0) as jobs, os.fdopen(reply_fd, "wb") as replies:
        while True:
            head = _read_exact(jobs, _LEN.size)
            if head is None:
                os._exit(0)
            (length,) = _LEN.unpack(head)
            body = _read_exact(jobs, length)
            if body is None:
                os._exit(0)
            spec, faults, scenario_path, name, seed, out_dir, attempt = pickle.loads(body)
            payload: tuple[str, object]
            try:
                key = (spec, tuple(faults))
                target = targets.get(key)
                if target is None:
                    target = targets[key] = SimTarget(spec, tuple(faults))
                scenario = load_scenario(Path(scenario_path))
                if scenario.name != name:
                    raise RuntimeError(f"{scenario_path} no longer holds scenario {name!r}")
                payload = ("ok", target.run(scenario, seed=seed, out_dir=Path(out_dir),
                                            attempt=attempt))
            except BaseException as exc:  # sent to the parent, raised there
                payload = ("err", (type(exc).__name__, str(exc)))
            data = pickle.dumps(payload)
            replies.write(_LEN.pack(len(data)) + data)
            replies.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:  # pragma: no cover - in the child
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


_POOL: dict[tuple[object, ...], Worker] = {}


def worker_for(key: tuple[object, ...]) -> Worker:
    """The live worker for a callout spec and faults, replaced after MAX_JOBS scenarios."""
    worker = _POOL.get(key)
    if worker is not None and worker.jobs >= MAX_JOBS:
        worker.kill()
        worker = None
    if worker is None:
        worker = _POOL[key] = Worker()
    return worker


def forget(key: tuple[object, ...]) -> None:
    _POOL.pop(key, None)


@atexit.register
def _shutdown() -> None:
    for worker in list(_POOL.values()):
        worker.kill()
    _POOL.clear()
