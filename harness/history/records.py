"""Reading the history file: each line checked, one-line errors naming file, line and key.

Kept apart from :mod:`harness.history.store` (which adds bundles and so needs
``certify verify``) so that judging a run's errata against earlier runs
(:mod:`harness.verdict`, the plugin) depends on nothing in ``certify`` but its
document checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.certify.documents import DocumentError, Shape, parse_json
from harness.errors import InputError
from harness.scenario.record import OUTCOMES


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def check_record(value: Any, where: str, line: int) -> dict[str, Any]:
    """One history line as ``history add`` writes it, or a one-line InputError."""
    s = Shape(where, line)
    record = s.obj(value, [])
    items = s.array(record, "items", [], 100_000)
    for i, raw in enumerate(items):
        item = s.obj(raw, ["items", i])
        for name in ("id", "scenario", "target"):
            s.field(item, name, ["items", i], "a string", lambda v: isinstance(v, str))
        s.field(item, "os_build", ["items", i], "a string or null", _opt_str, required=False)
        s.field(item, "outcome", ["items", i], "one of " + ", ".join(OUTCOMES),
                lambda v: isinstance(v, str) and v in OUTCOMES)
    for name in ("created", "night", "run_id"):
        s.field(record, name, [], "a string", lambda v: isinstance(v, str), required=False)
    driver = s.field(record, "driver", [], "an object or null",
                     lambda v: v is None or isinstance(v, dict), required=False)
    if isinstance(driver, dict):
        for name in ("name", "sha256", "version"):
            s.field(driver, name, ["driver"], "a string or null", _opt_str, required=False)
    errata = s.field(record, "errata", [], "an object or null",
                     lambda v: v is None or isinstance(v, dict), required=False)
    if isinstance(errata, dict):
        s.strings(errata, "entries", ["errata"], required=False)
        s.strings(errata, "matched", ["errata"], required=False)
    return record


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a history file, oldest first ([] when there is no file yet)."""
    file = Path(path)
    if not file.exists():
        return []
    if file.is_dir():
        raise InputError(str(file), expected="a history file", found="a directory")
    records: list[dict[str, Any]] = []
    try:
        with file.open("rb") as stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                records.append(check_record(parse_json(line, str(file), line=number),
                                            str(file), number))
    except DocumentError:
        raise
    except OSError as exc:
        raise InputError(str(file), message=f"cannot read ({exc.strerror or exc})") from None
    return records


def errata_sections(path: str | Path) -> list[dict[str, Any]]:
    """The errata sections of the recorded runs that used errata, oldest first."""
    return [r["errata"] for r in read_history(path) if isinstance(r.get("errata"), dict)]
