"""Built-in objects: what exists from the start, and agreement with the checker."""

from __future__ import annotations

from harness.engine.bfe import builtins
from harness.engine.objects import LAYERS as MODEL_LAYERS
from harness.trace import builtins as checker
from tests.engine.bfe.helpers import OK, Env, filt, provider


def test_bfe_and_the_checker_agree_on_what_is_built_in() -> None:
    assert builtins.LAYERS == checker.LAYERS
    assert {key for key, _ in builtins.SUBLAYERS} == checker.SUBLAYERS
    assert builtins.CALLOUTS == checker.CALLOUTS
    assert builtins.PROVIDERS == checker.PROVIDERS


def test_every_layer_the_model_classifies_at_is_a_bfe_layer() -> None:
    assert set(MODEL_LAYERS) <= builtins.LAYERS


def test_builtin_sublayer_weights_are_distinct() -> None:
    weights = [w for _, w in builtins.SUBLAYERS]
    assert len(set(weights)) == len(weights)


def test_builtins_exist_from_the_start_and_stay(env: Env) -> None:
    s = env.bfe.open_session()
    for obj_type, keys in (("callout", builtins.CALLOUTS), ("provider", builtins.PROVIDERS)):
        for key in sorted(keys):
            assert env.bfe.committed(obj_type, key) is not None
            assert s.delete(obj_type, key) == "FWP_E_BUILTIN_OBJECT"
    assert s.add(provider(sorted(builtins.PROVIDERS)[0])) == "FWP_E_BUILTIN_OBJECT"


def test_filters_may_sit_at_layers_the_model_never_classifies(env: Env) -> None:
    s = env.bfe.open_session()
    assert s.add(filt(layer="IPFORWARD_V4_DISCARD", provider="FWPM_PROVIDER_IKEEXT")) == OK
    assert [f.key for f in env.bfe.committed_filters("IPFORWARD_V4_DISCARD")] == ["f"]
