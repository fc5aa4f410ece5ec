"""Print a catalog of named entries that each break some rules (mutants, faults)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any


def print_catalog(entries: Iterable[Any], fmt: str,
                  kind: Callable[[Any], str] | None = None) -> int:
    """``{"name", "rules", "description"}`` rows as JSON, or aligned text."""
    items = list(entries)
    if fmt == "json":
        print(json.dumps([{"name": e.name, "rules": list(e.rules),
                           "description": e.description} for e in items], indent=2))
        return 0
    width = max((len(e.name) for e in items), default=4)
    rules_w = max((len(",".join(e.rules)) for e in items), default=5)
    for e in items:
        column = f"{kind(e):<6}  " if kind else ""
        print(f"{e.name:<{width}}  {column}{','.join(e.rules):<{rules_w}}  {e.description}")
    return 0
