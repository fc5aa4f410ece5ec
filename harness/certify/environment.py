"""The environment manifest of a certification run (``environment.json``).

It records what a reviewer needs to trust or repeat a run: the harness version
and git commit, Python and the versions of the installed distributions the
harness depends on (extras included), each target's profile and OS build,
libvirt and QEMU versions when a VM target was used, the driver manifest with
the SHA-256 of every file it names, and the seeds.
"""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import __version__
from harness.guest.manifest import load_manifest
from harness.verdict import ItemOutcome

DISTRIBUTION = "callout-harness"
#: Always listed, whatever the requirements say: they run the tests.
_ALWAYS = ("pytest", "pytest-xdist", "pluggy")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
#: The keys ``environment.json`` must have (``certify verify`` checks them).
REQUIRED_KEYS = ("harness", "python", "dependencies", "targets", "virtualization",
                 "driver", "seeds")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(root: Path) -> str:
    """The commit checked out at ``root`` ("unknown" without git or a repository)."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        proc = subprocess.run([git, "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and commit else "unknown"


def dependency_versions() -> dict[str, str | None]:
    """Installed versions of the harness's requirements (all extras), None if absent."""
    names: list[str] = list(_ALWAYS)
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        requires = []
    for req in requires:
        found = _REQ_NAME.match(req)
        if found:
            names.append(found.group(1))
    versions: dict[str, str | None] = {}
    for name in sorted(set(names), key=str.lower):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def tool_version(command: list[str]) -> str | None:
    """The first line a ``--version`` prints, or None when the tool is absent."""
    exe = shutil.which(command[0])
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *command[1:]], capture_output=True, text=True,
                              timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else None


def driver_files(manifest: Path) -> dict[str, Path]:
    """Key -> file of every package file the manifest names.

    The manifest goes through the strict loader: a malformed one is a
    :class:`~harness.errors.ManifestError`, never a guess written into the bundle.
    """
    loaded = load_manifest(manifest, check_binaries=False)
    return {"sys": loaded.sys, "inf": loaded.inf, "cat": loaded.cat, "cer": loaded.cer}


def driver_entry(manifest: Path | None) -> dict[str, Any] | None:
    """The driver section: the manifest's and every named file's SHA-256."""
    if manifest is None:
        return None
    manifest = Path(manifest)
    loaded = load_manifest(manifest, check_binaries=False)
    named = {"sys": loaded.sys, "inf": loaded.inf, "cat": loaded.cat, "cer": loaded.cer}
    files: dict[str, dict[str, Any]] = {}
    for key, path in sorted(named.items()):
        entry: dict[str, Any] = {"path": _shown(path, manifest.parent), "sha256": None}
        if path.is_file():
            entry["sha256"] = sha256_file(path)
        else:
            entry["missing"] = True
        files[key] = entry
    return {
        "name": loaded.name,
        "manifest": manifest.name,
        "manifest_sha256": sha256_file(manifest),
        "files": files,
    }


def _shown(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name


def target_entries(items: Iterable[ItemOutcome], profile: str) -> list[dict[str, Any]]:
    """One entry per target: its profile and OS build(s)."""
    by_target: dict[str, set[str]] = {}
    for item in items:
        builds = by_target.setdefault(item.target, set())
        if item.os_build:
            builds.add(item.os_build)
    out = []
    for name in sorted(by_target):
        found = sorted(by_target[name])
        is_sim = name == "sim"
        build: str | list[str] | None = found[0] if len(found) == 1 else (found or None)
        out.append({
            "name": name,
            "profile": "engine-model" if is_sim else profile,
            "os_build": "engine-model" if is_sim else build,
        })
    return out


def build_environment(
    items: list[ItemOutcome], *, vm: str, driver: Path | None, root: Path,
    command: list[str] | dict[str, Any] | None = None, errata: Path | None = None,
) -> dict[str, Any]:
    """The whole ``environment.json`` document."""
    used_vm = vm != "sim" or any(item.target != "sim" for item in items)
    return {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "harness": {"version": __version__, "commit": git_commit(root)},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "platform": {"system": platform.system(), "release": platform.release(),
                     "machine": platform.machine()},
        "dependencies": dependency_versions(),
        "targets": target_entries(items, vm),
        "virtualization": {
            "libvirt": tool_version(["virsh", "--version"]) if used_vm else None,
            "qemu": tool_version(["qemu-system-x86_64", "--version"]) if used_vm else None,
        },
        "driver": driver_entry(driver),
        "errata": None if errata is None else {
            "file": errata.name,
            "sha256": sha256_file(errata) if errata.is_file() else None,
        },
        "seeds": {item.item_id: item.record.get("seed") for item in items},
        "command": command if command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]],
    }
