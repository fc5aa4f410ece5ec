"""The end-of-trace marker, and the reader's bounds on line length and nesting."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import TraceFormatError
from harness.trace.reader import MAX_DEPTH, MAX_LINE_BYTES, TraceReader
from harness.trace.writer import TraceWriter, write_events

HEADER = b'{"ev":"trace","format":1,"ends":true}\n'


def _written(path: Path, events: int = 3, *, end: bool = True) -> Path:
    with path.open("wb") as out:
        writer = TraceWriter(out, clock=lambda: 0.5)
        writer.header(ends=True, target="sim")
        for n in range(events):
            writer.emit("policy_change", layer=f"L{n}")
        if end:
            writer.end()
    return path


def test_a_whole_trace_ends_with_its_count(tmp_path: Path) -> None:
    path = _written(tmp_path / "t.jsonl")
    lines = path.read_bytes().splitlines()
    assert lines[0].startswith(b'{"ev":"trace","format":1,"ends":true')
    assert lines[-1] == b'{"seq":4,"t":0.5,"ev":"trace_end","events":3}'
    reader = TraceReader(path)
    assert [e["ev"] for e in reader] == ["policy_change"] * 3  # the marker is framing
    assert main(["check", str(path)]) == 0


def test_a_trace_cut_short_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _written(tmp_path / "t.jsonl", end=False)
    with pytest.raises(TraceFormatError, match=r"t\.jsonl:4: cut short after line 4"):
        list(TraceReader(path))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cut short after line 4" in err[0]


def test_a_cut_in_the_middle_of_a_line_is_bad_input_too(tmp_path: Path) -> None:
    path = _written(tmp_path / "t.jsonl", events=50)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a Ctrl-C mid-write leaves
    assert main(["check", str(path)]) == 2


def test_a_wrong_count_or_an_event_after_the_end_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(HEADER + b'{"seq":1,"t":0,"ev":"policy_change","layer":"X"}\n'
                     b'{"seq":2,"t":0,"ev":"trace_end","events":5}\n')
    with pytest.raises(TraceFormatError, match=r":3: events: expected the number of events"):
        list(TraceReader(path))
    path.write_bytes(HEADER + b'{"seq":1,"t":0,"ev":"trace_end","events":0}\n'
                     b'{"seq":2,"t":0,"ev":"policy_change","layer":"X"}\n')
    with pytest.raises(TraceFormatError, match=r":3: an event after the trace_end of line 2"):
        list(TraceReader(path))


def test_a_trace_without_the_promise_is_judged_as_it_stands(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"ev":"trace","format":1}\n{"seq":1,"t":0,"ev":"policy_change","layer":"X"}\n')
    assert main(["check", str(path)]) == 0
    path.write_bytes(b'{"seq":1,"t":0,"ev":"policy_change","layer":"X"}\n')  # no header at all
    assert main(["check", str(path)]) == 0


def test_leaving_the_writer_by_an_exception_writes_no_end() -> None:
    out = io.BytesIO()
    with pytest.raises(KeyboardInterrupt), TraceWriter(out) as writer:
        writer.header(ends=True)
        writer.emit("policy_change", layer="X")
        raise KeyboardInterrupt
    assert b"trace_end" not in out.getvalue()
    out = io.BytesIO()
    with TraceWriter(out) as writer:
        writer.header(ends=True)
        writer.emit("policy_change", layer="X")
    assert out.getvalue().endswith(b'"ev":"trace_end","events":1}\n')
    with pytest.raises(ValueError, match="already ended"):
        writer.emit("policy_change", layer="Y")


def test_write_events_can_promise_and_end(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_events(path, [{"seq": 4, "t": 1.0, "ev": "policy_change", "layer": "X"}], ends=True)
    assert len(list(TraceReader(path))) == 1


def test_a_line_longer_than_the_limit_is_one_error_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    with path.open("wb") as out:
        out.write(b'{"seq":1,"t":0,"ev":"x","pad":"')
        out.write(b"a" * (3 * MAX_LINE_BYTES))
        out.write(b'"}\n')
    with pytest.raises(TraceFormatError, match=rf"long\.jsonl:1: expected a line of at most {MAX_LINE_BYTES} bytes"):
        list(TraceReader(path))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 1100, 100_000])
def test_deep_json_is_one_error_not_a_recursion(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"seq":1,"t":0,"ev":"x","v":' + b"[" * depth + b"]" * depth + b"}\n")
    with pytest.raises(TraceFormatError, match=r"deep\.jsonl:1: expected values nested at most"):
        list(TraceReader(path))
    assert main(["check", str(path)]) == 2
