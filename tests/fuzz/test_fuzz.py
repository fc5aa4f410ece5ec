"""Fuzz every file kind the harness reads: exit 0, 1 or 2, one-line errors, no traceback.

Each kind starts from a valid file (``tests/fuzz/corpus.py``; the issue's bad
inputs are the other seeds, in ``test_issue_inputs.py``) and hypothesis draws
the seed of a mutation (``tests/fuzz/mutate.py``). The number of inputs per
kind is ``HARNESS_FUZZ_EXAMPLES`` (default 60, which keeps the whole module
to a few seconds per kind); ``python -m tests.fuzz.measure`` tries many more
in child processes and reports their memory.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.errors import HarnessError
from tests.fuzz.corpus import CLI_KINDS, KINDS, argv_for, issue_seeds, load, seed_file
from tests.fuzz.mutate import mutate

EXAMPLES = int(os.environ.get("HARNESS_FUZZ_EXAMPLES", "60"))
MAX_LINE = 1000


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@contextlib.contextmanager
def _restored(path: Path) -> Iterator[bytes]:
    original = path.read_bytes()
    try:
        yield original
    finally:
        path.write_bytes(original)


def _one_line(message: str, path: Path) -> None:
    assert "\n" not in message.strip(), message
    assert len(message) < MAX_LINE, message[:300]
    assert "Traceback" not in message


def exercise(kind: str, path: Path, work: Path) -> None:
    """Read ``path`` as the harness would; fail on anything but a clean verdict."""
    if kind not in CLI_KINDS:
        try:
            load(kind, path)
        except HarnessError as exc:
            text = str(exc)
            _one_line(text, path)
            assert path.name in text or path.parent.name in text, text
        return
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv_for(kind, path, work))
    assert code in (0, 1, 2), (code, err.getvalue()[-500:])
    if code == 2:
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1, err.getvalue()[-1000:]
        _one_line(lines[0], path)
        assert lines[0].startswith("callout-harness:"), lines[0]


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_files_never_crash_the_reader(kind: str, workspace: Path) -> None:
    work = workspace / kind
    path = seed_file(kind, work)
    seeds = issue_seeds(kind, path.read_bytes())
    for data in seeds:  # each seed as it is: the valid file and the issue's inputs
        with _restored(path):
            path.write_bytes(data)
            exercise(kind, path, work)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(min_value=0, max_value=len(seeds) - 1),
           st.integers(min_value=0, max_value=2**32 - 1))
    def one(which: int, seed: int) -> None:
        with _restored(path):
            path.write_bytes(mutate(kind, seeds[which], seed))
            exercise(kind, path, work)

    one()
