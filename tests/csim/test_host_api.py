"""What a driver host reads of a run through the public callout API (no private members)."""

from __future__ import annotations

import io
from pathlib import Path

from harness.csim.adapter import flush_hook, trace_path
from harness.engine.model import Engine
from harness.trace.writer import TraceWriter
from tests.engine.netkit import Probe


def test_a_file_writer_names_its_path_and_flushes_to_it(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with path.open("wb") as out:
        writer = TraceWriter(out)
        writer.emit("policy_change", layer="ALE_AUTH_CONNECT_V4")
        assert writer.path == str(path)
        writer.flush()
        assert b"policy_change" in path.read_bytes()


def test_memory_and_pipe_writers_have_no_path() -> None:
    assert TraceWriter().path is None
    assert TraceWriter(io.BytesIO()).path is None
    TraceWriter().flush()  # nothing to flush, no error


def test_the_adapter_reaches_the_writer_through_the_callout_api(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    probe = Probe()
    with path.open("wb") as out:
        Engine(seed=1, callouts=[probe], out=out)
        assert trace_path(probe.api) == str(path)
        flush_hook(probe.api)()
        assert path.read_bytes().count(b"callout_register") == len(probe.layers)
    assert probe.api.packet_size(12345) is None
