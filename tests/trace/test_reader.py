"""The strict reader: what it accepts, and the one-line error for what it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import TraceFormatError
from harness.trace.reader import TraceReader
from harness.trace.writer import TraceWriter


def _write(tmp_path: Path, text: str | bytes, name: str = "t.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _read(path: Path) -> list[dict]:
    return list(TraceReader(path))


def _error(path: Path) -> str:
    with pytest.raises(TraceFormatError) as info:
        _read(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_header_events_and_unknowns(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '{"ev":"trace","format":1,"target":"sim"}\n'
        "\n"
        '{"seq":1,"t":0,"ev":"classify","layer":"ALE_AUTH_CONNECT_V4","new_field":[1]}\n'
        '{"seq":5,"t":0.5,"ev":"some_future_kind","whatever":{"x":1}}\n',
    )
    reader = TraceReader(path)
    events = list(reader)
    assert reader.header == {"ev": "trace", "format": 1, "target": "sim"}
    assert [e["seq"] for e in events] == [1, 5]
    assert reader.events == 2


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("STATUS_SUCCESS", "STATUS_SUCCESS"),
        (0, "STATUS_SUCCESS"),
        ("0xC0220103", "STATUS_FWP_CANNOT_PEND"),
        (3223453955, "STATUS_FWP_CANNOT_PEND"),
        ("STATUS_FWP_TIMEOUT", "FWP_E_TIMEOUT"),
        ("0x80320012", "FWP_E_TIMEOUT"),
        ("0xC0220012", "FWP_E_TIMEOUT"),
        ("S_OK", "STATUS_SUCCESS"),
        ("0x1234ABCD", "0x1234ABCD"),
    ],
)
def test_statuses_are_canonical_names(tmp_path: Path, raw: object, name: str) -> None:
    import json

    line = json.dumps({"seq": 1, "t": 0, "ev": "txn_begin", "session": 1, "status": raw})
    [event] = _read(_write(tmp_path, line + "\n"))
    assert event["status"] == name


def test_unknown_status_name_is_an_error(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, '{"seq":1,"t":0,"ev":"txn_begin","status":"STATUS_BOGUS"}\n'))
    assert "t.jsonl:1: status:" in msg and "STATUS_BOGUS" in msg


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"seq":1,"t":0,"ev":"x"}\n[1,2]\n', ":2: expected a JSON object, found a JSON array"),
        ('{"seq":1,"t":0,"ev":"x"}\n{"seq":2,"t":0,\n', ":2: expected one JSON object per line"),
        ('{"t":0,"ev":"x"}\n', ":1: seq: expected an integer, found nothing (field missing)"),
        ('{"seq":true,"t":0,"ev":"x"}\n', ":1: seq: expected an integer, found true"),
        ('{"seq":1.5,"t":0,"ev":"x"}\n', ":1: seq: expected an integer, found number 1.5"),
        ('{"seq":1,"ev":"x"}\n', ":1: t: expected a finite number, found nothing"),
        ('{"seq":1,"t":"0","ev":"x"}\n', ":1: t: expected a finite number, found string '0'"),
        ('{"seq":1,"t":0}\n', ":1: ev: expected an event kind (string), found nothing"),
        ('{"seq":1,"t":0,"ev":7}\n', ":1: ev: expected an event kind (string), found number 7"),
        ('{"seq":2,"t":0,"ev":"x"}\n{"seq":2,"t":1,"ev":"x"}\n', ":2: seq: expected a seq greater than 2"),
        ('{"seq":1,"t":5,"ev":"x"}\n{"seq":2,"t":4.5,"ev":"x"}\n', ":2: t: expected t not below 5"),
        ('{"seq":1,"t":0,"ev":"classify","reauth":"yes"}\n', ":1: reauth: expected true or false"),
        ('{"seq":1,"t":0,"ev":"classify","endpoint":false}\n', ":1: endpoint: expected an integer or string handle"),
        ('{"seq":1,"t":0,"ev":"complete_classify","action":3}\n', ":1: action: expected an action name or null"),
        ('{"ev":"trace","format":2}\n', ":1: format: expected format version 1, found 2"),
        ('{"seq":1,"t":0,"ev":"x"}\n{"ev":"trace","format":1,"seq":2,"t":0}\n', ":2: ev: a trace header may only be the first line"),
        ('{"seq":1,"t":NaN,"ev":"x"}\n', ":1: expected JSON"),
    ],
)
def test_bad_lines_name_line_and_field(tmp_path: Path, text: str, where: str) -> None:
    assert where in _error(_write(tmp_path, text))


def test_non_utf8_byte(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, b'{"seq":1,"t":0,"ev":"x"}\n{"seq":2,"t":0,"ev":"\xff"}\n'))
    assert ":2: expected UTF-8 text, found byte 0xFF at column 22" in msg


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    assert "expected at least one JSON line, found an empty trace" in _error(
        _write(tmp_path, content)
    )


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.jsonl").endswith("nope.jsonl: no such file")
    assert "expected a trace file, found a directory" in _error(tmp_path)


def test_null_complete_classify_action_is_allowed(tmp_path: Path) -> None:
    [event] = _read(
        _write(tmp_path, '{"seq":1,"t":0,"ev":"complete_classify","handle":3,"action":null}\n')
    )
    assert event["action"] is None


def test_writer_round_trip_is_deterministic(tmp_path: Path) -> None:
    import io

    def produce() -> bytes:
        out = io.BytesIO()
        now = [0.0]
        w = TraceWriter(out, lambda: now[0])
        w.header(target="sim", seed=3)
        w.emit("classify", id=1, layer="ALE_AUTH_CONNECT_V4", reauth=False)
        now[0] = 0.25
        w.emit("pend_operation", id=1, ctx="c", status="STATUS_SUCCESS")
        return out.getvalue()

    first, second = produce(), produce()
    assert first == second
    path = _write(tmp_path, first)
    events = _read(path)
    assert [(e["seq"], e["t"], e["ev"]) for e in events] == [
        (1, 0.0, "classify"),
        (2, 0.25, "pend_operation"),
    ]


def test_reader_streams_without_loading_the_file(tmp_path: Path) -> None:
    """The reader yields the first event before it has read the rest of the file."""
    path = _write(tmp_path, '{"seq":1,"t":0,"ev":"x"}\n' + "garbage\n")
    it = iter(TraceReader(path))
    assert next(it)["seq"] == 1
    with pytest.raises(TraceFormatError):
        next(it)
