"""The history file: one JSON line per certification run, appended by ``history add``.

A record keeps what the trend page and the stale-errata count need, and
nothing that would make the file grow with trace sizes::

    {"format": 1, "run_id": "<sha256 of results.json>", "created": "...Z",
     "night": "2026-11-20", "bundle": "nightly/bundle",
     "harness": {"version": "0.1.0", "commit": "..."},
     "driver": {"name": "probe", "sha256": "..."} | null,
     "items": [{"id": "a[sim]", "scenario": "a", "target": "sim",
                "os_build": "engine-model", "outcome": "passed"}, ...],
     "errata": {"entries": [...], "matched": [...]} | null}

Standard library only. A malformed line is a one-line
:class:`~harness.errors.InputError` naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from harness.errors import InputError

DEFAULT_FILE = "history.jsonl"


def _bundle_files(bundle: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The named top-level files of a bundle directory or DIR.tar.gz."""
    found: dict[str, bytes] = {}
    if bundle.is_dir():
        for name in names:
            path = bundle / name
            if path.is_file():
                found[name] = path.read_bytes()
        return found
    if not bundle.is_file():
        raise InputError(str(bundle), expected="a bundle directory or DIR.tar.gz",
                         found="nothing there")
    try:
        with tarfile.open(bundle, "r:*") as tar:
            for member in tar.getmembers():
                parts = PurePosixPath(member.name).parts
                if member.isfile() and len(parts) == 2 and parts[1] in names:
                    stream = tar.extractfile(member)
                    if stream is not None:
                        found[parts[1]] = stream.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(str(bundle), expected="a bundle directory or DIR.tar.gz",
                         found=f"an unreadable file ({exc})") from exc
    return found


def _driver(environment: dict[str, Any]) -> dict[str, Any] | None:
    driver = environment.get("driver")
    if not isinstance(driver, dict):
        return None
    files = driver.get("files") or {}
    sys_entry = files.get("sys") if isinstance(files, dict) else None
    sha = (sys_entry or {}).get("sha256") or driver.get("manifest_sha256")
    return {"name": driver.get("name"), "sha256": sha, "version": driver.get("version")}


def run_record(bundle: str | Path) -> dict[str, Any]:
    """The history record of one bundle (directory or archive)."""
    path = Path(bundle)
    files = _bundle_files(path, ("results.json", "environment.json"))
    if "results.json" not in files:
        raise InputError(str(path), key="results.json", expected="a certification bundle",
                         found="no results.json")
    try:
        results = json.loads(files["results.json"])
        environment = json.loads(files.get("environment.json", b"{}"))
    except ValueError as exc:
        raise InputError(str(path), expected="JSON in results.json and environment.json",
                         found=str(exc)) from exc
    created = str(results.get("created", ""))
    errata = results.get("errata")
    return {
        "format": 1,
        "run_id": hashlib.sha256(files["results.json"]).hexdigest(),
        "created": created,
        "night": created[:10] or "unknown",
        "bundle": str(path),
        "harness": environment.get("harness"),
        "driver": _driver(environment),
        "items": [
            {"id": item.get("id") or f"{item.get('scenario')}[{item.get('target')}]",
             "scenario": item.get("scenario"), "target": item.get("target"),
             "os_build": item.get("os_build"), "outcome": item.get("outcome")}
            for item in results.get("items", [])
        ],
        "errata": None if not isinstance(errata, dict) else {
            "entries": list(errata.get("entries", [])),
            "matched": list(errata.get("matched", [])),
        },
    }


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a history file, oldest first ([] when there is no file yet)."""
    file = Path(path)
    if not file.exists():
        return []
    records: list[dict[str, Any]] = []
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(file), message=f"cannot read: {exc}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InputError(str(file), line=number, expected="one JSON object per line",
                             found=f"invalid JSON ({exc.args[0] if exc.args else exc})"
                             ) from None
        if not isinstance(record, dict) or not isinstance(record.get("items"), list):
            raise InputError(str(file), line=number, expected="a run record with items",
                             found="something else")
        records.append(record)
    return records


def add_run(bundle: str | Path, path: str | Path = DEFAULT_FILE) -> tuple[dict[str, Any], bool]:
    """Append the bundle's run; returns the record and False when it was already there."""
    record = run_record(bundle)
    existing = read_history(path)
    if any(r.get("run_id") == record["run_id"] for r in existing):
        return record, False
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return record, True


def errata_sections(path: str | Path) -> list[dict[str, Any]]:
    """The errata sections of the recorded runs that used errata, oldest first."""
    return [r["errata"] for r in read_history(path) if isinstance(r.get("errata"), dict)]
