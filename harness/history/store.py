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

A malformed line is a one-line :class:`~harness.errors.InputError` naming the
file, the line and the key. A bundle's results.json and environment.json are
read with the strict checks of :mod:`harness.certify.documents`; a bundle that
``certify verify`` refuses (an unsigned-but-altered or incomplete one) is
refused here too, so a forged run never enters the history.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from harness.certify.documents import (
    MAX_JSON_BYTES,
    check_environment,
    check_results,
    parse_json,
)
from harness.errors import InputError
from harness.history.records import as_list, read_history

DEFAULT_FILE = "history.jsonl"


def _bundle_files(bundle: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The named top-level files of a bundle directory or DIR.tar.gz."""
    found: dict[str, bytes] = {}
    if bundle.is_dir():
        for name in names:
            path = bundle / name
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as stream:
                    found[name] = stream.read(MAX_JSON_BYTES + 1)
        return found
    if not bundle.is_file():
        raise InputError(str(bundle), expected="a bundle directory or DIR.tar.gz",
                         found="nothing there")
    try:
        with tarfile.open(bundle, "r:*") as tar:
            for member in tar.getmembers():
                parts = PurePosixPath(member.name).parts
                if member.isfile() and len(parts) == 2 and parts[1] in names:
                    if member.size > MAX_JSON_BYTES:
                        raise InputError(str(bundle), key=parts[1],
                                         expected=f"at most {MAX_JSON_BYTES} bytes",
                                         found=f"{member.size} bytes")
                    member_stream = tar.extractfile(member)
                    if member_stream is not None:
                        found[parts[1]] = member_stream.read(MAX_JSON_BYTES + 1)
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
    results = check_results(parse_json(files["results.json"], f"{path}: results.json"),
                            f"{path}: results.json")
    environment = check_environment(
        parse_json(files.get("environment.json", b"{}"), f"{path}: environment.json"),
        f"{path}: environment.json")
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
            "entries": [str(e) for e in as_list(errata.get("entries"))],
            "matched": [str(e) for e in as_list(errata.get("matched"))],
        },
    }


def add_run(bundle: str | Path, path: str | Path = DEFAULT_FILE) -> tuple[dict[str, Any], bool]:
    """Append the bundle's run; returns the record and False when it was already there."""
    from harness.certify.verify import verify

    checked = verify(bundle)
    if checked.problems:
        raise InputError(str(bundle), expected="a bundle that 'certify verify' accepts",
                         found=f"{len(checked.problems)} problem(s), first: "
                               f"{checked.problems[0][:120]}")
    record = run_record(bundle)
    existing = read_history(path)
    if any(r.get("run_id") == record["run_id"] for r in existing):
        return record, False
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return record, True
