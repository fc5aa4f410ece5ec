"""``callout-harness certify``: build a certification bundle without pytest, or verify one.

``certify run`` takes the options of ``run`` (the same session, the same
scenario selection) plus the bundle directory, errata and retries;
``certify verify DIR|ARCHIVE [--trusted KEYS]`` prints one line per problem
and exits 0 when the bundle is whole, 1 when something is missing, changed,
contradicted by its own traces or not signed by a trusted key, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.errata import load_errata
from harness.errors import BundleError
from harness.verdict import RED

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.commands import run as runner_cli

    sub = parser.add_subparsers(dest="certify_command", metavar="ACTION", required=True)
    run_p = sub.add_parser("run", conflict_handler="resolve",
                           help="run scenarios and write a certification bundle")
    runner_cli.add_arguments(run_p)
    run_p.add_argument("--out", required=True, metavar="DIR",
                       help="the bundle directory; DIR.tar.gz is written next to it")
    run_p.add_argument("--certify-key", dest="certify_key", metavar="KEY", default=None,
                       help="SSH private key that signs SHA256SUMS (ssh-keygen -Y sign)")
    run_p.set_defaults(certify_func=run_certify)
    verify_p = sub.add_parser("verify", help="check a bundle's sums, traces and signature")
    verify_p.add_argument("bundle", metavar="DIR|ARCHIVE")
    verify_p.add_argument("--trusted", metavar="KEYS", default=None,
                          help="file of OpenSSH public keys, one per line: the bundle must "
                               "be signed by one of them")
    verify_p.set_defaults(certify_func=run_verify)


def run(args: argparse.Namespace) -> int:
    return int(args.certify_func(args))


# -- certify verify ------------------------------------------------------------

def run_verify(args: argparse.Namespace) -> int:
    from harness.certify.signing import read_trusted
    from harness.certify.verify import verify

    trusted = read_trusted(Path(args.trusted)) if args.trusted else None
    try:
        found = verify(args.bundle, trusted=trusted)
    except BundleError as exc:
        print(f"callout-harness: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for problem in found.problems:
        print(problem)
    signature = found.signature
    signed = "unsigned" if signature is None or signature.state == "unsigned" else (
        signature.detail)
    if found.problems:
        print(f"{found.bundle}: {len(found.problems)} problem(s); {signed}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"{found.bundle}: OK ({found.checked} files match SHA256SUMS, "
          f"{found.rejudged} trace(s) judged again and consistent); {signed}")
    return EXIT_OK


# -- certify run ---------------------------------------------------------------

def run_certify(args: argparse.Namespace) -> int:
    """``run`` into a work directory, then the bundle from its items."""
    import tempfile

    from harness.certify.bundle import check_bundle_dir, finish_bundle
    from harness.certify.signing import check_sign_key
    from harness.commands.run import execute

    bundle_dir = Path(args.out).resolve()
    # Everything a bundle needs is checked before a scenario runs.
    check_bundle_dir(bundle_dir)
    sign_key = check_sign_key(Path(args.certify_key)) if args.certify_key else None
    if args.driver:
        from harness.guest.manifest import load_manifest

        load_manifest(args.driver, check_binaries=False)
    errata = load_errata(args.errata) if args.errata else None
    with tempfile.TemporaryDirectory(prefix="certify-") as work:
        # Ctrl-C inside execute() propagates: no bundle is written for a partial run.
        summary = execute(args, Path(work))
        bundle, report = finish_bundle(
            bundle_dir, summary.items, vm=args.vm,
            driver=Path(args.driver) if args.driver else None, root=Path.cwd(),
            errata=errata, history=Path(args.history) if args.history else None,
            stale_runs=args.errata_stale_runs, command=_command(args), sign_key=sign_key,
        )
    for stale in report.stale:
        print(stale.describe())
    counts = ", ".join(f"{n} {k}" for k, n in bundle.results["summary"].items() if n)
    print(f"{counts or 'no items'}; bundle {bundle.directory} and {bundle.archive.name}")
    return EXIT_PROBLEMS if any(item.outcome in RED for item in summary.items) else EXIT_OK


def _command(args: argparse.Namespace) -> dict[str, Any]:
    """The command and its effective options (argv may not be this command's own)."""
    options = {k: v for k, v in sorted(vars(args).items())
               if not callable(v) and k != "certify_command"}
    return {"command": "callout-harness certify run", "options": options}
