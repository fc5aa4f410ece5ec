"""Property: whatever bytes a trace holds, ``check`` exits 0, 1 or 2, never a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.trace.events import SCHEMA

KINDS = sorted(SCHEMA)
handles = st.one_of(st.integers(-3, 40), st.sampled_from(["a", "b", "c1", "k1"]))
values = st.one_of(
    handles, st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([
        "STATUS_SUCCESS", "STATUS_FWP_CANNOT_PEND", "FWP_E_TIMEOUT", "0xC0220103",
        "ALE_AUTH_CONNECT_V4", "ALE_ENDPOINT_CLOSURE_V4", "ALE_RESOURCE_ASSIGNMENT_V6",
        "STREAM_V4", "INBOUND_TRANSPORT_V4", "PERMIT", "BLOCK", "CONTINUE", "tcp", "udp",
        "self", "none", "filter", "dynamic", "transport_recv",
    ]),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(KINDS))
    fields = draw(st.dictionaries(st.sampled_from(sorted(SCHEMA[kind])), values, max_size=8))
    return {"ev": kind, **fields}


@st.composite
def trace_bytes(draw: st.DrawFn) -> bytes:
    evs = draw(st.lists(events(), max_size=40))
    seq, t, lines = 0, 0.0, []
    for ev in evs:
        seq += draw(st.integers(0, 3))  # 0 sometimes breaks ordering on purpose
        t += draw(st.sampled_from([0.0, 0.5, 20.0, 4000.0, -1.0]))
        lines.append(json.dumps({"seq": seq, "t": t, **ev}))
    data = ("\n".join(lines) + "\n").encode()
    mode = draw(st.sampled_from(["asis", "truncate", "garble"]))
    if mode == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif mode == "garble" and data:
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + draw(st.binary(min_size=1, max_size=4)) + data[pos + 1 :]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=trace_bytes(), fmt=st.sampled_from(["text", "json"]))
def test_check_never_crashes(data: bytes, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()  # the fixture is shared by all examples: start from empty
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        path.write_bytes(data)
        code = main(["check", "--format", fmt, str(path)])
    captured = capsys.readouterr()
    assert code in (0, 1, 2)
    assert "Traceback" not in captured.err
    if code == 2:
        assert captured.err.strip().count("\n") == 0
