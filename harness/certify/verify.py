"""Check a certification bundle (a directory or its .tar.gz) for changes and gaps.

Every problem is one line, naming the file relative to the bundle::

    changed: traces/a.sim.seed1.jsonl (SHA-256 differs from SHA256SUMS)
    missing: traces/a.sim.seed1.jsonl (listed in SHA256SUMS; trace of a[sim] in results.json)
    unlisted: notes.txt (not in SHA256SUMS)
    incomplete: environment.json has no "seeds"

An empty list means the bundle is whole and unaltered.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from harness.certify.bundle import ENVIRONMENT, REQUIRED_FILES, RESULTS, SUMS, bundle_files
from harness.certify.environment import REQUIRED_KEYS, sha256_file
from harness.errors import BundleError

_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


@dataclass
class Verification:
    """What ``certify verify`` found: ``problems`` empty means the bundle is sound."""

    bundle: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_sums(directory: Path, problems: list[str]) -> dict[str, str]:
    path = directory / SUMS
    if not path.is_file():
        return {}
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        found = _SUM_LINE.match(line)
        if not found:
            problems.append(f"malformed: {SUMS}:{number} (expected '<sha256>  <path>')")
            continue
        sums[found.group(2)] = found.group(1)
    return sums


def _load_json(directory: Path, name: str, problems: list[str]) -> dict[str, Any] | None:
    path = directory / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"malformed: {name} (not JSON: {exc})")
        return None
    if not isinstance(data, dict):
        problems.append(f"malformed: {name} (expected a JSON object)")
        return None
    return data


def _referenced_traces(results: dict[str, Any], problems: list[str]) -> dict[str, str]:
    """Trace path -> which item names it, from results.json."""
    refs: dict[str, str] = {}
    items = results.get("items")
    if not isinstance(items, list):
        problems.append(f'incomplete: {RESULTS} has no "items" list')
        return refs
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"malformed: {RESULTS} items[{i}] (expected an object)")
            continue
        who = str(item.get("id") or f"items[{i}]")
        for key in ("outcome", "seed", "trace"):
            if key not in item:
                problems.append(f'incomplete: {RESULTS} {who} has no "{key}"')
        paths = [item.get("trace")] + [a.get("trace") for a in item.get("attempts", [])
                                      if isinstance(a, dict)]
        for path in paths:
            if isinstance(path, str) and path not in refs:
                refs[path] = who
    return refs


def verify_directory(directory: Path, shown: str | None = None) -> Verification:
    """Check sums, required files, environment keys and every trace results.json names."""
    result = Verification(shown or str(directory))
    problems = result.problems
    sums = _read_sums(directory, problems)
    present = set(bundle_files(directory))
    missing: dict[str, list[str]] = {}
    for name in REQUIRED_FILES:
        if name != SUMS and name not in present:
            missing.setdefault(name, []).append("a bundle always has it")
    if not (directory / SUMS).is_file():
        missing.setdefault(SUMS, []).append("a bundle always has it")
    for rel, digest in sums.items():
        if rel not in present:
            missing.setdefault(rel, []).append(f"listed in {SUMS}")
            continue
        result.checked += 1
        if sha256_file(directory / rel) != digest:
            problems.append(f"changed: {rel} (SHA-256 differs from {SUMS})")
    if (directory / SUMS).is_file():
        problems.extend(f"unlisted: {rel} (not in {SUMS})" for rel in sorted(present - set(sums)))
    results = _load_json(directory, RESULTS, problems)
    if results is not None:
        for rel, who in _referenced_traces(results, problems).items():
            if rel not in present:
                missing.setdefault(rel, []).append(f"trace of {who} in {RESULTS}")
    environment = _load_json(directory, ENVIRONMENT, problems)
    if environment is not None:
        problems.extend(f'incomplete: {ENVIRONMENT} has no "{key}"'
                        for key in REQUIRED_KEYS if key not in environment)
    problems.extend(f"missing: {rel} ({'; '.join(why)})" for rel, why in sorted(missing.items()))
    return result


def _safe_members(tar: tarfile.TarFile, archive: str) -> list[tarfile.TarInfo]:
    members = []
    for member in tar.getmembers():
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise BundleError(f"{archive}: unsafe path in archive: {member.name}")
        if member.issym() or member.islnk():
            raise BundleError(f"{archive}: links are not allowed in a bundle: {member.name}")
        if member.isfile() or member.isdir():
            members.append(member)
    return members


def verify(path: str | Path) -> Verification:
    """Verify a bundle directory or a DIR.tar.gz archive.

    Raises :class:`BundleError` when ``path`` is neither (bad input).
    """
    target = Path(path)
    if target.is_dir():
        return verify_directory(target)
    if not target.is_file():
        raise BundleError(f"{target}: no such bundle directory or archive")
    try:
        with tarfile.open(target, "r:*") as tar, tempfile.TemporaryDirectory() as tmp:
            members = _safe_members(tar, str(target))
            tar.extractall(tmp, members=members, filter="data")
            roots = {PurePosixPath(m.name).parts[0] for m in members if m.name}
            base = Path(tmp) / roots.pop() if len(roots) == 1 else Path(tmp)
            if not base.is_dir():
                base = Path(tmp)
            return verify_directory(base, shown=str(target))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{target}: not a readable bundle archive ({exc})") from exc
