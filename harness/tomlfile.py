"""Strict reading of the TOML files a user writes (scenarios, VM profiles, pools).

Scenario, profile and pool files share this reader: every value is fetched through a
:class:`Table` that knows the file, the dotted key and the line the key is on,
so a mistake becomes a one-line :class:`~harness.errors.InputError`
(``FILE:LINE: KEY: expected X, found Y``). Keys that no getter asked for are
reported by :meth:`Table.finish`, which is how unknown keys become errors.

Every file goes through :func:`parse_toml`, which bounds what a user can make
the reader hold: at most :data:`MAX_FILE_BYTES` bytes, UTF-8, tables and
arrays nested at most :data:`MAX_DEPTH` deep (Python's TOML reader recurses,
so a file of 500 nested arrays would otherwise end in a RecursionError).
Echoed values are cut to :data:`MAX_ECHO` characters.

Standard library only: this module is imported without libvirt.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import InputError, describe
from harness.limits import nesting_depth

KeyPart = str | int

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_BARE_OR_QUOTED = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_ASSIGN = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_MISSING: Any = object()

#: The largest TOML file the harness reads (scenarios, profiles, pools, manifests, errata).
MAX_FILE_BYTES = 1 << 20
#: How deep tables and arrays may nest in any TOML file the harness reads.
MAX_DEPTH = 32
#: How many characters of a key or value an error message echoes.
MAX_ECHO = 80


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters (with a note of how long it was)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"



def parse_toml(
    path: Path, error: type[InputError], *, syntax_as_expected: bool = False
) -> tuple[str, dict[str, Any]]:
    """Read and parse the TOML file at ``path`` within the bounds above.

    Returns the text and the data; every failure is one ``error`` line naming the
    file. A syntax error reads "not valid TOML: WHY", or with ``syntax_as_expected``
    "expected valid TOML, found WHY".
    """
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise error(str(path), message="file not found") from exc
    except IsADirectoryError as exc:
        raise error(str(path), expected="a TOML file", found="a directory") from exc
    except OSError as exc:
        raise error(str(path), message=f"cannot read ({exc.strerror or exc})") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise error(str(path), expected=f"a file of at most {MAX_FILE_BYTES} bytes",
                    found="a larger file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(str(path), line=raw.count(b"\n", 0, exc.start) + 1, expected="UTF-8 text",
                    found=f"byte 0x{raw[exc.start]:02X}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        at = int(found.group(1)) if found else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        if syntax_as_expected:
            raise error(str(path), line=at, expected="valid TOML", found=clip(reason)) from None
        raise error(str(path), line=at, message=f"not valid TOML: {clip(reason)}") from None
    except RecursionError:
        raise error(str(path), expected=f"tables and arrays nested at most {MAX_DEPTH} deep",
                    found="deeper nesting") from None
    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise error(str(path), expected=f"tables and arrays nested at most {MAX_DEPTH} deep",
                    found="deeper nesting")
    return text, data


def _split_dotted(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in text.split(".")]


class Document:
    """A parsed TOML file plus what is needed to point at a line in it."""

    def __init__(self, path: Path, error: type[InputError]) -> None:
        self.path = path
        self.error_type = error
        self.text, self.data = parse_toml(path, error)
        self._lines = self._index_lines()

    def _index_lines(self) -> dict[tuple[KeyPart, ...], int]:
        """Map each key path (array-of-tables entries by index) to its line."""
        index: dict[tuple[KeyPart, ...], int] = {}
        counts: dict[tuple[str, ...], int] = {}
        current: tuple[KeyPart, ...] = ()
        in_multiline = False
        for number, line in enumerate(self.text.splitlines(), start=1):
            opens_or_closes = line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1
            if in_multiline:
                in_multiline = not opens_or_closes
                continue
            in_multiline = opens_or_closes
            header = _HEADER.match(line)
            if header:
                names = tuple(_split_dotted(header.group(2)))
                if header.group(1) == "[[":
                    position = counts.get(names, 0)
                    counts[names] = position + 1
                    current = (*names, position)
                else:
                    current = names
                index.setdefault(current, number)
                continue
            assign = _ASSIGN.match(line)
            if assign:
                index.setdefault((*current, *_split_dotted(assign.group(1))), number)
        return index

    def line_of(self, key: Sequence[KeyPart]) -> int | None:
        """The line of ``key``, or of its nearest enclosing key that has one."""
        parts = tuple(key)
        while parts:
            if parts in self._lines:
                return self._lines[parts]
            parts = parts[:-1]
        return None

    def fail(
        self,
        key: Sequence[KeyPart],
        *,
        expected: str | None = None,
        found: str | None = None,
        message: str | None = None,
    ) -> InputError:
        """An error for ``key``; the caller raises it."""
        return self.error_type(
            str(self.path),
            line=self.line_of(key),
            key=clip(dotted(key)) or None,
            expected=None if expected is None else clip(expected, 4 * MAX_ECHO),
            found=None if found is None else clip(found),
            message=None if message is None else clip(message, 4 * MAX_ECHO),
        )

    def root(self) -> Table:
        return Table(self, (), self.data)


def dotted(key: Sequence[KeyPart]) -> str:
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


class Table:
    """One TOML table; getters validate and record which keys were read."""

    def __init__(self, doc: Document, key: tuple[KeyPart, ...], data: dict[str, Any]) -> None:
        self.doc = doc
        self.key = key
        self.data = data
        self._seen: set[str] = set()

    def fail(self, name: str, *, expected: str, found: Any = _MISSING) -> InputError:
        shown = "nothing" if found is _MISSING else describe(found)
        return self.doc.fail((*self.key, name), expected=expected, found=shown)

    def _get(self, name: str, default: Any, expected: str) -> Any:
        self._seen.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.fail(name, expected=expected)
        return default

    def has(self, name: str) -> bool:
        return name in self.data

    def string(
        self,
        name: str,
        *,
        default: Any = _MISSING,
        choices: Sequence[str] | None = None,
        pattern: re.Pattern[str] | None = None,
        what: str = "a string",
    ) -> Any:
        expected = f"one of {', '.join(repr(c) for c in choices)}" if choices else what
        value = self._get(name, default, expected)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value:
            raise self.fail(name, expected=expected, found=value)
        if choices is not None and value not in choices:
            raise self.fail(name, expected=expected, found=value)
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(name, expected=expected, found=value)
        return value

    def integer(
        self, name: str, *, default: Any = _MISSING, minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        low = "" if minimum is None else f" >= {minimum}"
        high = "" if maximum is None else f" <= {maximum}"
        expected = f"an integer{low}{' and' if low and high else ''}{high}"
        value = self._get(name, default, expected)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, expected=expected, found=value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.fail(name, expected=expected, found=value)
        return value

    def number(self, name: str, *, default: Any = _MISSING, minimum: float | None = None) -> Any:
        """An int or float (not a bool), at least ``minimum`` when given."""
        expected = "a number" if minimum is None else f"a number >= {minimum:g}"
        value = self._get(name, default, expected)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, expected=expected, found=value)
        if minimum is not None and value < minimum:
            raise self.fail(name, expected=expected, found=value)
        return value

    def strings(self, name: str, *, default: Any = _MISSING) -> Any:
        """An array of strings."""
        value = self._get(name, default, "an array of strings")
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, expected="an array of strings", found=value)
        return list(value)

    def raw(self, name: str, *, default: Any = _MISSING, expected: str = "a value") -> Any:
        """The value as TOML gave it, for callers that validate it themselves."""
        return self._get(name, default, expected)

    def boolean(self, name: str, *, default: Any = _MISSING) -> Any:
        value = self._get(name, default, "true or false")
        if not isinstance(value, bool):
            raise self.fail(name, expected="true or false", found=value)
        return value

    def env_name(self, name: str, *, default: Any = _MISSING) -> Any:
        """The NAME of an environment variable (a credential never goes in a file)."""
        expected = "the name of an environment variable (A-Z, 0-9, _)"
        value = self._get(name, default, expected)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise self.fail(name, expected=expected, found=value)
        if not _ENV_NAME.fullmatch(value):
            # Never echo the value: a user may have pasted the secret itself.
            raise self.doc.fail(
                (*self.key, name), expected=expected, found="a value that is not a variable name"
            )
        return value

    def path(self, name: str, *, default: Any = _MISSING) -> Any:
        """A file path: ``~`` and ``${VAR}`` expanded, relative to the file's folder."""
        value = self.string(name, default=default, what="a path")
        if value is default and default is not _MISSING:
            return value
        try:
            expanded = string.Template(value).substitute(os.environ)
        except KeyError as exc:
            raise self.doc.fail(
                (*self.key, name),
                expected=f"environment variable {exc.args[0]} to be set",
                found="it unset",
            ) from exc
        except ValueError as exc:
            raise self.fail(name, expected="a path with valid ${VAR} references",
                            found=value) from exc
        path = Path(expanded).expanduser()
        if not path.is_absolute():
            path = self.doc.path.parent / path
        return path

    def table(self, name: str, *, required: bool = True) -> Table:
        value = self._get(name, _MISSING if required else {}, "a table")
        if not isinstance(value, dict):
            raise self.fail(name, expected="a table", found=value)
        return Table(self.doc, (*self.key, name), value)

    def tables(self, name: str) -> list[Table]:
        """An array of tables (``[[name]]``)."""
        value = self._get(name, _MISSING, "an array of tables")
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail(name, expected="an array of tables", found=value)
        return [Table(self.doc, (*self.key, name, i), item) for i, item in enumerate(value)]

    def subtables(self) -> dict[str, Table]:
        """Every remaining value, each of which must be a table."""
        result: dict[str, Table] = {}
        for name in self.data:
            result[name] = self.table(name)
        return result

    def finish(self) -> None:
        """Raise for the first key in this table that no getter read."""
        for name in self.data:
            if name not in self._seen:
                known = sorted(self._seen)
                expected = f"one of {', '.join(known)}" if known else "no keys here"
                raise self.doc.fail(
                    (*self.key, name), expected=expected, found="unknown key"
                )

    def error(self, name: str, *, expected: str, found: Any = _MISSING) -> InputError:
        return self.fail(name, expected=expected, found=found)
