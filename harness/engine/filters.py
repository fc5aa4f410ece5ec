"""The filter engine: which filters match an indication, and what the layer decides.

It reads committed policy from BFE (``committed_filters``, ``sublayer_weight``)
and keeps, per layer, an evaluation plan (sublayers by weight, filters by
weight inside each) that a commit invalidates. Evaluating an indication walks
the plan as "Filter Arbitration" describes (see ``arbitration``), calling
callout filters through the kernel with the write right the running verdict
leaves them. It also calls notifyFn when a committed change added or deleted
a filter that names a registered callout.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Protocol

from harness.engine import arbitration as arb
from harness.engine.kernel import Indication, Kernel
from harness.engine.objects import Condition, Filter

_TERMINATING = ("PERMIT", "BLOCK")


class PolicySource(Protocol):
    """What the filter engine needs from BFE."""

    def committed_filters(self, layer: str) -> list[Filter]: ...
    def sublayer_weight(self, key: str) -> int: ...


@lru_cache(maxsize=4096)
def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


@lru_cache(maxsize=1024)
def _in_prefix(host: str, prefix: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False


def _value(ind: Indication, field: str) -> object:
    if field == "protocol":
        return ind.proto
    if field == "direction":
        return ind.dir
    addr = ind.local if field.startswith("local") else ind.remote
    if addr is None:
        return None
    host, port = _split(addr)
    return port if field.endswith("port") else host


def _condition_holds(cond: Condition, value: object) -> bool:
    if value is None:
        return False
    if cond.match == "eq":
        return value == cond.value
    if cond.match == "ne":
        return value != cond.value
    if cond.match == "range":
        bounds: tuple[int, int] = cond.value  # type: ignore[assignment]
        return isinstance(value, int) and bounds[0] <= value <= bounds[1]
    return isinstance(value, str) and _in_prefix(value, str(cond.value))


def matches(flt: Filter, ind: Indication) -> bool:
    """FWPM conditions: the same field ORed, different fields ANDed."""
    by_field: dict[str, bool] = {}
    for cond in flt.conditions:
        if by_field.get(cond.field):
            continue
        by_field[cond.field] = _condition_holds(cond, _value(ind, cond.field))
    return all(by_field.values())


Plan = tuple[tuple[Filter, ...], ...]


class FilterEngine:
    """Arbitrates indications at a layer; see the module docstring."""

    def __init__(self, policy: PolicySource, kernel: Kernel) -> None:
        self._policy = policy
        self._kernel = kernel
        self._plans: dict[str, Plan] = {}
        self._known: dict[str, dict[str, Filter]] = {}  # layer -> filters last seen, by key

    def plan(self, layer: str) -> Plan:
        plan = self._plans.get(layer)
        if plan is None:
            plan = self._plans[layer] = self._build(layer)
        return plan

    def _build(self, layer: str) -> Plan:
        groups: dict[str, list[Filter]] = {}
        for flt in self._policy.committed_filters(layer):
            groups.setdefault(flt.sublayer, []).append(flt)
        weight = self._policy.sublayer_weight
        order = sorted(groups, key=lambda key: (-weight(key), key))
        return tuple(
            tuple(sorted(groups[key], key=lambda f: (-f.weight, f.filter_id, f.key)))
            for key in order
        )

    def policy_changed(self, layers: set[str]) -> None:
        """Drop the plans of changed layers; notify callouts of added and deleted filters."""
        for layer in sorted(layers):
            self._plans.pop(layer, None)
            before = self._known.get(layer, {})
            now = {f.key: f for f in self._policy.committed_filters(layer)}
            self._known[layer] = now
            for key in sorted(now.keys() - before.keys()):
                if now[key].callout is not None:
                    self._kernel.notify(str(now[key].callout), "add_filter", now[key])
            for key in sorted(before.keys() - now.keys()):
                if before[key].callout is not None:
                    self._kernel.notify(str(before[key].callout), "delete_filter", before[key])

    def classify(self, ind: Indication) -> Indication:
        """Evaluate every sublayer of ``ind.layer``; set ``ind.action``/``ind.absorbed``."""
        running = arb.NONE
        kernel = self._kernel
        for sublayer in self.plan(ind.layer):
            write = arb.WRITE_RIGHT[running]
            for flt in sublayer:
                if flt.conditions and not matches(flt, ind):
                    continue
                action = flt.action
                hard = "CLEAR_ACTION_RIGHT" in flt.flags
                if action in _TERMINATING:
                    running = arb.combine(running, arb.decision(action, hard))
                    break
                callout = kernel.deliverable(flt.callout)
                if callout is None:
                    # an unregistered callout blocks unless the filter says otherwise
                    fallback = (
                        "PERMIT" if "PERMIT_IF_CALLOUT_UNREGISTERED" in flt.flags else "BLOCK"
                    )
                    running = arb.combine(running, arb.decision(fallback, hard))
                    break
                out = kernel.invoke(callout, str(flt.callout), ind, write, flt)
                if out.absorb:
                    # the callout took the packet: nothing else sees it
                    ind.absorbed = True
                    ind.action = "BLOCK"
                    ind.returned = True
                    return ind
                if action == "CALLOUT_INSPECTION" or out.action not in _TERMINATING:
                    continue
                running = arb.combine(
                    running,
                    arb.decision(out.action, hard or not out.rights, callout_had_right=write),
                )
                break
        ind.action = arb.final_action(running)
        ind.returned = True
        return ind
