"""The tests' own trace builder leaves nothing behind in the temporary directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.tracebuild import TraceBuilder


def test_trace_builder_cleans_up() -> None:
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob("tb-*"))
    for _ in range(3):
        tb = TraceBuilder()
        tb.add("callout_register", callout="c", status="STATUS_SUCCESS")
        assert tb.check().raw.events == 1
    assert set(tmp.glob("tb-*")) == before
