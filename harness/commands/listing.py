"""Print a catalog of named entries that each break some rules (mutants, faults)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def print_catalog(rows: Sequence[dict[str, Any]], fmt: str,
                  columns: Sequence[str] = ()) -> int:
    """Rows with ``name``, ``rules`` and ``description`` (and ``columns``) as
    JSON (every key of each row), or as aligned text."""
    if fmt == "json":
        print(json.dumps(list(rows), indent=2))
        return 0
    table = [[str(r["name"]), *(str(r.get(c, "")) for c in columns), ",".join(r["rules"])]
             for r in rows]
    widths = [max((len(t[i]) for t in table), default=4) for i in range(len(columns) + 2)]
    for r, cells in zip(rows, table, strict=True):
        text = "  ".join(f"{cell:<{w}}" for cell, w in zip(cells, widths, strict=True))
        print(f"{text}  {r['description']}")
    return 0
