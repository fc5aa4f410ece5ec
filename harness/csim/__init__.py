"""Run a callout driver's own C code on the engine model.

``--callout c:DIR`` (``c:DIR#MUTANT`` for a compile-time mutant) builds the
driver in ``DIR`` (its ``driver.toml`` ``[sim]`` table) with gcc against the
clean-room kernel headers in ``include/`` and the host runtime
(``runtime*.c``), loads it with ctypes and plays it against the engine's
callout API. Each scenario runs in a child process, so a driver that crashes
fails its scenario ("driver crashed", with the signal, the C stack and the
trace up to the crash) and the run goes on.

Modules: ``manifest`` (the ``[sim]`` table), ``build`` (gcc, the missing-symbol
check, the cache), ``ffi`` (the ctypes layout of ``csim_host.h``), ``adapter``
(the driver as an engine callout), ``config`` (the probe's PROBE_CONFIG),
``isolate`` (the child process), ``crosscheck`` (the driver's TraceLogging
stream against the engine's trace).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.errors import UsageError

SPEC_PREFIX = "c:"
#: Set to 1 to build C callouts with AddressSanitizer and UBSan.
SANITIZE_ENV = "CALLOUT_HARNESS_SANITIZE"


def split_spec(spec: str) -> tuple[Path, str | None]:
    """(driver directory, mutant or None) of ``c:DIR`` / ``c:DIR#MUTANT``."""
    if not spec.startswith(SPEC_PREFIX) or len(spec) == len(SPEC_PREFIX):
        raise UsageError(f"expected c:DIR or c:DIR#MUTANT, got {spec[:80]!r}")
    target, _, mutant = spec[len(SPEC_PREFIX):].partition("#")
    if not target or (mutant == "" and spec.endswith("#")):
        raise UsageError(f"expected c:DIR or c:DIR#MUTANT, got {spec[:80]!r}")
    return Path(target), (mutant or None)


def sanitizing() -> bool:
    return os.environ.get(SANITIZE_ENV, "") not in ("", "0")


def load_c_callout(spec: str) -> Any:
    """The C driver of ``spec`` built (or taken from the cache) and loaded."""
    from harness.csim.adapter import CCallout
    from harness.csim.build import build
    from harness.csim.manifest import load_sim_manifest

    directory, mutant = split_spec(spec)
    manifest = load_sim_manifest(directory)
    if mutant is not None:
        manifest.mutant(mutant)  # an unknown mutant is a one-line error now
    built = build(manifest, mutant=mutant, sanitize=sanitizing())
    from harness.csim.process import LIBRARIES

    LIBRARIES[built.library.name] = built.library
    return CCallout(manifest, built.library, spec)


def check_c_spec(spec: str) -> None:
    """Fail now, with one line, on a spec whose driver cannot be built."""
    from harness.csim.build import build
    from harness.csim.manifest import load_sim_manifest

    directory, mutant = split_spec(spec)
    manifest = load_sim_manifest(directory)
    if mutant is not None:
        manifest.mutant(mutant)
    build(manifest, mutant=mutant, sanitize=sanitizing())


def describe_c_mutants(directory: str | Path = "drivers/probe") -> list[dict[str, object]]:
    """The C mutants of a driver, as ``callout-harness mutants`` lists them."""
    from harness.csim.manifest import load_sim_manifest

    path = Path(directory)
    if not (path / "driver.toml").is_file():
        return []
    manifest = load_sim_manifest(path)
    rows: list[dict[str, object]] = [
        {"name": f"c:{directory}#{m.name}", "rules": list(m.rules) or ["crash"],
         "description": m.description, "kind": "c"}
        for m in manifest.mutants
    ]
    return rows
