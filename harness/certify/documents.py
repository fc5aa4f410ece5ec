"""Reading the JSON documents of a bundle (``results.json``, ``environment.json``) strictly.

A bundle may come from anywhere, so its JSON is read within bounds (at most
:data:`MAX_JSON_BYTES`, UTF-8, nested at most :data:`MAX_DEPTH` deep, parsed by
orjson, which does not recurse on the C stack the way the standard library's
fallback does) and its shape is checked before anything uses it. Every
problem is a :class:`DocumentError` whose one-line message names the file and
the key: ``results.json: items[3].attempts: expected an array, found number -1.0``.

``certify verify`` and ``history add`` share these checks, so a document one
of them accepts the other accepts too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from harness.errors import InputError, describe
from harness.limits import nesting_depth
from harness.tomlfile import clip
from harness.verdict import OUTCOMES

#: The largest results.json / environment.json / history line read.
MAX_JSON_BYTES = 64 << 20
#: How deep objects and arrays may nest in a bundle's JSON.
MAX_DEPTH = 32
#: The most items one results.json may hold, and attempts per item.
MAX_ITEMS = 100_000
MAX_ATTEMPTS = 100


class DocumentError(InputError):
    """Raised when a bundle's JSON document is not what a bundle writes."""


Path_ = Sequence[str | int]


def _dotted(key: Path_) -> str:
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + part
    return clip(text)


def parse_json(data: bytes, where: str, *, line: int | None = None) -> Any:
    """``data`` parsed as one JSON value within the bounds above."""
    if len(data) > MAX_JSON_BYTES:
        raise DocumentError(where, line=line, expected=f"at most {MAX_JSON_BYTES} bytes",
                            found="a larger document")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(where, line=line, expected="UTF-8 text",
                            found=f"byte 0x{data[exc.start]:02X} at offset {exc.start}") from None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).split(":")[0]
        if "recursion" in str(exc).lower():
            reason = "deeper nesting"
        raise DocumentError(where, line=line,
                            expected="a JSON document" if line is None else
                            "one JSON object per line", found=clip(reason)) from None
    if nesting_depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise DocumentError(where, line=line, expected=f"values nested at most {MAX_DEPTH} deep",
                            found="deeper nesting")
    return value


class Shape:
    """Checks one document; ``fail`` builds the one-line error for a key."""

    def __init__(self, where: str, line: int | None = None) -> None:
        self.where = where
        self.line = line

    def fail(self, key: Path_, expected: str, value: Any) -> DocumentError:
        return DocumentError(self.where, line=self.line, key=_dotted(key) or None,
                             expected=expected, found=describe(value))

    def obj(self, value: Any, key: Path_) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "an object", value)
        return value

    def field(self, obj: dict[str, Any], name: str, key: Path_, expected: str,
              ok: Callable[[Any], bool], *, required: bool = True) -> Any:
        if name not in obj:
            if required:
                raise DocumentError(self.where, line=self.line, key=_dotted([*key, name]),
                                    expected=expected, found="nothing (key missing)")
            return None
        value = obj[name]
        if not ok(value):
            raise self.fail([*key, name], expected, value)
        return value

    def array(self, obj: dict[str, Any], name: str, key: Path_, limit: int,
              *, required: bool = True) -> list[Any]:
        value = self.field(obj, name, key, f"an array of at most {limit} entries",
                           lambda v: isinstance(v, list) and len(v) <= limit, required=required)
        return [] if value is None else list(value)

    def strings(self, obj: dict[str, Any], name: str, key: Path_, *,
                required: bool = True) -> list[str]:
        return list(self.field(
            obj, name, key, "an array of strings",
            lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v),
            required=required) or [])


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_opt_int(v: Any) -> bool:
    return v is None or _is_int(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_outcome(v: Any) -> bool:
    return isinstance(v, str) and v in OUTCOMES


def _is_events(v: Any) -> bool:
    return isinstance(v, list) and all(_is_int(e) for e in v)


_OUTCOME = "one of " + ", ".join(OUTCOMES)


def check_results(value: Any, where: str = "results.json") -> dict[str, Any]:
    """``results.json`` as a bundle writes it, or a :class:`DocumentError`."""
    s = Shape(where)
    doc = s.obj(value, [])
    items = s.array(doc, "items", [], MAX_ITEMS)
    s.field(doc, "summary", [], "an object of outcome counts",
            lambda v: isinstance(v, dict) and all(_is_int(n) for n in v.values()))
    s.field(doc, "ok", [], "true or false", lambda v: isinstance(v, bool))
    s.field(doc, "errata", [], "an object or null", lambda v: v is None or isinstance(v, dict),
            required=False)
    for i, raw in enumerate(items):
        key: list[str | int] = ["items", i]
        item = s.obj(raw, key)
        for name in ("id", "scenario", "target"):
            s.field(item, name, key, "a string", _is_str)
        s.field(item, "outcome", key, _OUTCOME, _is_outcome)
        s.field(item, "seed", key, "an integer or null", _is_opt_int)
        s.field(item, "trace", key, "a path in the bundle or null", _is_opt_str)
        s.field(item, "os_build", key, "a string or null", _is_opt_str, required=False)
        s.field(item, "message", key, "a string", _is_str, required=False)
        s.field(item, "duration_s", key, "a number", _is_number, required=False)
        s.strings(item, "failures", key, required=False)
        s.strings(item, "expected_violations", key, required=False)
        s.strings(item, "known_issues", key, required=False)
        s.field(item, "rules", key, "an array of rule IDs or null",
                lambda v: v is None or (isinstance(v, list) and all(_is_str(r) for r in v)),
                required=False)
        for j, attempt in enumerate(s.array(item, "attempts", key, MAX_ATTEMPTS,
                                            required=False)):
            akey = [*key, "attempts", j]
            a = s.obj(attempt, akey)
            s.field(a, "attempt", akey, "an integer >= 0", lambda v: _is_int(v) and v >= 0)
            s.field(a, "outcome", akey, _OUTCOME, _is_outcome)
            s.field(a, "trace", akey, "a path in the bundle or null", _is_opt_str)
            s.strings(a, "failures", akey, required=False)
        for j, violation in enumerate(s.array(item, "violations", key, 10_000,
                                              required=False)):
            vkey = [*key, "violations", j]
            v = s.obj(violation, vkey)
            for name in ("rule", "party", "severity", "message"):
                s.field(v, name, vkey, "a string", _is_str)
            s.field(v, "events", vkey, "an array of event seqs", _is_events)
    return doc


def check_environment(value: Any, where: str = "environment.json") -> dict[str, Any]:
    """``environment.json``: an object whose driver entry, when there is one, is an object."""
    s = Shape(where)
    doc = s.obj(value, [])
    s.field(doc, "harness", [], "an object", lambda v: isinstance(v, dict), required=False)
    driver = s.field(doc, "driver", [], "an object or null",
                     lambda v: v is None or isinstance(v, dict), required=False)
    if isinstance(driver, dict):
        s.field(driver, "name", ["driver"], "a string or null", _is_opt_str, required=False)
        s.field(driver, "files", ["driver"], "an object",
                lambda v: isinstance(v, dict) and all(isinstance(f, dict) for f in v.values()),
                required=False)
    return doc
