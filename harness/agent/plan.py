"""Compile a scenario into the step plan the agent executes (JSON, version 1).

::

    {"plan": 1, "scenario": NAME, "seed": N,
     "probe": {"config": {PROBE_CONFIG fields}} | null,
     "groups": [{"concurrent": NAME | null,
                 "steps": [{"name": ID, "do": KIND, "delay_ms": MS, "args": {...}}]}]}

Groups run in order; the steps of a group with a ``concurrent`` name start
together on their own threads. Everything the agent needs is resolved here,
so its C carries no tables: references are the names of earlier steps, layer
and object keys are GUIDs (:mod:`harness.agent.wfp_ids`), a filter's action
is its FWP_ACTION_TYPE value, a callout action names the driver's callout key
at that layer (from the driver manifest), wait times are milliseconds. The
``probe`` block carries the scenario's ``[callout]`` knobs in the field names
of PROBE_CONFIG (drivers/probe/probe_ioctl.h); the agent sends it with
IOCTL_PROBE_CONFIGURE before the first step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.agent.wfp_ids import ACTIONS, layer_guid, object_guid
from harness.csim.config import fields as probe_fields
from harness.errors import ScenarioError
from harness.scenario.model import Scenario, Step

PLAN_VERSION = 1
INFINITE_MS = 0xFFFFFFFF
MAX_GROUP = 64  # the agent waits on a group's threads with WaitForMultipleObjects
MAX_STEPS = 1023
_PROTOCOLS = {"tcp": 6, "udp": 17}


def _layer_name(layer: str, family: str) -> str:
    """A scenario layer (``ALE_AUTH_CONNECT``) with its IP version (``..._V4``)."""
    if layer.endswith(("_V4", "_V6")):
        return layer
    return f"{layer}_{'V6' if family == 'v6' else 'V4'}"


def _wait_ms(value: object) -> int:
    if value == "infinite":
        return INFINITE_MS
    if value in ("default", None):
        return 0
    assert isinstance(value, (int, float))
    return int(value)


class _Compiler:
    def __init__(self, scenario: Scenario, callouts: dict[str, str]) -> None:
        self.scenario = scenario
        self.callouts = callouts  # layer name -> callout key (the driver's)

    def error(self, step: Step, key: str, expected: str, found: str) -> ScenarioError:
        return ScenarioError(str(self.scenario.path), line=step.line,
                             key=f"steps[{step.index}].{key}", expected=expected, found=found)

    def args(self, step: Step) -> dict[str, Any]:
        p = step.params
        kind = step.do
        if kind in ("tcp_listen", "tcp_connect", "tcp_accept", "udp_send", "udp_receive",
                    "send", "close", "wait", "callout_register", "callout_unregister",
                    "txn_begin", "txn_commit", "txn_abort", "session_close"):
            return {k: v for k, v in p.items() if v is not None}
        if kind == "session_open":
            return {"dynamic": bool(p.get("dynamic")), "kernel": bool(p.get("kernel")),
                    "txn_wait_ms": _wait_ms(p.get("wait_ms"))}
        if kind == "add_filter":
            return self.filter_args(step, str(p["layer"]), str(p.get("family") or "v4"),
                                    str(p.get("action") or "block"))
        if kind == "delete_filter":
            ref = str(p["filter"])
            out: dict[str, Any] = {"filter": ref, "key": ref}
            if p.get("session"):
                out["session"] = p["session"]
            return out
        if kind == "object_add":
            return self.object_args(step)
        if kind == "object_delete":
            out = {"type": p["type"], "key": p["key"], "key_guid": object_guid(str(p["key"]))}
            if p.get("session"):
                out["session"] = p["session"]
            return out
        raise self.error(step, "do", "a step kind the agent runs", repr(kind))

    def filter_args(self, step: Step, layer: str, family: str, action: str) -> dict[str, Any]:
        p = step.params
        layer_name = _layer_name(layer, family)
        name, value = ACTIONS[action]
        out: dict[str, Any] = {
            "key": step.name, "key_guid": object_guid(f"{self.scenario.name}/{step.name}"),
            "layer": layer_name, "layer_guid": layer_guid(layer_name), "action": name,
            "action_type": value, "weight": p.get("weight"), "hard": bool(p.get("hard")),
        }
        if action.startswith("callout_"):
            key = self.callouts.get(layer_name)
            if key is None:
                raise self.error(step, "action", f"a layer where the driver has a callout "
                                 f"({', '.join(sorted(self.callouts)) or 'none: no manifest'})",
                                 f"{action} at {layer_name}")
            out["callout"] = key
            out["callout_guid"] = key
        if p.get("remote_port") is not None:
            out["remote_port"] = p["remote_port"]
        if p.get("protocol"):
            out["protocol"] = p["protocol"]
            out["protocol_number"] = _PROTOCOLS[str(p["protocol"])]
        if p.get("session"):
            out["session"] = p["session"]
        return {k: v for k, v in out.items() if v is not None}

    def object_args(self, step: Step) -> dict[str, Any]:
        p = step.params
        kind = str(p["type"])
        out: dict[str, Any] = {"type": kind, "key": p["key"],
                               "key_guid": object_guid(str(p["key"])),
                               "lifetime": p.get("lifetime") or "static"}
        for ref in ("provider", "sublayer", "callout", "context"):
            if p.get(ref):
                out[ref] = p[ref]
                out[f"{ref}_guid"] = object_guid(str(p[ref]))
        if p.get("layer"):
            out["layer"] = str(p["layer"])
            out["layer_guid"] = layer_guid(str(p["layer"]))
        if p.get("weight") is not None:
            out["weight"] = p["weight"]
        if kind == "filter":
            action = "callout_terminating" if p.get("callout") else "permit"
            out["action"], out["action_type"] = ACTIONS[action]
        if p.get("session"):
            out["session"] = p["session"]
        return out


def probe_config(scenario: Scenario) -> dict[str, Any]:
    """The scenario's ``[callout]`` knobs as PROBE_CONFIG fields (the probe adds its own
    policy in the guest). The blocked steps' remote endpoints are loopback peers whose
    ports the agent picks at run time; the probe blocks by decision until they are
    resolvable, so ``blocked`` and ``editPorts`` stay empty here."""
    return probe_fields(scenario.callout, add_policy=True)


def compile_plan(scenario: Scenario, *, seed: int, callouts: dict[str, str] | None = None,
                 probe: bool = True) -> dict[str, Any]:
    """The plan of ``scenario``; ``callouts`` maps layer names to the driver's callout keys."""
    compiler = _Compiler(scenario, callouts or {})
    groups = []
    count = 0
    for group in scenario.groups():
        if len(group) > MAX_GROUP:
            raise compiler.error(group[0], "concurrent", f"at most {MAX_GROUP} steps in one "
                                 "concurrent group", f"{len(group)}")
        steps = []
        for step in group:
            count += 1
            if count > MAX_STEPS:
                raise compiler.error(step, "do", f"at most {MAX_STEPS} steps", f"{count}")
            steps.append({"name": step.name, "do": step.do, "delay_ms": step.delay_ms,
                          "args": compiler.args(step)})
        groups.append({"concurrent": group[0].concurrent if len(group) > 1 or
                       group[0].concurrent else None, "steps": steps})
    return {"plan": PLAN_VERSION, "scenario": scenario.name, "seed": seed,
            "probe": {"config": probe_config(scenario)} if probe else None,
            "groups": groups}


def write_plan(plan: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1) + "\n", encoding="utf-8")
    return path
