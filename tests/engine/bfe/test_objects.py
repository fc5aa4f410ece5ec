"""Objects: lifetimes, references, built-ins, keys, session ownership (OB001-OB006)."""

from __future__ import annotations

import pytest

from harness.engine.objects import BUILTIN_SUBLAYERS, ProviderContext
from harness.errors import EngineError
from tests.engine.bfe.helpers import (
    ACCEPT,
    CONNECT,
    OK,
    Env,
    add_ok,
    callout,
    filt,
    provider,
    sublayer,
)

BUILTIN = BUILTIN_SUBLAYERS[0][0]


# -- OB001 lifetimes ---------------------------------------------------------------


def test_static_and_persistent_cannot_refer_to_dynamic(env: Env) -> None:
    dyn = env.bfe.open_session(dynamic=True)
    add_ok(dyn, provider("dp"))
    s = env.bfe.open_session()
    assert s.add(sublayer(provider="dp")) == "FWP_E_LIFETIME_MISMATCH"
    assert s.add(filt(provider="dp", lifetime="persistent")) == "FWP_E_LIFETIME_MISMATCH"
    assert env.bfe.committed("sublayer", "s") is None


def test_persistent_cannot_refer_to_static(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, provider("sp"), sublayer("ss"))
    assert s.add(sublayer("ps", provider="sp", lifetime="persistent")) == (
        "FWP_E_LIFETIME_MISMATCH"
    )
    assert s.add(filt(sublayer="ss", lifetime="persistent")) == "FWP_E_LIFETIME_MISMATCH"


def test_dynamic_may_refer_only_to_its_own_sessions_dynamic(env: Env) -> None:
    one = env.bfe.open_session(dynamic=True)
    two = env.bfe.open_session(dynamic=True)
    add_ok(one, provider("dp"))
    assert two.add(filt(provider="dp")) == "FWP_E_LIFETIME_MISMATCH"
    assert one.add(filt(provider="dp")) == OK


def test_persistent_cannot_refer_to_another_providers_persistent(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(
        s,
        provider("p1", lifetime="persistent"),
        provider("p2", lifetime="persistent"),
        sublayer("s1", provider="p1", lifetime="persistent"),
    )
    assert s.add(filt("f2", provider="p2", sublayer="s1", lifetime="persistent")) == (
        "FWP_E_LIFETIME_MISMATCH"
    )
    # Unowned persistent policy leaning on owned policy counts as another provider's.
    assert s.add(filt("f0", sublayer="s1", lifetime="persistent")) == "FWP_E_LIFETIME_MISMATCH"
    assert s.add(filt("f1", provider="p1", sublayer="s1", lifetime="persistent")) == OK


def test_longer_lived_targets_are_fine(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, provider("pp", lifetime="persistent"), sublayer("ss", provider="pp"))
    dyn = env.bfe.open_session(dynamic=True)
    add_ok(dyn, filt("df", sublayer="ss", provider="pp"))  # dynamic -> static, persistent
    add_ok(s, filt("sf", sublayer="ss"))  # static -> static
    add_ok(s, filt("pf", sublayer=BUILTIN, lifetime="persistent"))  # -> built-in
    add_ok(s, filt("bf", sublayer=BUILTIN, lifetime="boottime"))


# -- OB002 in use -------------------------------------------------------------------


def test_referenced_objects_cannot_be_deleted(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(
        s,
        provider(),
        ProviderContext(key="ctx", provider="p"),
        sublayer(provider="p"),
        callout(provider="p", context="ctx"),
        filt(provider="p", sublayer="s", callout="c", action="CALLOUT_TERMINATING"),
    )
    for obj_type, key in [
        ("provider", "p"), ("provider_context", "ctx"), ("sublayer", "s"), ("callout", "c"),
    ]:
        assert s.delete(obj_type, key) == "FWP_E_IN_USE", obj_type
    for obj_type, key in [
        ("filter", "f"), ("callout", "c"), ("provider_context", "ctx"), ("sublayer", "s"),
        ("provider", "p"),
    ]:
        assert s.delete(obj_type, key) == OK, obj_type


def test_references_staged_in_the_transaction_count(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, sublayer())
    assert env.begin_now(s) == OK
    add_ok(s, filt())
    assert s.add(filt("g", sublayer="s")) == OK
    assert s.delete("sublayer", "s") == "FWP_E_IN_USE"
    assert s.delete("filter", "g") == OK
    assert s.delete("sublayer", "s") == OK


# -- OB003 built-ins ------------------------------------------------------------------


def test_builtin_objects_cannot_be_added_or_deleted(env: Env) -> None:
    s = env.bfe.open_session()
    for key, weight in BUILTIN_SUBLAYERS:
        assert env.bfe.sublayer_weight(key) == weight
        assert s.delete("sublayer", key) == "FWP_E_BUILTIN_OBJECT"
        assert s.add(sublayer(key)) == "FWP_E_BUILTIN_OBJECT"
    assert s.add(provider(lifetime="builtin")) == "FWP_E_BUILTIN_OBJECT"
    # Keys are per type: no filter is called like a built-in sublayer.
    assert s.delete("filter", BUILTIN) == "FWP_E_FILTER_NOT_FOUND"


# -- OB004 keys ---------------------------------------------------------------------------


def test_a_key_is_unique_per_type(env: Env) -> None:
    s = env.bfe.open_session()
    add_ok(s, provider("k"), filt("k"), sublayer("k"))
    assert s.add(provider("k")) == "FWP_E_ALREADY_EXISTS"
    assert s.add(filt("k", layer=ACCEPT)) == "FWP_E_ALREADY_EXISTS"
    assert env.begin_now(s) == OK
    add_ok(s, provider("new"))
    assert s.add(provider("new")) == "FWP_E_ALREADY_EXISTS"
    assert s.txn_commit() == OK
    assert [f.layer for f in env.bfe.committed_filters(CONNECT)] == [CONNECT]


# -- OB005 sessions ------------------------------------------------------------------


def test_dynamic_sessions_delete_only_their_own_objects(env: Env) -> None:
    one = env.bfe.open_session(dynamic=True)
    two = env.bfe.open_session(dynamic=True)
    static = env.bfe.open_session()
    add_ok(one, filt("mine"))
    add_ok(static, filt("shared"))
    assert two.delete("filter", "mine") == "FWP_E_WRONG_SESSION"
    assert two.delete("filter", "shared") == "FWP_E_DYNAMIC_SESSION_IN_PROGRESS"
    assert one.delete("filter", "shared") == "FWP_E_DYNAMIC_SESSION_IN_PROGRESS"
    add_ok(two, filt("theirs"))
    assert one.delete("filter", "mine") == OK
    assert static.delete("filter", "theirs") == OK  # the rule binds dynamic callers only
    assert static.delete("filter", "shared") == OK


# -- OB006 missing references ----------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        (filt(provider="nope"), "FWP_E_PROVIDER_NOT_FOUND"),
        (filt(layer="NO_SUCH_LAYER_V4"), "FWP_E_LAYER_NOT_FOUND"),
        (callout(layer="NO_SUCH_LAYER_V4"), "FWP_E_LAYER_NOT_FOUND"),
        (filt(sublayer="nope"), "FWP_E_SUBLAYER_NOT_FOUND"),
        (filt(callout="nope", action="CALLOUT_INSPECTION"), "FWP_E_CALLOUT_NOT_FOUND"),
        (filt(action="CALLOUT_TERMINATING"), "FWP_E_CALLOUT_NOT_FOUND"),
        (filt(context="nope"), "FWP_E_PROVIDER_CONTEXT_NOT_FOUND"),
        (callout(context="nope"), "FWP_E_PROVIDER_CONTEXT_NOT_FOUND"),
        (sublayer(provider="nope"), "FWP_E_PROVIDER_NOT_FOUND"),
        (ProviderContext(key="x", provider="nope"), "FWP_E_PROVIDER_NOT_FOUND"),
    ],
)
def test_missing_references_are_not_found(env: Env, obj: object, status: str) -> None:
    s = env.bfe.open_session()
    assert s.add(obj) == status  # type: ignore[arg-type]
    assert env.last("object_add")["status"] == status


@pytest.mark.parametrize(
    ("obj_type", "status"),
    [
        ("provider", "FWP_E_PROVIDER_NOT_FOUND"),
        ("provider_context", "FWP_E_PROVIDER_CONTEXT_NOT_FOUND"),
        ("sublayer", "FWP_E_SUBLAYER_NOT_FOUND"),
        ("callout", "FWP_E_CALLOUT_NOT_FOUND"),
        ("filter", "FWP_E_FILTER_NOT_FOUND"),
    ],
)
def test_deleting_a_missing_object(env: Env, obj_type: str, status: str) -> None:
    assert env.bfe.open_session().delete(obj_type, "nope") == status


# -- events and stamping -------------------------------------------------------------


def test_object_add_event_carries_the_object(env: Env) -> None:
    s = env.bfe.open_session(dynamic=True)
    add_ok(s, provider(), ProviderContext(key="ctx"), sublayer(), callout())
    f = filt(
        provider="p", sublayer="s", callout="c", context="ctx",
        action="CALLOUT_TERMINATING", weight=7, lifetime="persistent",
    )
    add_ok(s, f)
    ev = env.last("object_add")
    assert ev["session"] == s.handle and ev["status"] == OK
    assert (ev["type"], ev["key"], ev["lifetime"]) == ("filter", "f", "dynamic")
    assert (ev["provider"], ev["layer"], ev["sublayer"]) == ("p", CONNECT, "s")
    assert (ev["callout"], ev["context"], ev["action"], ev["weight"]) == (
        "c", "ctx", "CALLOUT_TERMINATING", 7,
    )
    plain = env.events("object_add", type="provider")[0]
    assert not {"provider", "layer", "sublayer", "callout", "context", "action", "weight"} & set(
        plain
    )


def test_bfe_assigns_filter_ids_and_owners(env: Env) -> None:
    dyn = env.bfe.open_session(dynamic=True)
    add_ok(dyn, filt("a"), filt("b", filter_id=99))
    stored = env.bfe.committed_filters(CONNECT)
    assert len({f.filter_id for f in stored}) == 2 and 0 not in {f.filter_id for f in stored}
    assert all(f.lifetime == "dynamic" and f.session == dyn.handle for f in stored)
    static = env.bfe.open_session()
    add_ok(static, filt("c"))
    c = env.bfe.committed("filter", "c")
    assert c is not None and c.lifetime == "static" and c.session is None


def test_impossible_lifetimes_are_usage_errors(env: Env) -> None:
    s = env.bfe.open_session()
    with pytest.raises(EngineError, match="dynamic"):
        s.add(filt(lifetime="dynamic"))
    with pytest.raises(EngineError, match="boot-time"):
        s.add(provider(lifetime="boottime"))
    with pytest.raises(EngineError, match="object type"):
        s.delete("layer", CONNECT)
