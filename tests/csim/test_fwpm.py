"""The Fwpm calls a C driver makes from DriverEntry, on the model's BFE as a kernel session.

The ``policy`` test driver adds a provider, a sublayer, its FWPM callout and a
callout filter in one transaction, adds and deletes a filter by id, and checks
the statuses of a duplicate key, a filter naming an unknown callout and an
aborted transaction itself: DriverEntry fails with 0xE00000NN for step NN.
"""

from __future__ import annotations

import ctypes as C
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from harness.callouts.settings import CalloutSettings
from harness.contract.checker import check_file
from harness.csim import bfe, load_c_callout
from harness.engine.endpoints import Endpoint
from harness.engine.model import Engine
from harness.engine.objects import Condition
from harness.errors import TargetError
from harness.scenario.model import CalloutConfig
from tests.csim.conftest import DRIVERS

SPEC = f"c:{DRIVERS / 'policy'}"
PROVIDER = "{A0000001-0001-0001-0102-030405060708}"
SUBLAYER = "{A0000002-0001-0001-0102-030405060708}"
FILTER = "{A0000004-0001-0001-0102-030405060708}"
DOOMED = "{A0000005-0001-0001-0102-030405060708}"
ORPHAN = "{A0000006-0001-0001-0102-030405060708}"
CALLOUT = "policy.ALE_AUTH_CONNECT_V4"
BFE_EVENTS = ("session_open", "session_close", "txn_begin", "txn_commit", "txn_abort",
              "object_add", "object_delete")


def _bfe_events(engine: Engine) -> list[tuple[Any, ...]]:
    out = []
    for ev in engine.events:
        if ev["ev"] in BFE_EVENTS:
            out.append((ev["ev"], ev.get("type"), ev.get("key"), ev.get("status")))
    return out


def test_driver_entry_policy_reaches_the_bfe_as_a_kernel_session() -> None:
    engine = Engine(seed=1, callouts=[load_c_callout(SPEC)])
    opened = engine.events[0]
    assert (opened["ev"], opened["kernel"], opened["dynamic"]) == ("session_open", True, True)
    ok = "STATUS_SUCCESS"
    assert _bfe_events(engine) == [
        ("session_open", None, None, ok),
        ("txn_begin", None, None, ok),
        ("object_add", "provider", PROVIDER, ok),
        ("object_add", "sublayer", SUBLAYER, ok),
        ("object_add", "callout", CALLOUT, ok),
        ("object_add", "filter", FILTER, ok),
        ("txn_commit", None, None, ok),
        ("object_add", "filter", DOOMED, ok),
        ("object_delete", "filter", DOOMED, ok),
        ("txn_begin", None, None, ok),
        ("object_add", "provider", PROVIDER, "FWP_E_ALREADY_EXISTS"),
        ("object_add", "filter", ORPHAN, "FWP_E_CALLOUT_NOT_FOUND"),
        ("object_add", "filter", ORPHAN, ok),
        ("txn_begin", None, None, "FWP_E_TXN_IN_PROGRESS"),
        ("txn_abort", None, None, ok),
        ("txn_commit", None, None, "FWP_E_NO_TXN_IN_PROGRESS"),
        ("object_delete", "filter", ORPHAN, "FWP_E_FILTER_NOT_FOUND"),
    ]
    # the committed state: the aborted filter never took effect, the deleted one is gone
    (flt,) = engine.bfe.committed_filters("ALE_AUTH_CONNECT_V4")
    assert (flt.key, flt.callout, flt.sublayer, flt.action, flt.weight, flt.lifetime) == (
        FILTER, CALLOUT, SUBLAYER, "CALLOUT_TERMINATING", 3, "dynamic")
    assert flt.conditions == (Condition("protocol", "tcp"),
                              Condition("remote_port", (8000, 8099), "range"))
    assert engine.bfe.sublayer_weight(SUBLAYER) == 0x0900
    assert engine.bfe.committed("provider", PROVIDER) is not None


def _connect(engine: Engine, remote: str) -> Generator[object, object, object]:
    ep = yield engine.tcp_connect(remote)
    return ep


def test_the_drivers_filter_routes_matching_connects_to_its_classify() -> None:
    engine = Engine(seed=1, callouts=[load_c_callout(SPEC)])
    blocked = engine.spawn(_connect(engine, "10.0.1.5:8080"))
    passed = engine.spawn(_connect(engine, "10.0.1.5:9000"))
    engine.run()
    assert blocked.value is None and passed.value is not None
    classified = [ev for ev in engine.events if ev["ev"] == "classify"
                  and ev.get("callout") == CALLOUT]
    assert len(classified) == 1 and classified[0]["remote"] == "10.0.1.5:8080"


def test_closing_the_engine_handle_at_unload_drops_the_dynamic_policy() -> None:
    driver = load_c_callout(SPEC)
    engine = Engine(seed=1, callouts=[driver])
    assert engine.unregister(driver) == "STATUS_SUCCESS"
    driver.unloaded()
    assert [ev["session"] for ev in engine.events if ev["ev"] == "session_close"] == [1]
    assert engine.bfe.committed_filters("ALE_AUTH_CONNECT_V4") == []
    assert engine.bfe.committed("provider", PROVIDER) is None


def _connect_and_close(engine: Engine, remote: str) -> Generator[object, object, object]:
    ep = yield engine.tcp_connect(remote)
    if isinstance(ep, Endpoint):
        yield 0.2
        yield engine.close(ep)
    return ep


def test_the_trace_of_a_driver_adding_policy_passes_the_checker(tmp_path: Path) -> None:
    path = tmp_path / "policy.jsonl"
    with path.open("wb") as out:
        driver = load_c_callout(SPEC)
        engine = Engine(seed=3, callouts=[driver], out=out)
        engine.spawn(_connect_and_close(engine, "10.0.1.5:9000"))
        engine.run()
        engine.unregister(driver)
        driver.unloaded()
        engine.writer.end()
    result = check_file(path)
    assert result.errors == [], result.errors


def test_the_probes_guest_policy_path_runs_on_the_model_too() -> None:
    """In a guest the probe adds its own policy (PROBE_FLAG_ADD_POLICY); the catalog keeps
    the installer on the model so that the trace stays the Python reference's."""
    probe = load_c_callout("c:drivers/probe")
    probe.add_policy = True
    engine = Engine(seed=1, callouts=[probe])
    probe.configure(CalloutSettings(CalloutConfig()))
    added = [ev for ev in engine.events if ev["ev"] == "object_add"]
    assert {ev["status"] for ev in added} == {"STATUS_SUCCESS"}
    kinds = [ev["type"] for ev in added]
    layers = len(probe.layers)
    assert kinds.count("provider") == kinds.count("sublayer") == 1
    assert kinds.count("callout") == kinds.count("filter") == layers
    for layer in probe.layers:
        (flt,) = engine.bfe.committed_filters(layer)
        assert flt.callout == f"probe.{layer}" and flt.lifetime == "dynamic"
    assert engine.unregister(probe) == "STATUS_SUCCESS"
    probe.unloaded()
    assert all(engine.bfe.committed_filters(layer) == [] for layer in probe.layers)


def test_a_condition_the_model_cannot_match_fails_driver_entry_naming_it() -> None:
    with pytest.raises(TargetError) as info:
        Engine(seed=1, callouts=[load_c_callout(f"c:{DRIVERS / 'badpolicy'}")])
    message = str(info.value)
    assert "DriverEntry failed with STATUS_NOT_SUPPORTED" in message
    assert "condition field {D78E1E87-8644-4EA5-9437-D809ECEFC971}" in message


def _row(field: str, match: int, type_: int, **value: Any) -> bfe.FWPM_FILTER_CONDITION:
    row = bfe.FWPM_FILTER_CONDITION()
    text = next(k for k, v in bfe.CONDITION_FIELDS.items() if v == field).strip("{}")
    d1, d2, d3, d4a, d4b = text.split("-")
    row.fieldKey.Data1, row.fieldKey.Data2, row.fieldKey.Data3 = (
        int(d1, 16), int(d2, 16), int(d3, 16))
    row.fieldKey.Data4[:] = bytes.fromhex(d4a + d4b)
    row.matchType = match
    row.value.type = type_
    for name, v in value.items():
        setattr(row.value.v, name, v)
    return row


def test_conditions_translate_to_the_models_fields() -> None:
    v4 = (C.c_uint32 * 2)(0x0A000100, 0xFFFFFF00)  # 10.0.1.0/24, host order
    v6 = (C.c_uint8 * 17)(*bytes.fromhex("fd000000000000000000000000000000"), 16)
    low_high = (bfe.FWP_VALUE * 2)()
    low_high[0].type = low_high[1].type = bfe.FWP_UINT16
    low_high[0].v.uint16, low_high[1].v.uint16 = 1000, 2000
    cases = [
        (_row("protocol", bfe.MATCH_NOT_EQUAL, bfe.FWP_UINT8, uint8=17),
         Condition("protocol", "udp", "ne")),
        (_row("direction", bfe.MATCH_EQUAL, bfe.FWP_UINT32, uint32=1),
         Condition("direction", "in")),
        (_row("local_port", bfe.MATCH_LESS_OR_EQUAL, bfe.FWP_UINT16, uint16=1023),
         Condition("local_port", (0, 1023), "range")),
        (_row("local_port", bfe.MATCH_RANGE, bfe.FWP_RANGE_TYPE,
              pointer=C.addressof(low_high)), Condition("local_port", (1000, 2000), "range")),
        (_row("remote_address", bfe.MATCH_EQUAL, bfe.FWP_UINT32, uint32=0x0A000105),
         Condition("remote_address", "10.0.1.5")),
        (_row("remote_address", bfe.MATCH_EQUAL, bfe.FWP_V4_ADDR_MASK, pointer=C.addressof(v4)),
         Condition("remote_address", "10.0.1.0/24", "prefix")),
        (_row("local_address", bfe.MATCH_PREFIX, bfe.FWP_V6_ADDR_MASK, pointer=C.addressof(v6)),
         Condition("local_address", "fd00::/16", "prefix")),
    ]
    for row, expected in cases:
        assert bfe.condition_of(row) == expected
    with pytest.raises(bfe.Unsupported, match="FWP_DATA_TYPE 2"):
        bfe.condition_of(_row("protocol", bfe.MATCH_EQUAL, bfe.FWP_UINT16, uint16=6))
    with pytest.raises(bfe.Unsupported, match="FWP_MATCH_TYPE 1"):
        bfe.condition_of(_row("direction", bfe.MATCH_GREATER, bfe.FWP_UINT32, uint32=0))
