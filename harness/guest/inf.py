"""A reader for driver INF files, as far as the harness needs them.

INF syntax as Windows' SetupAPI reads it: ``[Section]`` names are
case-insensitive; ``;`` starts a comment outside double quotes; a trailing
``\\`` continues a line; an entry is ``key = value[, value...]`` or a bare
value list; ``%token%`` is replaced from the ``[Strings]`` section. Files may
be UTF-8 or UTF-16 (with a BOM), as Stampinf and editors write them.

:func:`parse_inf` raises :class:`InfError` with the line number of the first
line it cannot read; the manifest loader turns it into a ManifestError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_TOKEN = re.compile(r"%([^%]+)%")


class InfError(Exception):
    """An INF line that does not parse."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    line: int
    key: str | None
    values: tuple[str, ...]


@dataclass
class Inf:
    """Sections (by lower-case name) holding entries, in file order."""

    path: Path
    sections: dict[str, list[Entry]] = field(default_factory=dict)
    section_names: dict[str, str] = field(default_factory=dict)

    def strings(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for name, entries in self.sections.items():
            if name == "strings" or name.startswith("strings."):
                for entry in entries:
                    if entry.key and entry.values:
                        table.setdefault(entry.key.lower(), entry.values[0])
        return table

    def substitute(self, text: str) -> str:
        """``text`` with ``%token%`` replaced from [Strings] (``%%`` is a literal %)."""
        table = self.strings()

        def replace(match: re.Match[str]) -> str:
            return table.get(match[1].lower(), match[0])

        return _TOKEN.sub(replace, text).replace("%%", "%")

    def entries(self, section: str) -> list[Entry]:
        return self.sections.get(section.lower(), [])

    def value(self, section: str, key: str) -> str | None:
        """The first value of ``key`` in ``section``, substituted; None when absent."""
        for entry in self.entries(section):
            if entry.key and entry.key.lower() == key.lower() and entry.values:
                return self.substitute(entry.values[0])
        return None

    def services(self) -> list[str]:
        """Service names of every ``AddService`` directive, in file order."""
        names: list[str] = []
        for entries in self.sections.values():
            for entry in entries:
                if entry.key and entry.key.lower() == "addservice" and entry.values:
                    name = self.substitute(entry.values[0])
                    if name and name not in names:
                        names.append(name)
        return names


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _split_comment(line: str, path: str, number: int) -> str:
    """The line without its comment; quotes protect ``;``."""
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return line[:i]
    if quoted:
        raise InfError(path, number, 'unterminated quoted string (missing ")')
    return line


def _values(text: str) -> tuple[str, ...]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                current.append('"')
                i += 1
            else:
                quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current).strip())
    return tuple(parts)


def parse_inf(path: str | Path) -> Inf:
    """Parse the INF at ``path``; raise :class:`InfError` on the first bad line."""
    path = Path(path)
    where = str(path)
    try:
        text = _decode(path.read_bytes())
    except OSError as exc:
        raise InfError(where, None, f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InfError(where, None, f"not UTF-8 or UTF-16 text ({exc.reason})") from None
    inf = Inf(path)
    current: list[Entry] | None = None
    pending = ""
    pending_line = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _split_comment(raw, where, number).strip()
        if pending:
            line = pending + line
        if line.endswith("\\"):
            pending, pending_line = line[:-1], pending_line or number
            continue
        start = pending_line or number
        pending, pending_line = "", 0
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise InfError(where, start, f"expected a section header [Name], found {line!r}")
            name = line[1:-1].strip()
            current = inf.sections.setdefault(name.lower(), [])
            inf.section_names.setdefault(name.lower(), name)
            continue
        if current is None:
            raise InfError(where, start, f"expected a [Section] before entries, found {line!r}")
        key, eq, rest = line.partition("=")
        if eq and '"' not in key:
            current.append(Entry(start, key.strip(), _values(rest)))
        else:
            current.append(Entry(start, None, _values(line)))
    if pending:
        raise InfError(where, pending_line, "a line continuation (\\) at the end of the file")
    signature = inf.value("Version", "Signature")
    if signature is None:
        raise InfError(where, None, "expected a [Version] section with Signature, found none")
    if signature.lower() not in ("$windows nt$", "$chicago$"):
        raise InfError(where, inf.entries("Version")[0].line if inf.entries("Version") else None,
                       f"expected Signature \"$Windows NT$\", found {signature!r}")
    return inf
