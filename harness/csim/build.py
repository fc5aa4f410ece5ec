"""Compile a driver's C sources and the host runtime into one shared object.

gcc builds every ``[sim]`` source with the clean-room kernel headers
(``harness/csim/include``) and ``-fshort-wchar -Wall -Wextra`` (WCHAR is 16
bits, as on Windows). Before linking, the symbols the driver's objects leave
undefined are compared with what the runtime defines: anything else (besides
the few C library calls the headers themselves make) fails the build with one
line, ``the host runtime does not provide: A, B``, instead of an unresolved
symbol at run time. The shared object is cached under a key made of every
source, header and flag, so an unchanged driver is built once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.csim.manifest import SimManifest
from harness.errors import UsageError

HERE = Path(__file__).resolve().parent
INCLUDE = HERE / "include"
RUNTIME_SOURCES = ("runtime.c", "runtime_io.c", "runtime_fwps.c")
#: CSIM_HOST_BUILD is defined for the host build: a driver keeps hardware or WDF code out with
#: ``#ifndef CSIM_HOST_BUILD``.
CFLAGS = ("-std=gnu11", "-fshort-wchar", "-Wall", "-Wextra", "-fPIC", "-O1", "-g",
          "-fno-strict-aliasing", "-DCSIM_HOST_BUILD=1")
SANITIZE = ("-fsanitize=address,undefined", "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=undefined")
#: C library calls the host headers make on the driver's behalf (RtlCopyMemory is
#: memcpy, RtlStringCbPrintfA is vsnprintf, ...), and compiler support symbols.
LIBC_ALLOWED = frozenset({
    "memcpy", "memmove", "memset", "memcmp", "strlen", "strnlen", "vsnprintf", "snprintf",
    "__stack_chk_fail", "_GLOBAL_OFFSET_TABLE_", "__memcpy_chk", "__memset_chk",
    "__vsnprintf_chk", "__snprintf_chk", "__memmove_chk",
})
_SANITIZER_PREFIXES = ("__asan_", "__ubsan_", "__sanitizer_")
#: A bound on compiler output echoed into an error.
MAX_ECHO_LINES = 20


class BuildError(UsageError):
    """The driver did not compile or link for the host (the message says why)."""


@dataclass(frozen=True)
class BuiltDriver:
    library: Path
    sanitize: bool
    key: str


def cache_root() -> Path:
    base = os.environ.get("CALLOUT_HARNESS_CACHE")
    if base:
        return Path(base) / "csim"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "callout-harness" / "csim"


def gcc() -> str:
    found = shutil.which(os.environ.get("CC", "gcc"))
    if found is None:
        raise BuildError("gcc is not installed: the C callout build needs it "
                         "(apt-get install gcc libc6-dev)")
    return found


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()[:MAX_ECHO_LINES]
        raise BuildError(f"{what} failed:\n" + "\n".join(lines))
    return done


def flags_for(manifest: SimManifest, *, defines: tuple[str, ...] = (),
              sanitize: bool = False) -> list[str]:
    flags = list(CFLAGS)
    if sanitize:
        flags += SANITIZE
    for d in include_dirs(manifest):
        flags.append(f"-I{d}")
    for name in (*manifest.defines, *defines):
        flags.append(f"-D{name}")
    return flags


def include_dirs(manifest: SimManifest) -> list[Path]:
    return [*manifest.include_dirs, manifest.root, INCLUDE]


def _headers(dirs: list[Path]) -> list[Path]:
    found: set[Path] = set()
    for d in dirs:
        found.update(p for p in d.glob("*.h") if p.is_file())
    return sorted(found)


@functools.cache
def _gcc_version(compiler: str) -> str:
    return _run([compiler, "--version"], "gcc --version").stdout.splitlines()[0]


#: cache keys already computed in this process, by flags and file stamps
_KEYS: dict[tuple[object, ...], str] = {}


def cache_key(manifest: SimManifest, flags: list[str]) -> str:
    """A hash of the compiler, the flags and every source and header the build reads."""
    files = [*(HERE / s for s in RUNTIME_SOURCES), *_headers([HERE]),
             *manifest.sources, *_headers(include_dirs(manifest))]
    stamps = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    memo = (tuple(flags), stamps)
    known = _KEYS.get(memo)
    if known is not None:
        return known
    h = hashlib.sha256()
    for part in (_gcc_version(gcc()), *flags):
        h.update(part.encode() + b"\0")
    for f in files:
        h.update(str(f.name).encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    key = _KEYS[memo] = h.hexdigest()[:24]
    return key


def _undefined(obj: Path) -> set[str]:
    out = _run(["nm", "-u", "--format=posix", str(obj)], f"nm {obj.name}").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _defined(objs: list[Path]) -> set[str]:
    out = _run(["nm", "--defined-only", "--format=posix", *map(str, objs)],
               "nm (runtime)").stdout
    names: set[str] = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in "TDRBtdrbGgSsVvWw":
            names.add(parts[0])
    return names


def missing_symbols(driver_objs: list[Path], runtime_objs: list[Path],
                    driver_defined: set[str]) -> list[str]:
    """What the driver calls that neither the runtime nor the allowed C library has."""
    provided = _defined(runtime_objs) | driver_defined | LIBC_ALLOWED
    wanted: set[str] = set()
    for obj in driver_objs:
        wanted |= _undefined(obj)
    return sorted(s for s in wanted - provided if not s.startswith(_SANITIZER_PREFIXES))


def build(manifest: SimManifest, *, mutant: str | None = None, sanitize: bool = False,
          cache: Path | None = None) -> BuiltDriver:
    """The cached shared object for ``manifest`` (and mutant), building it if needed."""
    defines: tuple[str, ...] = ()
    if mutant is not None:
        defines = (manifest.mutant(mutant).define,)
    flags = flags_for(manifest, defines=defines, sanitize=sanitize)
    key = cache_key(manifest, flags)
    root = cache or cache_root()
    target = root / key / f"{manifest.name}-{key[:12]}.so"
    if target.is_file():
        return BuiltDriver(target, sanitize, key)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=root) as tmp:
        work = Path(tmp)
        driver_objs = [_compile(src, work / f"d{i}_{src.stem}.o", flags, f"compiling {src}")
                       for i, src in enumerate(manifest.sources)]
        runtime_flags = [*CFLAGS, *(SANITIZE if sanitize else ()), f"-I{INCLUDE}", f"-I{HERE}"]
        runtime_objs = [_compile(HERE / s, work / f"r_{Path(s).stem}.o", runtime_flags,
                                 f"compiling the host runtime ({s})") for s in RUNTIME_SOURCES]
        missing = missing_symbols(driver_objs, runtime_objs, _defined(driver_objs))
        if missing:
            raise BuildError("the host runtime does not provide: " + ", ".join(missing))
        lib = work / target.name
        link = [gcc(), "-shared", "-o", str(lib), *map(str, runtime_objs), *map(str, driver_objs),
                "-Wl,--no-undefined"]
        if sanitize:
            link.insert(2, "-fsanitize=address,undefined")
        _run(link, f"linking {manifest.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(lib, target)  # atomic: parallel workers may build the same key
    return BuiltDriver(target, sanitize, key)


def _compile(src: Path, obj: Path, flags: list[str], what: str) -> Path:
    _run([gcc(), *flags, "-c", str(src), "-o", str(obj)], what)
    return obj


def runtime_exports() -> list[str]:
    """The kernel API names the runtime implements (generated, for the README)."""
    with tempfile.TemporaryDirectory() as tmp:
        objs = [_compile(HERE / s, Path(tmp) / f"{Path(s).stem}.o",
                         [*CFLAGS, f"-I{INCLUDE}", f"-I{HERE}"], f"compiling {s}")
                for s in RUNTIME_SOURCES]
        out = _run(["nm", "--defined-only", "--extern-only", "--format=posix",
                    *map(str, objs)], "nm").stdout
    names = {line.split()[0] for line in out.splitlines() if len(line.split()) >= 2
             and line.split()[1] == "T"}
    return sorted(n for n in names if not n.startswith(("csim_", "g_")))
