"""``python -m harness.csim exports``: the kernel API the host runtime provides.

The list is read from the runtime's compiled objects (nm), so it is always the
runtime's own; the README's copy is checked against it by the tests.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["exports"]:
        print("usage: python -m harness.csim exports", file=sys.stderr)
        return 2
    from harness.csim.build import runtime_exports

    for name in runtime_exports():
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
