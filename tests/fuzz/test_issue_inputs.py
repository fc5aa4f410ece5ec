"""Every bad input of issue 14, typed as a user would: exit 2 (or the documented
code), one line on stderr naming the file and key, and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from tests.fuzz.corpus import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    argv = case.build(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == case.exit, err
    lines = [line for line in err.splitlines() if not line.startswith("[")]  # progress lines
    errors = [line for line in lines if line.startswith(("callout-harness", "usage:"))
              or "error" in line]
    assert errors, err
    assert "Traceback" not in err
    assert case.says in err, err
    assert all(len(line) < 1000 for line in err.splitlines()), "echoed values are cut"
