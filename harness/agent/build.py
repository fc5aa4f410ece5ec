"""Cross-compile the step agent with mingw-w64: ``callout-harness agent build``.

The image is a static PE32+ x64 console program built with ``-Wall -Wextra
-Werror`` from ``drivers/agent/*.c`` and the probe's ``probe_ioctl.h``. It is
cached by a hash of every source and header, the compiler's version and the
flags: ``DIR/harness-agent-<hash>.exe`` is reused while nothing changed, and
``DIR/harness-agent.exe`` is a copy of the current one. The lab builds the
same sources with MSVC (``drivers/agent/CMakeLists.txt``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TargetError

COMPILER = "x86_64-w64-mingw32-gcc"
SOURCES = ("agent.c", "json.c", "tlg.c", "net.c", "bfe.c", "probectl.c")
HEADERS = ("agent.h", "json.h", "tlg.h", "fwp_flags.h")
CFLAGS = ("-Wall", "-Wextra", "-Werror", "-O2", "-DWIN32_LEAN_AND_MEAN", "-static")
LIBS = ("-lfwpuclnt", "-lws2_32", "-ladvapi32")
IMAGE = "harness-agent.exe"
BUILD_TIMEOUT_S = 300.0


class AgentBuildError(TargetError):
    """Raised when the step agent cannot be built (no compiler, a compile error)."""


@dataclass(frozen=True)
class AgentBuild:
    image: Path
    digest: str
    cached: bool


def source_dir() -> Path:
    """``drivers/agent`` of the checkout this harness runs from."""
    env = os.environ.get("CALLOUT_HARNESS_AGENT_SRC")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "drivers" / "agent"
    if not (root / "agent.c").is_file():
        raise AgentBuildError(f"the step agent's C source is not at {root} (run from a "
                              "checkout, or set CALLOUT_HARNESS_AGENT_SRC)")
    return root


def _inputs(src: Path) -> list[Path]:
    probe_header = src.parent / "probe" / "probe_ioctl.h"
    if not probe_header.is_file():
        raise AgentBuildError(f"{probe_header}: the probe's IOCTL header is missing")
    return [src / n for n in SOURCES + HEADERS] + [probe_header]


def _compiler_version(compiler: str) -> str:
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                              timeout=60, check=False)
    except FileNotFoundError:
        raise AgentBuildError(f"{compiler} not found: install mingw-w64 (Debian package "
                              "gcc-mingw-w64-x86-64)") from None
    return done.stdout.splitlines()[0] if done.stdout else ""


def digest(src: Path, compiler: str = COMPILER) -> str:
    h = hashlib.sha256()
    for path in _inputs(src):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(" ".join((_compiler_version(compiler), *CFLAGS, *LIBS)).encode())
    return h.hexdigest()


def build_agent(out_dir: Path, *, compiler: str = COMPILER, src: Path | None = None
                ) -> AgentBuild:
    """The agent image in ``out_dir``, built unless a build of the same inputs is there."""
    src = src or source_dir()
    key = digest(src, compiler)
    out_dir.mkdir(parents=True, exist_ok=True)
    cached_image = out_dir / f"harness-agent-{key[:16]}.exe"
    current = out_dir / IMAGE
    if cached_image.is_file():
        check_image(cached_image)
        shutil.copyfile(cached_image, current)
        return AgentBuild(current, key, cached=True)
    partial = cached_image.with_suffix(".partial.exe")
    command = [compiler, *CFLAGS, "-I", str(src.parent / "probe"), "-o", str(partial),
               *(str(src / n) for n in SOURCES), *LIBS]
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AgentBuildError(f"building the agent took longer than {BUILD_TIMEOUT_S:.0f} s"
                              ) from None
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = " | ".join(line for line in done.stderr.splitlines()[-6:] if line.strip())
        raise AgentBuildError(f"building the agent failed ({compiler} exit "
                              f"{done.returncode}): {tail}")
    check_image(partial)
    partial.replace(cached_image)
    shutil.copyfile(cached_image, current)
    return AgentBuild(current, key, cached=False)


def check_image(path: Path) -> None:
    """Refuse anything but a PE32+ x64 console image."""
    data = path.read_bytes()[:4096]
    if data[:2] != b"MZ" or len(data) < 0x40:
        raise AgentBuildError(f"{path}: not a PE image (no MZ header)")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if pe + 0x5E > len(data) or data[pe:pe + 4] != b"PE\0\0":
        raise AgentBuildError(f"{path}: not a PE image (no PE signature)")
    machine = struct.unpack_from("<H", data, pe + 4)[0]
    magic, subsystem = struct.unpack_from("<H", data, pe + 24)[0], struct.unpack_from(
        "<H", data, pe + 24 + 68)[0]
    if (machine, magic, subsystem) != (0x8664, 0x20B, 3):
        raise AgentBuildError(f"{path}: expected a PE32+ x64 console image, found machine "
                              f"0x{machine:04x}, optional header 0x{magic:x}, subsystem "
                              f"{subsystem}")
