"""Run one scenario with a C callout in a child process.

The parent forks; the child runs the scenario (engine model and the loaded
driver) and sends back its result; the trace file is written by the child as
it goes. A child that dies (a signal, the runtime's abort on a kernel rule the
driver broke, a sanitizer report) fails the scenario with
:class:`~harness.errors.DriverCrashed`, naming the signal, the driver's C stack
or sanitizer report (the child's standard error) and the trace up to the
crash. The caller's process, pytest included, never dies with the driver.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import pickle
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from harness.csim.process import LIBRARIES, in_child, mark_child
from harness.errors import DriverCrashed, HarnessError, TargetError, UsageError

__all__ = ["LIBRARIES", "in_child", "mark_child", "run_isolated"]

T = TypeVar("T")
#: How long one scenario may run in its child before it is killed.
TIMEOUT_ENV = "CALLOUT_HARNESS_CSIM_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600.0
#: Lines of the child's standard error quoted in a crash report.
MAX_REPORT_LINES = 60


def timeout_s() -> float:
    """``CALLOUT_HARNESS_CSIM_TIMEOUT_S``: how long one scenario may run (a positive number)."""
    text = os.environ.get(TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise UsageError(f"{TIMEOUT_ENV}: expected seconds between 0 and 86400, found {text!r}")
    return value


def sanitizer_env() -> dict[str, str]:
    """The environment of a child that loads a sanitizer build."""
    from harness.csim.build import gcc

    libasan = subprocess.run([gcc(), "-print-file-name=libasan.so"], capture_output=True,
                             text=True, check=False).stdout.strip()
    if not libasan or not Path(libasan).exists():
        raise UsageError("the sanitizer build needs libasan (apt-get install libasan8)")
    env = dict(os.environ)
    env["LD_PRELOAD"] = str(Path(libasan).resolve())
    # CPython keeps memory until exit by design: leak reports would be noise
    env["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1:abort_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:abort_on_error=1"
    return env


def run_sanitized(job: tuple[object, ...], scenario: str, trace: Path) -> Any:
    """One scenario in a new interpreter with the sanitizer runtime preloaded."""
    limit_s = timeout_s()
    with tempfile.TemporaryDirectory(prefix="csim-child-") as tmp:
        result = Path(tmp) / "result.pickle"
        err_path = Path(tmp) / "stderr"
        with err_path.open("wb") as err:
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "harness.csim.child", str(result)],
                    input=pickle.dumps(job), stdout=subprocess.DEVNULL, stderr=err,
                    env=sanitizer_env(), timeout=limit_s, check=False)
                status = done.returncode
            except subprocess.TimeoutExpired:
                status = -signal.SIGKILL
        report = err_path.read_bytes()[: 1 << 20].decode("utf-8", "replace")
        payload = result.read_bytes() if result.is_file() else b""
    if payload:
        kind, value = pickle.loads(payload)
        if kind == "ok":
            _cross_check(scenario, trace)
            return value
        raise _rebuild(value)
    wait_status = -status if status < 0 else status << 8  # as os.waitpid reports it
    raise DriverCrashed(_crash_message(scenario, wait_status, report, trace, limit_s))


def run_isolated(fn: Callable[[], T], scenario: str, trace: Path,
                 job: tuple[object, ...] | None = None) -> T:
    """``fn()`` in a forked child; its result, its exception, or DriverCrashed.

    With the sanitizer build (``CALLOUT_HARNESS_SANITIZE=1``) the child is a new
    interpreter instead, running ``job`` (see :mod:`harness.csim.child`).
    """
    from harness.csim import sanitizing

    if job is not None and sanitizing():
        return cast(T, run_sanitized(job, scenario, trace))
    limit_s = timeout_s()
    if job is not None and Path(str(job[2])).is_file():
        return cast(T, _run_in_worker(job, scenario, trace, limit_s))
    with tempfile.TemporaryFile(prefix="csim-stderr-") as err:
        read_fd, write_fd = os.pipe()
        gc.freeze()  # the collector would touch (and so copy) every page the child shares
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        gc.unfreeze()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            _child(fn, write_fd, read_fd, err.fileno())
        os.close(write_fd)
        payload = _collect(read_fd, pid, limit_s)
        _, status = os.waitpid(pid, 0)
        err.seek(0)
        report = err.read(1 << 20).decode("utf-8", "replace")
    if payload:
        kind, value = pickle.loads(payload)
        if kind == "ok":
            _cross_check(scenario, trace)
            return cast(T, value)
        raise _rebuild(value)
    raise DriverCrashed(_crash_message(scenario, status, report, trace, limit_s))


def _run_in_worker(job: tuple[object, ...], scenario: str, trace: Path, limit_s: float) -> Any:
    from harness.csim.worker import forget, worker_for

    spec, faults, scenario_path, seed, out_dir, attempt = job
    key: tuple[object, ...] = (spec, tuple(faults) if isinstance(faults, tuple | list) else ())
    worker = worker_for(key)
    reply, printed = worker.run((spec, faults, scenario_path, scenario, seed, out_dir, attempt),
                                limit_s)
    if reply is None:
        forget(key)
        status = worker.status if worker.status is not None else signal.SIGKILL
        raise DriverCrashed(_crash_message(scenario, status, printed, trace, limit_s))
    kind, value = pickle.loads(reply)
    if kind != "ok":
        raise _rebuild(value)
    _cross_check(scenario, trace)
    return value


def _child(fn: Callable[[], Any], write_fd: int, read_fd: int, err_fd: int) -> None:
    mark_child()
    code = 0
    try:
        os.close(read_fd)
        os.dup2(err_fd, 2)
        faulthandler.disable()  # the report is the driver's C stack, not the interpreter's
        try:
            payload = pickle.dumps(("ok", fn()))
        except BaseException as exc:  # sent to the parent, raised there
            payload = pickle.dumps(("err", (type(exc).__name__, str(exc))))
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
    except BaseException:
        code = 70
    os._exit(code)


def _collect(fd: int, pid: int, timeout_s: float) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                return b""
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


#: Built drivers by file name, for the crash report's addresses (harness.csim fills it).
_FRAME = re.compile(r"^(?:.*/)?(?P<lib>[^/(\s]+\.so)\((?P<sym>[^)]*)\)\[0x[0-9a-f]+\]$")
_NOISE = ("libpython", "/python", "libc.so", "ld-linux", "libffi", "_ctypes", "(_start+")


_ASAN_FRAME = re.compile(r"^\s*(?P<n>#\d+) 0x[0-9a-f]+\s+\((?:.*/)?(?P<lib>[^/+()]+\.so)"
                         r"\+(?P<off>0x[0-9a-f]+)\)$")
_INTERPRETER = ("Python/", "Objects/", "Modules/", "Include/", "../sysdeps", "../csu",
                "libffi", "_ctypes", "libpython",
                # a distribution's python3 exports its symbols: frames in the executable
                "/python3", "/python (", " in _Py", " in Py", "libc.so", "[stack]",
                "in _start ")


def _sanitizer_lines(report: str) -> list[str]:
    """An ASan/UBSan report without the interpreter's frames and the shadow-memory dump."""
    out: list[str] = []
    legend = False
    for line in report.splitlines():
        stripped = line.strip()
        if stripped.startswith("Shadow byte legend"):
            legend = True
            continue
        if legend and not stripped.startswith("=="):
            continue
        legend = False
        if not stripped or stripped.startswith(("0x", "=>0x")) or stripped == "...":
            continue
        frame = _ASAN_FRAME.match(line)
        if frame is not None:
            lib = LIBRARIES.get(frame.group("lib"))
            where = _addr2line(lib, "+" + frame.group("off"), exact=True) if lib else None
            out.append(f"    {frame.group('n')} {where or frame.group('off')} "
                       f"({frame.group('lib')})")
            continue
        if stripped.startswith("#") and any(n in line for n in _INTERPRETER):
            continue
        out.append(line)
    return out


def symbolize(report: str) -> list[str]:
    """The child's standard error with driver frames named (function, file:line) and the
    interpreter's own frames left out."""
    if "AddressSanitizer" in report or "runtime error:" in report:
        return _sanitizer_lines(report)
    out: list[str] = []
    faulting = False  # the frame after the signal handler is the faulting instruction
    for line in report.splitlines():
        if not line.strip():
            continue
        frame = _FRAME.match(line.strip())
        if frame is None:
            if not any(n in line for n in _NOISE) or "ERROR" in line:
                out.append(line)
            continue
        lib = LIBRARIES.get(frame.group("lib"))
        sym = frame.group("sym")
        if lib is None:
            if not any(n in line for n in _NOISE):
                out.append(line)
            continue
        out.append(f"  {_addr2line(lib, sym, exact=faulting) or sym} ({frame.group('lib')})")
        faulting = sym.startswith("csim_on_signal")
    return out


def _addr2line(lib: Path, sym: str, *, exact: bool = False) -> str | None:
    if not sym.startswith("+0x") or shutil.which("addr2line") is None:
        return sym.split("+")[0] or None
    try:
        # a return address: the call is the instruction before it
        address = hex(max(int(sym[1:], 16) - (0 if exact else 1), 0))
        done = subprocess.run(["addr2line", "-f", "-C", "-e", str(lib), address],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = done.stdout.split("\n")
    if len(parts) < 2 or parts[0] == "??":
        return None
    return f"{parts[0]} at {parts[1].rsplit('/', 1)[-1]}"


def _cross_check(scenario: str, trace: Path) -> None:
    """The driver's TraceLogging stream must agree with the engine's trace."""
    from harness.csim.adapter import TLG_SUFFIX
    from harness.csim.crosscheck import compare

    stream = Path(f"{trace}{TLG_SUFFIX}")
    if not stream.is_file() or not trace.is_file():
        return
    problems = compare(trace, stream)
    if problems:
        raise TargetError(
            f"scenario {scenario!r}: the driver's TraceLogging stream ({stream}) disagrees with "
            f"the engine's trace ({trace}): " + "; ".join(problems))


_ERRORS: dict[str, type[HarnessError]] = {
    "DriverCrashed": DriverCrashed, "TargetError": TargetError, "UsageError": UsageError,
}


def _rebuild(value: tuple[str, str]) -> BaseException:
    name, message = value
    cls = _ERRORS.get(name)
    if cls is not None:
        return cls(message)
    if name == "BuildError":
        return UsageError(message)
    return DriverCrashed(f"the scenario's child raised {name}: {message}")


def _crash_message(scenario: str, status: int, report: str, trace: Path,
                   timeout_s: float) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        how = f"signal {signal.Signals(sig).name}" if sig in signal.Signals._value2member_map_ \
            else f"signal {sig}"
        if sig == signal.SIGKILL and not report.strip():
            how = f"no result within {timeout_s:g} s (killed)"
    else:
        how = f"exit status {os.WEXITSTATUS(status)}"
    lines = symbolize(report)
    if len(lines) > MAX_REPORT_LINES:
        lines = [*lines[:MAX_REPORT_LINES // 2], "...", *lines[-MAX_REPORT_LINES // 2:]]
    stack = "\n".join(lines) if lines else "(the driver printed nothing)"
    return (f"scenario {scenario!r}: driver crashed ({how}); trace up to the crash: {trace}\n"
            f"{stack}")
