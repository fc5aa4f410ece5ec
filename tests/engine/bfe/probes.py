"""Probes: one small scenario per BFE fault, showing the guarantee it breaks.

A probe's outcome is a tuple of what a client or the filter engine would
notice; where the broken guarantee is about state, the probe ends with a call
that makes the state visible in the trace too (an add that finds the key
taken), so the contract checker can see what the test sees.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.engine.faults import FAULTS
from harness.engine.objects import BUILTIN_SUBLAYERS
from harness.trace.events import USER_TXN_LOCK_LIMIT_S
from tests.engine.bfe.helpers import CONNECT, Env, filt, make_env, provider, sublayer

Outcome = tuple[object, ...]


def nested_txn_allowed(env: Env) -> Outcome:
    s = env.bfe.open_session()
    env.begin_now(s)
    return (env.begin_now(s), s.txn_commit())


def commit_without_txn(env: Env) -> Outcome:
    s = env.bfe.open_session()
    return (s.txn_commit(), s.txn_abort())


def early_txn_timeout(env: Env) -> Outcome:
    holder = env.bfe.open_session()
    waiter = env.bfe.open_session(txn_wait_ms=2000)
    env.begin_now(holder)
    result = waiter.txn_begin()
    env.sched.run(until_s=100.0)
    return (result.value, env.last("txn_begin")["waited_ms"])


def no_forced_abort(env: Env) -> Outcome:
    s = env.bfe.open_session()
    env.begin_now(s)
    env.sched.run(until_s=USER_TXN_LOCK_LIMIT_S + 1)
    return (len(env.events("txn_forced_abort")), s.txn_commit())


def write_in_read_only_txn(env: Env) -> Outcome:
    s = env.bfe.open_session()
    env.begin_now(s, read_only=True)
    status = s.add(filt())
    s.txn_commit()
    return (status, len(env.bfe.committed_filters(CONNECT)))


def abort_keeps_changes(env: Env) -> Outcome:
    s = env.bfe.open_session()
    env.begin_now(s)
    s.add(filt())
    s.txn_abort()
    return (len(env.bfe.committed_filters(CONNECT)), s.add(filt()))


def dynamic_objects_survive_close(env: Env) -> Outcome:
    s = env.bfe.open_session(dynamic=True)
    s.add(filt())
    s.close()
    return (len(env.bfe.committed_filters(CONNECT)), env.bfe.open_session().add(filt()))


def no_lifetime_check(env: Env) -> Outcome:
    env.bfe.open_session(dynamic=True).add(provider("dp"))
    return (env.bfe.open_session().add(filt(provider="dp")),)


def delete_in_use(env: Env) -> Outcome:
    s = env.bfe.open_session()
    s.add(sublayer())
    s.add(filt(sublayer="s"))
    return (s.delete("sublayer", "s"),)


def builtin_deletable(env: Env) -> Outcome:
    s = env.bfe.open_session()
    return (s.delete("sublayer", BUILTIN_SUBLAYERS[-1][0]),)


def duplicate_key_accepted(env: Env) -> Outcome:
    s = env.bfe.open_session()
    return (s.add(provider()), s.add(provider()))


def cross_session_delete(env: Env) -> Outcome:
    env.bfe.open_session(dynamic=True).add(filt())
    return (env.bfe.open_session(dynamic=True).delete("filter", "f"),)


def dangling_reference_accepted(env: Env) -> Outcome:
    return (env.bfe.open_session().add(filt(sublayer="nope")),)


PROBES: dict[str, Callable[[Env], Outcome]] = {
    f.__name__: f
    for f in (
        nested_txn_allowed, commit_without_txn, early_txn_timeout, no_forced_abort,
        write_in_read_only_txn, abort_keeps_changes, dynamic_objects_survive_close,
        no_lifetime_check, delete_in_use, builtin_deletable, duplicate_key_accepted,
        cross_session_delete, dangling_reference_accepted,
    )
}
BFE_FAULTS = sorted(name for name, f in FAULTS.items() if f.rules[0][:2] in ("TX", "OB"))




def outcome(probe: str, faults: frozenset[str]) -> Outcome:
    return PROBES[probe](make_env(faults))
