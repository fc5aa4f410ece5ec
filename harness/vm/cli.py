"""``callout-harness vm list|gc``: show and clean up harness-created VMs.

``harness.cli`` adds the ``vm`` subcommand with :func:`add_parser` and calls
:func:`run`. The hypervisors to look at come from ``--uri`` (repeatable),
from the slots of ``--pool FILE``, or default to ``qemu:///system``. Only
domains carrying the harness metadata are shown or removed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from harness.errors import HarnessError, InputError

DEFAULT_URI = "qemu:///system"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``vm`` to an argparse ``add_subparsers()`` object; return it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "vm", help="list or clean up VMs the harness created",
        description="List or clean up the VMs callout-harness created; domains without"
        " its metadata are never shown or touched.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``vm`` subcommand's actions and options, on an existing parser."""
    actions = parser.add_subparsers(dest="vm_action", metavar="ACTION", required=True)
    for name, text in (
        ("list", "show harness-created domains and whether their lease is live or stale"),
        ("gc", "remove stale harness domains with their overlays and snapshot metadata"),
    ):
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("--uri", dest="vm_uris", metavar="URI", action="append", default=[],
                         help=f"libvirt URI to look at (repeatable; default {DEFAULT_URI})")
        sub.add_argument("--pool", dest="vm_pool", metavar="FILE", type=Path, default=None,
                         help="look at every hypervisor of this pool file")
        sub.add_argument("--profiles", dest="vm_profile_dirs", metavar="DIR", type=Path,
                         action="append", default=[],
                         help="where the pool's profiles are (default: ./fixtures)")
        if name == "gc":
            sub.add_argument("--all", dest="vm_include_live", action="store_true",
                             help="also remove domains whose lease is still live")


def _uris(args: argparse.Namespace) -> list[str]:
    uris: list[str] = list(args.vm_uris)
    if args.vm_pool is not None:
        from harness.vm.pool import load_pool

        dirs = args.vm_profile_dirs or [Path("fixtures")]
        uris.extend(load_pool(args.vm_pool, dirs).uris)
    return list(dict.fromkeys(uris)) or [DEFAULT_URI]


def run(args: argparse.Namespace, *, out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    """Carry out ``vm list`` or ``vm gc``; return the exit status."""
    stdout = out or sys.stdout
    stderr = err or sys.stderr
    from harness.vm.gc import collect_garbage, format_table, list_domains

    try:
        uris = _uris(args)
        if args.vm_action == "list":
            domains = list_domains(uris)
            if domains:
                print(format_table(domains), file=stdout)
            else:
                print(f"no harness domains on {', '.join(uris)}", file=stdout)
            return 0
        removed = collect_garbage(uris, include_live=args.vm_include_live)
        for item in removed:
            why = item.stale_reason or "removed with --all"
            print(f"removed {item.name} on {item.uri} (run {item.record.run_id}: {why})",
                  file=stdout)
        if not removed:
            print(f"nothing to collect on {', '.join(uris)}", file=stdout)
        return 0
    except InputError as exc:  # a bad pool or profile file: bad input, as for check
        print(f"callout-harness vm {args.vm_action}: {exc}", file=stderr)
        return 2
    except HarnessError as exc:
        print(f"callout-harness vm {args.vm_action}: {exc}", file=stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m harness.vm.cli list``) until harness.cli wires it."""
    parser = argparse.ArgumentParser(prog="callout-harness")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["vm", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
