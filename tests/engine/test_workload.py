"""The built-in workload against the contract checker: clean, mutants, faults, determinism."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from harness.callouts.mutants import CLIENT_MUTANTS, DRIVER_MUTANTS, MUTANTS
from harness.callouts.reference import ReferenceCallout
from harness.callouts.spec import load_callout
from harness.contract.catalog import FAMILIES
from harness.contract.checker import CheckResult, check_events
from harness.engine.faults import FAULTS
from harness.engine.workload import describe_faults, run_workload, simulate
from harness.errors import UsageError


def checked(**kw: object) -> CheckResult:
    _, engine = run_workload(**kw)  # type: ignore[arg-type]
    return check_events(engine.events)


def broken(result: CheckResult) -> set[str]:
    return {v.rule for v in result.violations}


def trace_bytes(seed: int, **kw: object) -> bytes:
    out = io.BytesIO()
    run_workload(seed=seed, events=3000, out=out, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def test_same_seed_gives_the_same_bytes() -> None:
    assert trace_bytes(11) == trace_bytes(11)
    assert trace_bytes(11) != trace_bytes(12)


def test_same_seed_same_bytes_across_interpreters() -> None:
    code = (
        "import io, hashlib, sys; from harness.engine.workload import run_workload; "
        "o = io.BytesIO(); run_workload(seed=4, events=3000, out=o); "
        "sys.stdout.write(hashlib.sha256(o.getvalue()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(digests) == 1


@pytest.mark.parametrize("seed", range(1, 51))
def test_reference_callout_breaks_no_rule(seed: int) -> None:
    result = checked(seed=seed, events=4000)
    assert result.errors == [], [v.as_json() for v in result.errors[:3]]


def test_every_rule_family_is_exercised_and_events_scale() -> None:
    small, _ = run_workload(seed=3, events=2000)
    result = checked(seed=3, events=20000)
    families = {rule[:2] for rule in result.selected if rule not in result.not_applicable}
    assert families == set(FAMILIES)
    assert result.events >= 20000 > small.events * 5


@pytest.mark.parametrize("seed", [2, 7])
@pytest.mark.parametrize("name", sorted(DRIVER_MUTANTS) + sorted(CLIENT_MUTANTS))
def test_each_mutant_trips_its_rules(name: str, seed: int) -> None:
    result = checked(seed=seed, events=5000, callout=f"mutant:{name}")
    assert set(MUTANTS[name].rules) <= broken(result)


@pytest.mark.parametrize("seed", [2, 7])
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_engine_fault_trips_its_rules(name: str, seed: int) -> None:
    result = checked(seed=seed, events=5000, faults=[name])
    assert set(FAULTS[name].rules) <= broken(result)


def test_driver_mutants_cover_every_driver_rule() -> None:
    wanted = {
        "PC001", "PC002", "PC003", "PC005", "PC007", "PC009", "PC010", "PC011", "PC012",
        "PC013", "PK001", "PK002", "PI001", "PI002", "PI003", "PI004", "ST001", "ST002",
        "EP007", "EP008", "EP009", "FC002", "FC004", "RA002",
    }
    covered = {rule for m in DRIVER_MUTANTS.values() for rule in m.rules}
    assert wanted <= covered


def test_callout_specs() -> None:
    assert isinstance(load_callout("reference"), ReferenceCallout)
    assert load_callout("mutant:leaks_clone").name == "mutant_leaks_clone"
    assert isinstance(load_callout("harness.callouts.reference:ReferenceCallout"),
                      ReferenceCallout)
    for bad in ("nonsense", "mutant:nope", "harness.nothing_here:X",
                "harness.callouts.reference:Nope", "mutant:txn_left_open"):
        with pytest.raises(UsageError):
            load_callout(bad)


def test_simulate_writes_a_trace_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness.contract.checker import check_file

    path = tmp_path / "trace.jsonl"
    result = simulate(str(path), seed=5, events=3000)
    checked_file = check_file(path)
    assert checked_file.events == result.events
    assert checked_file.errors == []
    assert checked_file.header is not None and checked_file.header["seed"] == 5


def test_fault_and_mutant_listings_are_data() -> None:
    from harness.callouts.mutants import describe_mutants

    faults = describe_faults()
    assert {f["name"] for f in faults} == set(FAULTS)
    assert all(f["callout"] == "reference" or str(f["callout"]).startswith("mutant:")
               for f in faults)
    listed = describe_mutants()
    mutants = [m for m in listed if m["kind"] != "c"]  # the probe's C mutants: tests/csim
    assert {m["name"] for m in mutants} == set(MUTANTS)
    assert {m["kind"] for m in mutants} == {"driver", "client"}
