"""``--callout SPEC``: every callout kind is configured the same way, and a bad
spec is a one-line usage error when the run is set up."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.callouts.reference import ReferenceCallout
from harness.callouts.spec import resolve
from harness.errors import UsageError
from harness.scenario.loader import load_catalog
from harness.session import HarnessSession, SessionOptions

REPO = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(REPO / "scenarios")
USER = "tests.support.user_callouts"


def outcomes(callout: str, out: Path) -> dict[str, tuple[str, ...]]:
    session = HarnessSession(SessionOptions(callout=callout, out_dir=out))
    return {sc.name: tuple(session.run(sc).failures) for sc in CATALOG}


def test_an_unchanged_subclass_is_judged_as_the_reference(tmp_path: Path) -> None:
    reference = outcomes("reference", tmp_path / "ref")
    assert not any(reference.values())
    for spec in (f"module:{USER}:Same", f"{USER}:Same"):
        assert outcomes(spec, tmp_path / spec.replace(":", "_")) == reference


@pytest.mark.parametrize(("spec", "words"), [
    (f"module:{USER}:NOT_A_CLASS", "'NOT_A_CLASS' is a tuple, not a class"),
    (f"module:{USER}:NoFlowDelete", "it lacks flow_delete"),
    (f"module:{USER}:NeedsArguments", "must construct with no arguments"),
    (f"module:{USER}:Nope", "has no 'Nope'"),
    ("module:harness.nothing_here:X", "cannot import 'harness.nothing_here'"),
    ("module:a:b:c", "expected reference, mutant:NAME, module:pkg.mod:Class"),
    ("mutant:no_such_bug", "no_such_bug"),
])
def test_bad_specs_are_usage_errors(spec: str, words: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve(spec)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_reference_defaults_are_the_full_behaviour() -> None:
    callout, client = resolve("reference")
    assert isinstance(callout, ReferenceCallout) and client is None
    assert callout.knobs.endpoint_contexts and "connect" in callout.knobs.pend
