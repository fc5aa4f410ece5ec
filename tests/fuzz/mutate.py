"""Mutations of the harness's input files, driven by one integer seed.

Three kinds of change, mixed: bytes (flip, cut, duplicate, insert a hostile
token such as 600 open brackets, a non-UTF-8 byte or a 64-bit overflow), a
TOML value replaced by another literal, and a JSON node replaced by another
value (deep, huge, of the wrong type). The fuzz test draws the seed with
hypothesis; ``tests/fuzz/measure.py`` walks seeds in order to measure memory.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

#: Tokens that broke a reader once, or would break a naive one.
HOSTILE: tuple[bytes, ...] = (
    b"[" * 600, b"{" * 600, b"[" * 40 + b"]" * 40, b"\xff\xfe", b"\xc3", b"\x00",
    b"9223372036854775807", b"-9223372036854775809", b"18446744073709551616",
    b"-2147483648", b"1e400", b"nan", b"inf", b"-inf", b"-1.0", b"-1", b"0",
    b'"' + b"a" * 5000 + b'"', b"a" * 5000, b"\n", b"\r\n", b"\t", b"'", b'"', b'"""',
    b"[[steps]]\n", b"[driver]\n", b"[[known]]\n", b"[[slot]]\n", b"[]", b"{}", b"true",
    b"null", b'"ends": true', b'"trace_end"', b"= 1", b"x.y.z = 2", b"#", b"\\u0000",
    b"\xf0\x9f\x92\xa9", b"2026-13-45", b"1979-05-27T07:32:00Z",
)

_TOML_VALUES: tuple[str, ...] = (
    "9223372036854775807", "-9223372036854775808", "-1", "0", "1e308", "inf", "nan",
    "true", "[]", "{}", '"x"', '""', "[1, 2]", "[[1]]", "{ a = 1 }", "2026-01-01",
    '"' + "b" * 3000 + '"', "[" * 50 + "]" * 50, '"../../../../etc/passwd"', "1.5",
    '"{00000000-0000-0000-0000-000000000000}"', '"STATUS_SUCCESS"', '"PC*"',
)
_TOML_LINE = re.compile(rb"^(\s*[A-Za-z0-9_.\"'-]+\s*=\s*)(.+)$", re.M)


def _json_value(rng: random.Random, depth: int = 0) -> object:
    pick = rng.randrange(14 if depth < 3 else 10)
    simple: list[object] = [None, True, False, -1, -1.0, 0, 2**63 - 1, 1.5e300, "",
                            "x" * rng.choice((1, 50, 5000))]
    if pick < 10:
        return simple[pick]
    if pick == 10:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    if pick == 11:
        return {rng.choice(("id", "outcome", "trace", "items", "ev", "seq", "t", "driver",
                            "attempts", "rules", "events", "x")): _json_value(rng, depth + 1)
                for _ in range(rng.randrange(3))}
    if pick == 12:
        nest: object = 0
        for _ in range(rng.choice((40, 70, 200))):
            nest = [nest]
        return nest
    return rng.choice(["passed", "failed", "flaky", "known", "STATUS_SUCCESS", "PC001",
                       "traces/../../etc/passwd", "/etc/passwd"])


def _json_nodes(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _json_nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:20]):
            out += _json_nodes(child, (*path, index))
    return out


def _replace(value: object, path: tuple[object, ...], new: object) -> object:
    if not path:
        return new
    head, rest = path[0], path[1:]
    container: Any = value
    if isinstance(value, (dict, list)):
        container[head] = _replace(container[head], rest, new)
    return value


def mutate_json_doc(data: bytes, rng: random.Random) -> bytes:
    """Replace (or delete) one node of a JSON document; bytes unchanged if it is not JSON."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or too deep for the stdlib to mutate
        return data
    nodes = _json_nodes(doc)
    path = rng.choice(nodes)
    if path and rng.random() < 0.2:
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, (dict, list)):
            del parent[path[-1]]
    else:
        doc = _replace(doc, path, _json_value(rng))
    return json.dumps(doc).encode()


def mutate_json_lines(data: bytes, rng: random.Random) -> bytes:
    """One line of a JSON Lines file mutated as a document, or lines cut/duplicated."""
    lines = data.splitlines(keepends=True)
    if not lines:
        return data
    choice = rng.randrange(4)
    n = rng.randrange(len(lines))
    if choice == 0:
        return b"".join(lines[:n])  # cut short
    if choice == 1:
        lines.insert(n, lines[rng.randrange(len(lines))])
        return b"".join(lines)
    lines[n] = mutate_json_doc(lines[n], rng) + b"\n"
    return b"".join(lines)


def mutate_toml(data: bytes, rng: random.Random) -> bytes:
    """Replace one ``key = value`` with another literal, or duplicate a line."""
    found = list(_TOML_LINE.finditer(data))
    if not found:
        return data
    match = rng.choice(found)
    if rng.random() < 0.15:  # a duplicate key
        return data[: match.end()] + b"\n" + match.group(0) + data[match.end():]
    value = rng.choice(_TOML_VALUES).encode()
    return data[: match.start(2)] + value + data[match.end(2):]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            end = min(len(buf), pos + rng.randint(1, 64))
            del buf[pos:end]
        elif op == 2:
            end = min(len(buf), pos + rng.randint(1, 200))
            buf[pos:pos] = buf[pos:end] * rng.randint(1, 3)
        else:
            buf[pos:pos] = rng.choice(HOSTILE)
    return bytes(buf)


TOML_KINDS = frozenset({"scenario", "profile", "pool", "manifest", "errata"})
JSON_DOC_KINDS = frozenset({"results", "environment"})
JSON_LINES_KINDS = frozenset({"trace", "history"})


def mutate(kind: str, data: bytes, seed: int) -> bytes:
    """The ``seed``-th mutation of a file of ``kind`` whose valid content is ``data``."""
    rng = random.Random(seed)
    structured = rng.random() < 0.6
    if structured and kind in TOML_KINDS:
        out = mutate_toml(data, rng)
    elif structured and kind in JSON_DOC_KINDS:
        out = mutate_json_doc(data, rng)
    elif structured and kind in JSON_LINES_KINDS:
        out = mutate_json_lines(data, rng)
    else:
        out = mutate_bytes(data, rng)
    if rng.random() < 0.25:  # sometimes both
        out = mutate_bytes(out, rng)
    return out
