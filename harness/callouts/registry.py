"""Mutants: deliberately broken behaviours, each named after the rules it breaks.

A mutant plays a known bug (a driver that never completes a pend, a policy
client that leaves its transaction open) so that the harness can prove the
contract checker catches it: running the mutant must trip every rule in
``rules``. The same :class:`Mutant` type serves driver mutants (callouts) and
client mutants (policy-client processes); what ``factory`` builds is up to the
registry that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.errors import UsageError

_RULE_ID = re.compile(r"^[A-Z]{2}\d{3}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Mutant:
    """A named broken behaviour.

    ``rules`` are the rule IDs its trace must trip; ``factory`` builds the
    behaviour (a callout object, or a generator process to spawn), taking the
    same arguments as the correct behaviour it is a mutation of.
    """

    name: str
    rules: tuple[str, ...]
    description: str
    factory: Callable[..., object]

    def __post_init__(self) -> None:
        # A malformed entry fails where it is defined, naming itself.
        if not _NAME.match(self.name):
            raise ValueError(f"mutant name {self.name!r} is not snake_case")
        if not self.rules:
            raise ValueError(f"mutant {self.name!r} names no rule it breaks")
        bad = [r for r in self.rules if not _RULE_ID.match(r)]
        if bad:
            raise ValueError(f"mutant {self.name!r}: {bad[0]!r} is not a rule ID like TX008")
        if not self.description:
            raise ValueError(f"mutant {self.name!r} has no description")


def build_registry(mutants: Iterable[Mutant]) -> dict[str, Mutant]:
    """A name -> mutant mapping; a duplicate name is an error."""
    registry: dict[str, Mutant] = {}
    for mutant in mutants:
        if mutant.name in registry:
            raise ValueError(f"mutant {mutant.name!r} is defined twice")
        registry[mutant.name] = mutant
    return registry


def lookup(registry: dict[str, Mutant], name: str, kind: str = "mutant") -> Mutant:
    """The mutant called ``name``, or a UsageError listing the known ones."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise UsageError(f"unknown {kind} {name!r}; known: {known}") from None
