"""Load and validate scenario files.

A mistake is one line naming the file, the line, the key path, what was
expected and what was found; a file that fails is never half-loaded.

Every count and size a scenario gives has an upper bound, checked here (see
:data:`BOUNDS`): a scenario is a test, and ``peers = 9223372036854775807``
would otherwise make the engine model grow until the machine runs out of memory.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.contract.catalog import RULES, select_rules
from harness.errors import ScenarioError, UsageError, describe
from harness.scenario.model import (
    COUNTS,
    OUTCOMES,
    PEND_POINTS,
    CalloutConfig,
    Expectations,
    Scenario,
    Step,
)
from harness.scenario.steps import (
    BFE_STATUS_KINDS,
    COMMON_KEYS,
    CONNECTION_KINDS,
    STEP_KINDS,
    Param,
)
from harness.tomlfile import Document, Table
from harness.trace.status import canonical

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")

#: The largest value of each numeric step parameter (and ``delay_ms`` of a step or
#: of ``[callout]``). Ports are 16-bit; a scenario needs no more than a few
#: hundred peers or thousands of packets to make its point.
BOUNDS: dict[str, int] = {
    "peers": 256,
    "packets": 10_000,
    "segments": 10_000,
    "replies": 10_000,
    "port": 65_535,
    "remote_port": 65_535,
    "weight": 2**64 - 1,
    "seconds": 86_400,
    "delay_ms": 3_600_000,
}
#: At most this many steps in one scenario.
MAX_STEPS = 1_000
#: The largest ``seed`` and expected ``counts`` value.
MAX_SEED = 2**64 - 1
MAX_COUNT = 1_000_000
#: The longest string a scenario may give (ids, keys, names, descriptions).
MAX_STRING = 4_096
_STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def load_scenario(path: str | Path) -> Scenario:
    """Read one scenario file; raises :class:`ScenarioError` on any mistake."""
    doc = Document(Path(path), ScenarioError)
    root = doc.root()
    name = root.string("name", default=Path(path).stem, pattern=_NAME,
                       what="a name of lower-case letters, digits, '-', '_' or '.'")
    description = root.string("description", default="")
    tags = _string_list(root, "tags")
    if len(description) > MAX_STRING:
        raise root.fail("description", expected=f"at most {MAX_STRING} characters",
                        found=description)
    seed = root.integer("seed", default=1, minimum=0, maximum=MAX_SEED)
    callout_table = root.table("callout", required=False)
    callout = _callout(callout_table)
    steps = _steps(root)
    _check_block(callout_table, callout, steps)
    expect = _expect(root.table("expect", required=False), steps)
    root.finish()
    return Scenario(name, Path(path), description, tuple(tags), seed, callout, steps, expect)


def load_catalog(directory: str | Path) -> list[Scenario]:
    """Every ``*.toml`` in ``directory``, sorted by name; names must be unique."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ScenarioError(str(folder), expected="a directory of scenario files",
                            found="no such directory")
    scenarios: list[Scenario] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        scenario = load_scenario(path)
        if scenario.name in seen:
            raise ScenarioError(
                str(path), key="name",
                message=f"duplicate scenario name {scenario.name!r} "
                f"(also in {seen[scenario.name]})",
            )
        seen[scenario.name] = path
        scenarios.append(scenario)
    return sorted(scenarios, key=lambda s: s.name)


def select(scenarios: list[Scenario], names: str | None) -> list[Scenario]:
    """Scenarios named by a comma list (``all`` or None for every one)."""
    if not names or names == "all":
        return scenarios
    by_name = {s.name: s for s in scenarios}
    chosen: list[Scenario] = []
    for raw in names.split(","):
        key = raw.strip()
        if key not in by_name:
            raise UsageError(
                f"unknown scenario {key!r}; known: {', '.join(sorted(by_name))}"
            )
        chosen.append(by_name[key])
    return chosen


def _string_list(table: Table, key: str) -> list[str]:
    return list(table.strings(key, default=[]))


def _callout(t: Table) -> CalloutConfig:
    pend = _string_list(t, "pend") if t.has("pend") else list(PEND_POINTS)
    for i, point in enumerate(pend):
        if point not in PEND_POINTS:
            raise t.doc.fail((*t.key, "pend", i), expected=f"one of {', '.join(PEND_POINTS)}",
                             found=describe(point))
    delay = t.number("delay_ms", default=10, minimum=0)
    if not delay <= BOUNDS["delay_ms"]:  # NaN too
        raise t.fail("delay_ms", expected=f"a number <= {BOUNDS['delay_ms']}", found=delay)
    config = CalloutConfig(
        pend=frozenset(pend),
        delay_ms=float(delay),
        decision=t.string("decision", default="permit", choices=("permit", "block")),
        block=frozenset(_string_list(t, "block")),
        stream=t.string("stream", default="out_of_band", choices=("out_of_band", "inline")),
        endpoint_contexts=t.boolean("endpoint_contexts", default=True),
        flow_contexts=t.boolean("flow_contexts", default=True),
        pend_on_reauth=t.boolean("pend_on_reauth", default=False),
    )
    t.finish()
    return config


def _check_block(t: Table, callout: CalloutConfig, steps: tuple[Step, ...]) -> None:
    """``callout.block`` names connection steps the user-mode policy denies."""
    kinds = {s.id: s.do for s in steps if s.id}
    for i, name in enumerate(t.data.get("block", [])):
        if kinds.get(name) not in CONNECTION_KINDS:
            found = f"{name!r}, a {kinds[name]} step" if name in kinds else (
                f"{name!r}, which names no step")
            raise t.doc.fail((*t.key, "block", i), expected="the id of a connection step",
                             found=found)


def _steps(root: Table) -> tuple[Step, ...]:
    if "steps" not in root.data:
        raise root.fail("steps", expected="at least one [[steps]] table")
    tables = root.tables("steps")
    if not tables:
        raise root.fail("steps", expected="at least one [[steps]] table", found=[])
    if len(tables) > MAX_STEPS:
        raise root.fail("steps", expected=f"at most {MAX_STEPS} [[steps]] tables",
                        found=f"{len(tables)} of them")
    steps: list[Step] = []
    kinds_by_id: dict[str, str] = {}
    for index, t in enumerate(tables):
        do = t.string("do", choices=tuple(STEP_KINDS))
        step_id = t.string("id", default=None, pattern=_STEP_ID,
                           what="an identifier (letters, digits, '_' or '-')")
        if step_id is not None and step_id in kinds_by_id:
            raise t.doc.fail((*t.key, "id"), message=f"duplicate step id {step_id!r}")
        delay = t.number("delay_ms", default=0, minimum=0)
        if not delay <= BOUNDS["delay_ms"]:  # NaN too
            raise t.fail("delay_ms", expected=f"a number <= {BOUNDS['delay_ms']}", found=delay)
        concurrent = t.string("concurrent", default=None, pattern=_STEP_ID,
                              what="a group name")
        _, spec = STEP_KINDS[do]
        params: dict[str, object] = {}
        for pname, param in spec.items():
            params[pname] = _param(t, pname, param, kinds_by_id)
        for key in t.data:
            if key not in spec and key not in COMMON_KEYS:
                known = ", ".join(list(COMMON_KEYS) + list(spec))
                raise t.doc.fail((*t.key, key), expected=f"a parameter of {do!r} ({known})",
                                 found="unknown key")
        if step_id is not None:
            kinds_by_id[step_id] = do
        steps.append(Step(index, do, step_id, MappingProxyType(params), float(delay),
                          concurrent, t.doc.line_of(t.key)))
    return tuple(steps)


def _param(t: Table, name: str, param: Param, kinds_by_id: dict[str, str]) -> object:
    if not t.has(name):
        if param.required:
            raise t.fail(name, expected=_expected(param))
        t.raw(name, default=None)
        return param.default
    value = t.raw(name)
    if param.type == "ref":
        if not isinstance(value, str):
            raise t.fail(name, expected=_expected(param), found=value)
        kind = kinds_by_id.get(value)
        if kind is None:
            raise t.doc.fail(
                (*t.key, name), expected=f"the id of an earlier step ({_expected(param)})",
                found=f"{value!r}, which no earlier step has",
            )
        if param.refs and kind not in param.refs:
            raise t.doc.fail((*t.key, name), expected=_expected(param),
                             found=f"{value!r}, a {kind} step")
        return value
    if param.type == "wait":
        if value in ("default",):
            return 0
        if value in ("infinite", "INFINITE"):
            return 4294967295
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4294967295:
            raise t.fail(name, expected="milliseconds (0 to 4294967295), 'default' or 'infinite'",
                         found=value)
        return value
    ok = {
        "str": isinstance(value, str) and bool(value),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }.get(param.type, False)
    if not ok or (param.choices and value not in param.choices):
        raise t.fail(name, expected=_expected(param), found=value)
    if param.minimum is not None and isinstance(value, (int, float)) and value < param.minimum:
        raise t.fail(name, expected=f"{_expected(param)} >= {param.minimum:g}", found=value)
    bound = BOUNDS.get(name)
    if bound is not None and isinstance(value, (int, float)) and not value <= bound:
        low = "" if param.minimum is None else f"{param.minimum:g} to "
        raise t.fail(name, expected=f"{_expected(param)} ({low}{bound})", found=value)
    if isinstance(value, float) and not math.isfinite(value):
        raise t.fail(name, expected=f"a finite {_expected(param)}", found=value)
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise t.fail(name, expected=f"at most {MAX_STRING} characters", found=value)
    return float(value) if param.type == "float" else value


def _expected(param: Param) -> str:
    if param.choices:
        return "one of " + ", ".join(repr(c) for c in param.choices)
    if param.type == "ref":
        return "the id of a " + " or ".join(param.refs) + " step"
    return {"str": "a string", "int": "an integer", "float": "a number",
            "bool": "true or false"}.get(param.type, param.type)


def _rule_list(t: Table, key: str) -> frozenset[str]:
    items = _string_list(t, key)
    out: set[str] = set()
    for i, item in enumerate(items):
        try:
            out |= select_rules(item)
        except UsageError:
            looks_like_id = isinstance(item, str) and re.fullmatch(r"[A-Za-z]{2}\d{3}", item)
            raise t.doc.fail(
                (*t.key, key, i),
                expected="a rule ID of the contract ('callout-harness rules' lists them)"
                if looks_like_id else "a rule ID such as PC001, or a family such as EP*",
                found=f"unknown rule {item}" if looks_like_id else describe(item),
            ) from None
    return frozenset(out)


def _id_map(t: Table, key: str, steps: tuple[Step, ...], allowed_kinds: tuple[str, ...],
            what: str) -> dict[str, Any]:
    value = t.raw(key, default={})
    if not isinstance(value, dict):
        raise t.fail(key, expected=f"a table of step id = {what}", found=value)
    by_id = {s.id: s for s in steps if s.id}
    for step_id in value:
        step = by_id.get(step_id)
        if step is None:
            raise t.doc.fail((*t.key, key, step_id), expected="the id of a step",
                             found=f"{step_id!r}, which names no step")
        if step.do not in allowed_kinds:
            raise t.doc.fail((*t.key, key, step_id),
                             expected=f"a {' or '.join(allowed_kinds)} step",
                             found=f"a {step.do} step")
    return dict(value)


def _expect(t: Table, steps: tuple[Step, ...]) -> Expectations:
    rules = _rule_list(t, "rules") if t.has("rules") else frozenset(RULES)
    outcomes = _id_map(t, "outcomes", steps, CONNECTION_KINDS, "'allowed' or 'blocked'")
    for step_id, outcome in outcomes.items():
        if outcome not in OUTCOMES:
            raise t.doc.fail((*t.key, "outcomes", step_id), expected="'allowed' or 'blocked'",
                             found=describe(outcome))
    statuses = _id_map(t, "statuses", steps, BFE_STATUS_KINDS, "a status name")
    for step_id, status in list(statuses.items()):
        name = canonical(status) if isinstance(status, (str, int)) else None
        if name is None:
            raise t.doc.fail((*t.key, "statuses", step_id),
                             expected="a status name such as FWP_E_TIMEOUT", found=describe(status))
        statuses[step_id] = name
    counts_raw = t.raw("counts", default={})
    if not isinstance(counts_raw, dict):
        raise t.fail("counts", expected="a table of count = integer", found=counts_raw)
    counts: dict[str, int] = {}
    for cname, number in counts_raw.items():
        if cname not in COUNTS:
            raise t.doc.fail((*t.key, "counts", cname), expected=f"one of {', '.join(COUNTS)}",
                             found=f"{cname!r}")
        if (isinstance(number, bool) or not isinstance(number, int) or number < 0
                or number > MAX_COUNT):
            raise t.doc.fail((*t.key, "counts", cname),
                             expected=f"an integer from 0 to {MAX_COUNT}",
                             found=describe(number))
        counts[cname] = number
    violations = _rule_list(t, "violations") if t.has("violations") else frozenset()
    applicable = _rule_list(t, "applicable") if t.has("applicable") else frozenset()
    outside = sorted((violations | applicable) - rules)
    if outside:
        raise t.doc.fail((*t.key, "rules"), expected=f"a selection that includes {outside[0]}",
                         found="a selection without it")
    t.finish()
    return Expectations(rules, MappingProxyType(outcomes), MappingProxyType(statuses),
                        MappingProxyType(counts), violations, applicable)
