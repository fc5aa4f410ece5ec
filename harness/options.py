"""The run options, declared once: rendered into pytest's option group and
into the argparse parsers of ``run``, ``certify run`` and ``simulate``.

Each option has one validator, used by both front ends. A validator raises
:class:`argparse.ArgumentTypeError`; argparse and pytest (whose parser is
argparse) both turn that into a usage error naming the option, e.g.
``argument --seed: expected a whole number from 0 to 4294967295, got -3``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: Upper bounds of the numbers a user writes on a command line.
MAX_SEED = 2**32 - 1
MAX_EXPLORE = 10_000
MAX_RETRIES = 100


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A validator for a whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high}, got {text[:40]!r}"
            )
        return value

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def callout_spec(text: str) -> str:
    """The shape of a ``--callout`` spec; the callout itself is loaded at set-up."""
    from harness.callouts.spec import SPEC_FORMS, spec_kind

    if spec_kind(text) is None:
        raise argparse.ArgumentTypeError(f"expected {SPEC_FORMS}, got {text[:80]!r}")
    return text


def history_file(text: str) -> str:
    """``--errata-history FILE``: read and checked when the command line is parsed, so
    every command refuses the same bad file (a missing one is an empty history: no
    run recorded yet)."""
    from harness.errors import HarnessError
    from harness.history.records import read_history

    try:
        read_history(text)
    except HarnessError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def engine_fault(text: str) -> str:
    from harness.engine.faults import FAULTS

    if text not in FAULTS:
        raise argparse.ArgumentTypeError(
            f"unknown engine fault {text[:40]!r}; known: {', '.join(sorted(FAULTS))}"
        )
    return text


@dataclass(frozen=True)
class Option:
    """One option: ``name`` is its argparse dest (pytest's is ``harness_<name>``)."""

    flag: str
    name: str
    metavar: str
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    repeat: bool = False

    def kwargs(self, default: Any) -> dict[str, Any]:
        kw: dict[str, Any] = {"metavar": self.metavar, "help": self.help}
        if self.repeat:
            kw.update(action="append", default=[])
        else:
            kw["default"] = default
        if self.type is not None:
            kw["type"] = self.type
        return kw


RUN_OPTIONS: tuple[Option, ...] = (
    Option("--vm", "vm", "NAME", "target: 'sim' (the embedded engine model, default) or a VM "
           "profile name from fixtures/ (win11, linux-tcg, ...)", default="sim"),
    Option("--callout", "callout", "SPEC", "callout on --vm sim: reference (default), "
           "mutant:NAME, module:pkg.mod:Class", type=callout_spec, default="reference"),
    Option("--seed", "seed", "N", f"seed for every scenario, 0 to {MAX_SEED} (default: each "
           "scenario's own seed)", type=whole_number(0, MAX_SEED)),
    Option("--explore", "explore", "N", f"try N (at most {MAX_EXPLORE}) seeded interleavings "
           "of each scenario's concurrent steps; a failure is shrunk",
           type=whole_number(0, MAX_EXPLORE), default=0),
    Option("--engine-fault", "faults", "NAME", "break one engine guarantee on --vm sim (see "
           "'callout-harness faults'); repeatable", type=engine_fault, repeat=True),
    Option("--vm-uri", "vm_uri", "URI", "libvirt URI for --vm PROFILE instead of the "
           "profile's own (e.g. qemu+ssh://hv2/system)"),
    Option("--driver", "driver", "MANIFEST", "driver manifest (drivers/NAME/driver.toml) to "
           "deploy on a VM target"),
)


def option(name: str) -> Option:
    return next(o for o in RUN_OPTIONS if o.name == name)


def add_to_argparse(parser: argparse.ArgumentParser, names: Iterable[str] | None = None,
                    **defaults: Any) -> None:
    """Declare the table's options (or those named) on an argparse parser."""
    for opt in RUN_OPTIONS:
        if names is not None and opt.name not in names:
            continue
        parser.add_argument(opt.flag, dest=opt.name,
                            **opt.kwargs(defaults.get(opt.name, opt.default)))


def add_ci_arguments(p: argparse.ArgumentParser) -> None:
    """Errata and retry options, for every command that judges a run (``run``,
    ``certify run``); pytest has the same in :mod:`harness.plugin_ci`."""
    from harness.errata import DEFAULT_STALE_RUNS, MAX_STALE_RUNS

    p.add_argument("--errata", metavar="FILE", default=None,
                   help="known-issues file: failures its live entries match are 'known'")
    p.add_argument("--errata-stale-runs", type=whole_number(1, MAX_STALE_RUNS),
                   default=DEFAULT_STALE_RUNS, metavar="N",
                   help="report an entry that matched nothing in N consecutive runs "
                        f"(default {DEFAULT_STALE_RUNS})")
    p.add_argument("--errata-history", "--history", dest="history", metavar="FILE",
                   default=None, type=history_file,
                   help="history file (callout-harness history add) used to count stale "
                        "errata entries")
    p.add_argument("--retries", "--harness-retries", dest="retries",
                   type=whole_number(0, MAX_RETRIES), default=0, metavar="N",
                   help="run a failed scenario up to N more times; a later pass is "
                        "reported as flaky")


def add_to_pytest(group: Any) -> None:
    """Declare the table's options in pytest's option group (``dest=harness_<name>``).

    ``--vm`` and ``--callout`` default to None there, so that the ini
    setting (``harness_vm``) and the run's own default can be told apart.
    """
    for opt in RUN_OPTIONS:
        default = None if opt.name in ("vm", "callout") else opt.default
        group.addoption(opt.flag, dest=f"harness_{opt.name}", **opt.kwargs(default))
