"""The ``callout-harness`` command line.

Each subcommand lives in the module that owns its work; this module only
builds the parser, dispatches, and turns harness errors into one-line
messages and exit codes: 0 all good, 1 a contract violation (or a failed
scenario), 2 bad input or bad usage. A traceback is a bug.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from harness import __version__
from harness.errors import HarnessError, InputError, UsageError

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT = 0, 1, 2

#: Subcommands defined elsewhere: name -> (module, help). The module has
#: ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when
#: the command is parsed, so ``check`` never pays for libvirt or the engine.
EXTERNAL_COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("harness.commands.simulate", "run the engine model on a workload, write a trace"),
    "mutants": ("harness.commands.mutants", "list the mutants and the rules each must trip"),
    "faults": ("harness.commands.faults", "list the engine faults and the rules each must trip"),
    "run": ("harness.commands.run", "run scenarios without writing tests; print a summary"),
    "scenarios": ("harness.commands.scenarios", "list or validate the scenario catalog"),
    "vm": ("harness.vm.cli", "list and garbage-collect harness VMs"),
    "certify": ("harness.certify.cli", "build or verify a certification bundle"),
    "history": ("harness.history.cli", "record runs and render the trend page"),
    "agent": ("harness.commands.agent", "build the Windows step agent (mingw-w64)"),
    "etw": ("harness.commands.etw", "decode an .etl capture, or convert it into a trace"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _add_check(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("check", help="check traces against the WFP contract")
    p.add_argument("traces", nargs="+", metavar="TRACE", help="trace files; - is stdin")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--select", metavar="IDS", help="comma list of rule IDs, EP* for a family")
    p.add_argument("--ignore", metavar="IDS", help="comma list of rule IDs to leave out")
    p.set_defaults(func=cmd_check)


def _add_rules(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("rules", help="list the contract rules")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_rules)


def cmd_check(args: argparse.Namespace) -> int:
    from harness.contract.catalog import select_rules
    from harness.contract.checker import CheckResult, check_file
    from harness.contract.report import as_json, collect_evidence, format_text

    rules = select_rules(args.select, args.ignore)
    results: list[CheckResult] = []
    bad: list[str] = []
    for path in args.traces:
        try:
            results.append(check_file(path, rules))
        except InputError as exc:
            bad.append(str(exc))
    if args.format == "json":
        print(json.dumps(as_json(results), indent=2))
    else:
        evidence = {}
        for r in results:
            if r.violations:
                evidence[r.path] = collect_evidence(
                    r.path, (s for v in r.violations for s in v.events)
                )
        if results:
            print(format_text(results, evidence))
    for message in bad:
        print(f"callout-harness: {message}", file=sys.stderr)
    if bad:
        return EXIT_BAD_INPUT
    return EXIT_VIOLATION if any(not r.ok for r in results) else EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    from harness.contract.catalog import FAMILIES, RULES

    rows = [
        {
            "id": r.id, "party": r.party, "severity": r.severity,
            "title": r.title, "source": r.source,
        }
        for r in RULES.values()
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    family = ""
    for r in RULES.values():
        if r.family != family:
            family = r.family
            print(f"\n{family}: {FAMILIES[family]}")
        print(f"  {r.id}  {r.party:<13} {r.severity:<7} {r.title}")
        print(f"  {'':5}  source: {r.source}")
    return EXIT_OK


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="callout-harness",
        description="QA harness for Windows Filtering Platform callout drivers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_check(sub)
    _add_rules(sub)
    # Only the command actually named pays for importing its module.
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in EXTERNAL_COMMANDS.items():
        if wanted == name:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise UsageError(f"the {name!r} command is not available here ({exc})") from exc
            p = sub.add_parser(name, help=help_text)
            module.add_arguments(p)
            runner: Callable[[argparse.Namespace], int] = module.run
            p.set_defaults(func=runner)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from harness.guest.credentials import install_redaction, redact

    install_redaction()  # every run: log records and error lines never carry a secret
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_BAD_INPUT
        return int(args.func(args))
    except SystemExit as exc:  # argparse: --help (0) or a usage error it printed (2)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except (UsageError, InputError) as exc:
        print(f"callout-harness: {redact(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except HarnessError as exc:
        print(f"callout-harness: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("callout-harness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
