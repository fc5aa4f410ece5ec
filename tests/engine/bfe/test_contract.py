"""BFE traces judged by the contract checker.

A clean BFE must never break an engine rule, whatever clients do to it; each
BFE fault must trip its own rules and no other engine rule; each client
mutant must trip its client rules while the engine stays clean.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator

import pytest

from harness.callouts.client_mutants import CLIENT_MUTANTS, CORRECT_COUNTERPART
from harness.contract.catalog import RULES
from harness.contract.checker import CheckResult, check_events
from harness.engine.bfe import Bfe, Session
from harness.engine.bfe.clients import (
    Policy,
    contention,
    forced_abort_client,
    guarantee_tour,
    policy_client,
)
from harness.engine.faults import FAULTS
from harness.engine.objects import BfeObject, CalloutObject, Filter, Provider, ProviderContext
from harness.engine.objects import Sublayer as SublayerObj
from harness.trace.events import INFINITE_WAIT_MS
from tests.engine.bfe.helpers import ACCEPT, CONNECT, Env, make_env
from tests.engine.bfe.probes import BFE_FAULTS, PROBES

BFE_RULES = frozenset(r for r in RULES if r[:2] in ("TX", "OB"))
ENGINE_RULES = frozenset(r for r in BFE_RULES if RULES[r].party == "engine")
CLIENT_RULES = BFE_RULES - ENGINE_RULES


def check(env: Env, rules: frozenset[str] = BFE_RULES) -> CheckResult:
    return check_events(env.writer.events, rules)


def broken(env: Env, rules: frozenset[str] = BFE_RULES) -> set[str]:
    return set(check(env, rules).rules_broken())


def explain(result: CheckResult) -> str:
    return "\n".join(f"{v.rule} {v.message} {v.events}" for v in result.violations)


# -- clean engine, correct clients ------------------------------------------------


CLIENTS: dict[str, Callable[[Bfe], Generator[object, object, object]]] = {
    "policy_client": lambda bfe: policy_client(
        bfe, Policy(layers=(CONNECT, ACCEPT), callouts={CONNECT: "probe"})
    ),
    "contention": lambda bfe: contention(bfe),
    "contention_long_wait": lambda bfe: contention(bfe, hold_s=30.0, peer_wait_ms=60000),
    "forced_abort_client": lambda bfe: forced_abort_client(bfe),
    "kernel_forced_abort_client": lambda bfe: forced_abort_client(bfe, kernel=True),
    "guarantee_tour": lambda bfe: guarantee_tour(bfe, forced_abort=True),
}


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_correct_clients_break_no_rule(name: str) -> None:
    env = make_env()
    env.run(CLIENTS[name](env.bfe))
    result = check(env)
    assert result.violations == [], explain(result)


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_probes_on_a_clean_engine_break_no_engine_rule(probe: str) -> None:
    env = make_env()
    PROBES[probe](env)
    result = check(env, ENGINE_RULES)
    assert result.violations == [], explain(result)


# -- random clients against a clean engine -----------------------------------------

KEYS = ("a", "b", "c")
LAYERS = (CONNECT, CONNECT, ACCEPT, "NOT_A_LAYER_V4")


def maybe(rng: random.Random, p_none: float = 0.6) -> str | None:
    return None if rng.random() < p_none else rng.choice(KEYS)


def random_object(rng: random.Random) -> BfeObject:
    """An object with random references among a few keys: many adds hit some rule."""
    key = rng.choice(KEYS)
    provider = maybe(rng)
    lifetime = rng.choice(("static", "static", "static", "persistent"))
    kind = rng.choice(("provider", "context", "sublayer", "callout", "filter", "filter"))
    if kind == "provider":
        return Provider(key=key, lifetime=lifetime)  # type: ignore[arg-type]
    if kind == "context":
        return ProviderContext(key=key, provider=provider, lifetime=lifetime)  # type: ignore[arg-type]
    if kind == "sublayer":
        return SublayerObj(key=key, provider=provider, lifetime=lifetime)  # type: ignore[arg-type]
    if kind == "callout":
        return CalloutObject(
            key=key, layer=rng.choice(LAYERS), provider=provider, context=maybe(rng, 0.8),
            lifetime=lifetime,  # type: ignore[arg-type]
        )
    callout = maybe(rng, 0.7)
    return Filter(
        key=key, layer=rng.choice(LAYERS), provider=provider,
        sublayer=maybe(rng, 0.5) or "FWPM_SUBLAYER_UNIVERSAL",
        callout=callout, action="CALLOUT_TERMINATING" if callout else "BLOCK",
        context=maybe(rng, 0.8),
        lifetime=rng.choice((lifetime, "boottime")),  # type: ignore[arg-type]
    )


def random_client(bfe: Bfe, rng: random.Random) -> Generator[object, object, object]:
    """A client doing random (often wrong) things; only client rules may break."""
    yield rng.uniform(0, 20)
    session: Session = bfe.open_session(
        dynamic=rng.random() < 0.5,
        txn_wait_ms=rng.choice((0, 1, 2500, 5000, 60000, INFINITE_WAIT_MS)),
        kernel=rng.random() < 0.2,
    )
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if roll < 0.15:
            yield session.txn_begin(read_only=rng.random() < 0.2)
        elif roll < 0.25:
            session.txn_commit()
        elif roll < 0.3:
            session.txn_abort()
        elif roll < 0.55:
            obj = random_object(rng)
            yield (session.add_wait(obj) if rng.random() < 0.5 else None)
            if rng.random() < 0.5:
                session.add(obj)
        elif roll < 0.7:
            obj_type = rng.choice(("provider", "provider_context", "sublayer", "callout", "filter"))
            session.delete(obj_type, rng.choice((*KEYS, "FWPM_SUBLAYER_UNIVERSAL")))
        else:
            yield rng.choice((0.1, 0.1, 1.0, 10.0, 20.0, 4000.0))
    session.close()
    return None


@pytest.mark.parametrize("seed", range(40))
def test_random_clients_never_make_the_engine_break_a_rule(seed: int) -> None:
    env = make_env(seed=seed)
    rng = random.Random(seed)
    for _ in range(rng.randrange(2, 6)):
        env.spawn(random_client(env.bfe, random.Random(rng.random())))
    env.sched.run()
    result = check(env, ENGINE_RULES)
    assert result.violations == [], explain(result)


# -- faults and mutants ------------------------------------------------------------


@pytest.mark.parametrize("fault", BFE_FAULTS)
def test_each_fault_trips_its_rules_and_no_other_engine_rule(fault: str) -> None:
    env = make_env(frozenset({fault}))
    PROBES[fault](env)
    assert broken(env, ENGINE_RULES) == set(FAULTS[fault].rules)


@pytest.mark.parametrize("name", sorted(CLIENT_MUTANTS))
def test_each_client_mutant_trips_its_rules_and_its_counterpart_none(name: str) -> None:
    mutant = CLIENT_MUTANTS[name]
    env = make_env()
    env.run(mutant.factory(env.bfe))
    assert broken(env) == set(mutant.rules)
    assert set(mutant.rules) <= CLIENT_RULES
    correct = make_env()
    correct.run(CORRECT_COUNTERPART[name](correct.bfe))
    assert broken(correct) == set()


def test_one_seed_gives_one_trace() -> None:
    def trace(seed: int) -> list[dict[str, object]]:
        env = make_env(seed=seed)
        rng = random.Random(seed)
        for _ in range(4):
            env.spawn(random_client(env.bfe, random.Random(rng.random())))
        env.sched.run()
        return env.writer.events

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)


@pytest.mark.parametrize("fault", BFE_FAULTS)
def test_the_guarantee_tour_trips_exactly_the_faults_rules(fault: str) -> None:
    env = make_env(frozenset({fault}))
    env.run(guarantee_tour(env.bfe, forced_abort=True))
    assert broken(env) == set(FAULTS[fault].rules)


@pytest.mark.parametrize("seed", range(5))
def test_the_guarantee_tour_stays_clean_beside_other_clients(seed: int) -> None:
    env = make_env(seed=seed)
    env.spawn(guarantee_tour(env.bfe))
    env.spawn(guarantee_tour(env.bfe, prefix="again"))
    env.spawn(contention(env.bfe, hold_s=1.0, peer_delay_s=0.3))
    env.spawn(policy_client(env.bfe, Policy(name="tenant"), start_s=0.7, keep_s=2.0))
    env.sched.run()
    result = check(env)
    assert result.violations == [], explain(result)
