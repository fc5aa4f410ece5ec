"""OB: objects, lifetimes and references, judged against the BFE store model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.contract.checker import Checker
from harness.contract.tx import BfeMonitor
from harness.trace.builtins import LAYERS, SUBLAYERS, is_builtin, is_layer
from harness.trace.reader import TraceReader
from tests.support.tracebuild import Result, TraceBuilder

OK = "S_OK"
FAMILY = [f"TX00{i}" for i in range(1, 10)] + [f"OB00{i}" for i in range(1, 7)]
LAYER = "ALE_AUTH_CONNECT_V4"


class Bfe:
    """Just enough of a policy client to build OB traces."""

    def __init__(self, tmp: Path | None = None) -> None:
        self.tb = TraceBuilder(tmp)

    def open(self, sid: object, *, dynamic: bool = False) -> int:
        return self.tb.add("session_open", session=sid, dynamic=dynamic, txn_wait_ms=0,
                           kernel=False, status=OK)

    def close(self, sid: object) -> int:
        return self.tb.add("session_close", session=sid)

    def begin(self, sid: object) -> int:
        return self.tb.add("txn_begin", session=sid, read_only=False, waited_ms=0, status=OK)

    def commit(self, sid: object) -> int:
        return self.tb.add("txn_commit", session=sid, status=OK)

    def add(self, sid: object, otype: str, key: object, status: str = OK, **fields: Any) -> int:
        return self.tb.add("object_add", session=sid, type=otype, key=key, status=status,
                           **fields)

    def filter(self, sid: object, key: object, status: str = OK, **fields: Any) -> int:
        fields.setdefault("layer", LAYER)
        return self.add(sid, "filter", key, status, action="PERMIT", weight=1, **fields)

    def delete(self, sid: object, otype: str, key: object, status: str = OK) -> int:
        return self.tb.add("object_delete", session=sid, type=otype, key=key, status=status)

    def check(self) -> Result:
        return self.tb.check(FAMILY)


def clean(r: Result) -> None:
    assert r.raw.violations == [], [(v.rule, v.message, v.events) for v in r.raw.violations]


# -- OB001 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref_lifetime", "ref_session", "ref_provider", "lifetime", "provider"),
    [
        ("dynamic", "d", None, "static", None),        # static -> dynamic
        ("dynamic", "d", None, "persistent", None),    # persistent -> dynamic
        ("static", "s", None, "persistent", None),     # persistent -> static
        ("dynamic", "d", None, "dynamic", None),       # dynamic -> another session's
        ("persistent", "s", "P1", "persistent", "P2"),  # another provider's persistent
        ("persistent", "s", "P1", "persistent", None),
        ("static", "s", None, "boottime", None),       # boot-time outlives static
    ],
)
def test_ob001_reference_to_a_shorter_lived_object_succeeding_fires(
    ref_lifetime: str, ref_session: str, ref_provider: str | None, lifetime: str,
    provider: str | None,
) -> None:
    b = Bfe()
    b.open("d", dynamic=True)
    b.open("s")
    b.open("e", dynamic=True)
    extra = {"provider": ref_provider} if ref_provider else {}
    if ref_provider:
        b.add("s", "provider", ref_provider, lifetime="persistent")
    if provider:
        b.add("s", "provider", provider, lifetime="persistent")
    ref = b.add(ref_session, "sublayer", "S", lifetime=ref_lifetime, **extra)
    who = "e" if lifetime == "dynamic" else "s"
    fields = {"provider": provider} if provider else {}
    f = b.filter(who, "F", sublayer="S", lifetime=lifetime, **fields)
    r = b.check()
    assert r.fired("OB001") == [[ref, f]]


@pytest.mark.parametrize(
    ("ref_lifetime", "ref_session", "ref_provider", "lifetime", "provider"),
    [
        ("dynamic", "d", None, "dynamic", None),       # same session's dynamic
        ("static", "s", None, "dynamic", None),
        ("persistent", "s", None, "static", None),
        ("persistent", "s", "P1", "persistent", "P1"),  # same provider
        ("persistent", "s", None, "persistent", "P1"),  # unowned persistent
        ("persistent", "s", None, "boottime", None),    # undecided: not judged
    ],
)
def test_ob001_allowed_references_are_clean(
    ref_lifetime: str, ref_session: str, ref_provider: str | None, lifetime: str,
    provider: str | None,
) -> None:
    b = Bfe()
    b.open("d", dynamic=True)
    b.open("s")
    for p in {ref_provider, provider} - {None}:
        b.add("s", "provider", p, lifetime="persistent")
    extra = {"provider": ref_provider} if ref_provider else {}
    b.add(ref_session, "sublayer", "S", lifetime=ref_lifetime, **extra)
    who = "d" if lifetime == "dynamic" else "s"
    fields = {"provider": provider} if provider else {}
    b.filter(who, "F", sublayer="S", lifetime=lifetime, **fields)
    r = b.check()
    clean(r)
    assert r.applicable("OB001")


def test_ob001_lifetime_mismatch_refused_is_clean_and_wrong_one_fires() -> None:
    b = Bfe()
    b.open("d", dynamic=True)
    b.open("s")
    ref = b.add("d", "sublayer", "S")
    b.filter("s", "F", status="FWP_E_LIFETIME_MISMATCH", sublayer="S")
    ok_ref = b.add("s", "sublayer", "T")
    bad = b.filter("s", "G", status="FWP_E_LIFETIME_MISMATCH", sublayer="T")
    r = b.check()
    assert r.fired("OB001") == [[ok_ref, bad]]
    assert ref < ok_ref


def test_ob001_undecided_boottime_is_not_judged_either_way() -> None:
    b = Bfe()
    b.open("s")
    b.add("s", "sublayer", "S", lifetime="persistent")
    b.filter("s", "F", status="FWP_E_LIFETIME_MISMATCH", sublayer="S", lifetime="boottime")
    clean(b.check())


# -- OB002 ---------------------------------------------------------------------


def test_ob002_deleting_a_referenced_object_succeeding_fires() -> None:
    b = Bfe()
    b.open("s")
    b.add("s", "provider", "P")
    sub = b.add("s", "sublayer", "S", provider="P")
    d = b.delete("s", "provider", "P")
    r = b.check()
    assert r.fired("OB002") == [[sub, d]]
    assert "sublayer 'S'" in r.messages("OB002")[0]


def test_ob002_in_use_and_ordered_deletes_are_clean() -> None:
    b = Bfe()
    b.open("s")
    b.add("s", "provider", "P")
    b.add("s", "sublayer", "S", provider="P")
    b.delete("s", "provider", "P", status="FWP_E_IN_USE")
    b.begin("s")
    b.delete("s", "sublayer", "S")     # staged: the provider is free inside the txn
    b.delete("s", "provider", "P")
    b.commit("s")
    r = b.check()
    clean(r)
    assert r.applicable("OB002")


def test_ob002_reference_staged_in_the_transaction_counts() -> None:
    b = Bfe()
    b.open("s")
    b.add("s", "provider", "P")
    b.begin("s")
    sub = b.add("s", "sublayer", "S", provider="P")
    d = b.delete("s", "provider", "P")
    b.commit("s")
    r = b.check()
    assert r.fired("OB002") == [[sub, d]]


# -- OB003 ---------------------------------------------------------------------


def test_ob003_built_in_add_and_delete_succeeding_fire() -> None:
    b = Bfe()
    b.open("s")
    a = b.add("s", "sublayer", "FWPM_SUBLAYER_UNIVERSAL")
    d = b.delete("s", "sublayer", "FWPM_SUBLAYER_INSPECTION")
    lt = b.add("s", "provider", "X", lifetime="builtin")
    wrong = b.delete("s", "callout", "FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4",
                     status="FWP_E_IN_USE")
    r = b.check()
    assert r.fired("OB003") == [[a], [d], [lt], [wrong]]
    assert r.fired("OB004") == []


def test_ob003_builtin_object_status_is_clean() -> None:
    b = Bfe()
    b.open("s")
    b.add("s", "sublayer", "FWPM_SUBLAYER_UNIVERSAL", status="FWP_E_BUILTIN_OBJECT")
    b.delete("s", "provider", "FWPM_PROVIDER_IKEEXT", status="STATUS_FWP_BUILTIN_OBJECT")
    b.add("s", "sublayer", "MY_SUBLAYER")
    r = b.check()
    clean(r)
    assert r.applicable("OB003")


def test_ob003_not_applicable_without_built_in_keys() -> None:
    b = Bfe()
    b.open("s")
    b.add("s", "sublayer", "MY_SUBLAYER")
    b.filter("s", "F", sublayer="FWPM_SUBLAYER_UNIVERSAL")  # a reference, not an add
    r = b.check()
    clean(r)
    assert not r.applicable("OB003")


# -- OB004 ---------------------------------------------------------------------


def test_ob004_second_add_succeeding_fires() -> None:
    b = Bfe()
    b.open("s")
    a1 = b.add("s", "callout", "C", layer=LAYER)
    a2 = b.add("s", "callout", "C", layer=LAYER)
    b.begin("s")
    s1 = b.add("s", "provider", "P")
    s2 = b.add("s", "provider", "P")       # staged in the same transaction
    b.commit("s")
    r = b.check()
    assert r.fired("OB004") == [[a1, a2], [s1, s2]]


def test_ob004_shared_keys_across_types_and_already_exists_are_clean() -> None:
    b = Bfe()
    b.open("s")
    b.add("s", "provider", "K")
    b.add("s", "sublayer", "K")
    b.add("s", "provider_context", "K")
    b.add("s", "provider", "K", status="FWP_E_ALREADY_EXISTS")
    b.delete("s", "sublayer", "K")
    b.add("s", "sublayer", "K")
    r = b.check()
    clean(r)
    assert r.applicable("OB004")


# -- OB005 ---------------------------------------------------------------------


def test_ob005_dynamic_session_deleting_foreign_objects_fires() -> None:
    b = Bfe()
    b.open("d1", dynamic=True)
    b.open("d2", dynamic=True)
    b.open("s")
    a = b.add("d1", "provider", "P")
    st = b.add("s", "provider", "Q")
    w = b.delete("d2", "provider", "P")
    n = b.delete("d2", "provider", "Q", status="FWP_E_WRONG_SESSION")
    r = b.check()
    assert r.fired("OB005") == [[a, w], [st, n]]


def test_ob005_expected_statuses_and_own_objects_are_clean() -> None:
    b = Bfe()
    b.open("d1", dynamic=True)
    b.open("d2", dynamic=True)
    b.open("s")
    b.add("d1", "provider", "P")
    b.add("s", "provider", "Q")
    b.delete("d2", "provider", "P", status="FWP_E_WRONG_SESSION")
    b.delete("d2", "provider", "Q", status="FWP_E_DYNAMIC_SESSION_IN_PROGRESS")
    b.delete("d1", "provider", "P")
    b.delete("s", "provider", "Q")
    r = b.check()
    clean(r)
    assert r.applicable("OB005")


def test_ob005_refusal_that_is_not_owed_fires() -> None:
    b = Bfe()
    b.open("s")
    b.open("d", dynamic=True)
    a = b.add("s", "provider", "Q")
    x = b.delete("s", "provider", "Q", status="FWP_E_WRONG_SESSION")
    own = b.add("d", "provider", "P")
    y = b.delete("d", "provider", "P", status="FWP_E_WRONG_SESSION")
    r = b.check()
    assert r.fired("OB005") == [[a, x], [own, y]]


# -- OB006 ---------------------------------------------------------------------


def test_ob006_missing_references_fire() -> None:
    b = Bfe()
    b.open("s")
    c = b.filter("s", "F", callout="nope")
    lay = b.add("s", "callout", "C", layer="NOT_A_LAYER")
    wrong = b.filter("s", "G", status="FWP_E_PROVIDER_NOT_FOUND", context="nope")
    r = b.check()
    assert r.fired("OB006") == [[c], [lay], [wrong]]
    assert "provider_context 'nope'" in r.messages("OB006")[2]


def test_ob006_present_builtin_and_staged_references_are_clean() -> None:
    b = Bfe()
    b.open("s")
    b.filter("s", "F", status="FWP_E_CALLOUT_NOT_FOUND", callout="nope")
    b.filter("s", "F", status="STATUS_FWP_LAYER_NOT_FOUND", layer="NOT_A_LAYER")
    b.begin("s")
    b.add("s", "provider", "P")
    b.add("s", "callout", "C", provider="P", layer="FWPM_LAYER_ALE_AUTH_CONNECT_V4")
    b.filter("s", "F", provider="P", callout="C", sublayer="FWPM_SUBLAYER_INSPECTION",
             layer="ALE_FLOW_ESTABLISHED_V6_DISCARD")
    b.commit("s")
    r = b.check()
    clean(r)
    assert r.applicable("OB006")


def test_ob006_reference_to_an_object_added_by_another_session_is_clean() -> None:
    b = Bfe()
    b.open("a")
    b.open("b")
    b.begin("a")
    b.add("a", "sublayer", "S")
    b.commit("a")
    b.filter("b", "F", sublayer="S")
    clean(b.check())


# -- the header hook and the assumption behind OB006 ---------------------------


def test_preloaded_objects_exist_before_the_trace(tmp_path: Path) -> None:
    b = Bfe(tmp_path)
    b.open("s")
    a = b.filter("s", "F", sublayer="OLD")
    r = b.check()
    assert r.fired("OB006") == [[a]]
    path = next(tmp_path.glob("*.jsonl"))
    checker = Checker(FAMILY, str(path))
    [monitor] = [m for m in checker.monitors if isinstance(m, BfeMonitor)]
    monitor.preload([{"type": "sublayer", "key": "OLD", "lifetime": "dynamic"}])
    checker.feed_all(TraceReader(path))
    result = checker.finish()
    assert [v.rule for v in result.violations] == ["OB001"]


def test_unknown_sessions_are_not_judged_but_their_objects_count() -> None:
    b = Bfe()
    b.add("ghost", "sublayer", "S")
    b.add("ghost", "sublayer", "S")      # not judged: the session was never seen open
    b.open("s")
    b.filter("s", "F", sublayer="S")
    clean(b.check())


# -- built-in names ------------------------------------------------------------


def test_builtin_names() -> None:
    assert {"ALE_AUTH_CONNECT_V4", "ALE_ENDPOINT_CLOSURE_V6", "STREAM_V4_DISCARD",
            "INBOUND_MAC_FRAME_NATIVE", "ALE_BIND_REDIRECT_V6"} <= LAYERS
    assert "ALE_ENDPOINT_CLOSURE_V4_DISCARD" not in LAYERS
    assert is_layer("FWPM_LAYER_STREAM_V6") and not is_layer("STREAM")
    assert {"FWPM_SUBLAYER_UNIVERSAL", "FWPM_SUBLAYER_INSPECTION"} <= SUBLAYERS
    assert is_builtin("sublayer", "FWPM_SUBLAYER_UNIVERSAL")
    assert not is_builtin("filter", "FWPM_SUBLAYER_UNIVERSAL")


def test_header_objects_exist_before_the_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A header's ``objects`` list tells the checker what existed before the trace."""
    import json

    from harness.contract.checker import check_file

    lines = [
        {"ev": "trace", "format": 1,
         "objects": [{"type": "sublayer", "key": "acme.sublayer", "lifetime": "persistent"}]},
        {"seq": 1, "t": 0, "ev": "session_open", "session": 1, "dynamic": False,
         "txn_wait_ms": 0, "kernel": False, "status": "STATUS_SUCCESS"},
        {"seq": 2, "t": 0, "ev": "object_add", "session": 1, "type": "filter", "key": "f",
         "lifetime": "static", "layer": "ALE_AUTH_CONNECT_V4", "sublayer": "acme.sublayer",
         "status": "STATUS_SUCCESS"},
    ]
    with_header = tmp_path / "with.jsonl"
    with_header.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    without = tmp_path / "without.jsonl"
    without.write_text("\n".join(json.dumps(x) for x in lines[1:]) + "\n")
    assert "OB006" not in {v.rule for v in check_file(with_header).violations}
    assert "OB006" in {v.rule for v in check_file(without).violations}
