"""Write a Scenario back as a scenario file (used to save shrunk failures)."""

from __future__ import annotations

import json

from harness.contract.catalog import RULES
from harness.scenario.model import CalloutConfig, Scenario


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple, frozenset, set)):
        items = sorted(v) if isinstance(v, (frozenset, set)) else list(v)
        return "[" + ", ".join(_value(i) for i in items) + "]"
    return json.dumps(str(v))


def dump_scenario(sc: Scenario) -> str:
    lines = [f"name = {_value(sc.name)}"]
    if sc.description:
        lines.append(f"description = {_value(sc.description)}")
    if sc.tags:
        lines.append(f"tags = {_value(sc.tags)}")
    lines.append(f"seed = {sc.seed}")
    default = CalloutConfig()
    lines.append("\n[callout]")
    for key in ("pend", "delay_ms", "decision", "block", "stream", "endpoint_contexts",
                "flow_contexts", "pend_on_reauth"):
        value = getattr(sc.callout, key)
        if value != getattr(default, key):
            lines.append(f"{key} = {_value(value)}")
    for step in sc.steps:
        lines.append("\n[[steps]]")
        if step.id:
            lines.append(f"id = {_value(step.id)}")
        lines.append(f"do = {_value(step.do)}")
        if step.delay_ms:
            lines.append(f"delay_ms = {_value(step.delay_ms)}")
        if step.concurrent:
            lines.append(f"concurrent = {_value(step.concurrent)}")
        for key, value in step.params.items():
            if value is not None:
                lines.append(f"{key} = {_value(value)}")
    e = sc.expect
    lines.append("\n[expect]")
    if e.rules != frozenset(RULES):
        lines.append(f"rules = {_value(e.rules)}")
    for name, table in (("outcomes", e.outcomes), ("statuses", e.statuses), ("counts", e.counts)):
        if table:
            inner = ", ".join(f"{k} = {_value(v)}" for k, v in table.items())
            lines.append(f"{name} = {{ {inner} }}")
    if e.violations:
        lines.append(f"violations = {_value(e.violations)}")
    if e.applicable:
        lines.append(f"applicable = {_value(e.applicable)}")
    return "\n".join(lines) + "\n"
