"""The .etl container reader: a real Windows capture, and sessions laid out like one."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import TraceFormatError
from harness.etw.convert import convert_etl, etl_events
from harness.etw.decode import decode_etl
from harness.etw.etl import etl_file
from harness.trace.reader import TraceReader
from tests.etw import etlbuild, tlgdynamic

DATA = Path(__file__).parent / "data"
REAL = DATA / "powershell.etl"
POWERSHELL = "{A0C1853B-5C40-4B15-8766-3CF1C58F985A}"
PROBE = "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"
AGENT = "{4D8B9E2A-71C3-5F60-8A19-2B3C4D5E6F70}"
CALLOUT = "{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"
tld = tlgdynamic.load()


def test_the_real_capture_header() -> None:
    with etl_file(REAL) as etl:
        h = etl.header
        assert (h.os_build, h.processors, h.pointer_size, h.buffer_size) == (22623, 32, 8, 8192)
        assert (h.clock, h.perf_freq, h.events_lost, h.buffers_lost) == (1, 10_000_000, 0, 0)
        assert (h.logger_name, h.buffers_written) == ("usermode_trace", 26)
        assert len(etl.buffers) == 26
        assert {b.cpu for b in etl.buffers} == {0, 2, 4, 6, 7, 10, 11, 14}


def test_the_real_capture_events_are_merged_in_time_order() -> None:
    events = decode_etl(REAL)
    assert len(events) == 112
    assert {e.provider for e in events} == {POWERSHELL}
    assert all(a.t <= b.t for a, b in itertools.pairwise(events))
    assert len({e.cpu for e in events}) > 1  # several processors' buffers, interleaved
    assert events[0].timestamp == "2023-03-29T15:12:38.0204599Z"
    assert events[-1].t == pytest.approx(137.4184832)
    assert (events[0].event_id, events[0].pid, events[0].tid) == (7937, 17480, 18944)
    # a manifest provider: no TraceLogging metadata, the payload kept as hex
    assert events[0].name is None and events[0].user_data


def capture_of(builds: list[tuple[int, int, str, Any]], **options: Any) -> etlbuild.Capture:
    """A capture of TraceLogging events made by traceloggingdynamic: (cpu, stamp, name, build)."""
    events = []
    for cpu, stamp, name, build in builds:
        eb = tld.EventBuilder()
        eb.reset(name.encode())
        build(eb)
        meta, data = tlgdynamic.blobs(eb)
        provider, pname = (AGENT, b"CalloutHarness.Agent") if name.startswith("session") \
            or name.startswith("txn") else (PROBE, b"CalloutProbe")
        events.append(etlbuild.Event(stamp, provider, meta, data, tlgdynamic.traits(pname),
                                     cpu=cpu, pid=4 if provider == PROBE else 900))
    return etlbuild.Capture(events, **options)


def _classify(i: int) -> Any:
    def build(eb: Any) -> None:
        eb.add_hexint64(b"id", i)
        eb.add_str8(b"layer", "FWPS_LAYER_ALE_AUTH_CONNECT_V4")
        eb.add_guid_bytes_le(b"callout", bytes.fromhex("105c1e9a3d2b604fa1728394a5b6c701"))
        eb.add_hexintptr(b"endpoint", 0xFFFFA50C1A2B3C40)
        eb.add_uint8(b"proto", 6)
        eb.add_uint8(b"dir", 0)
        eb.add_str8(b"local", "10.0.2.15:49712")
        eb.add_str8(b"remote", "10.0.2.2:8080")
        eb.add_bool32(b"reauth", 0)
        eb.add_bool32(b"can_pend", 1)
        eb.add_bool32(b"ale_required", 0)
        eb.add_uint8(b"injection", 0)
        eb.add_bool32(b"rights", 1)
    return build


def _status(value: int) -> Any:
    return lambda eb: (eb.add_hexint64(b"session", 0x11), eb.add_bool32(b"read_only", 0),
                       eb.add_float64(b"waited_ms", 2.5), eb.add_hexint32(b"status", value))


def test_events_of_every_processor_are_merged_by_time_stamp(tmp_path: Path) -> None:
    builds = [(i % 3, 1_000_000 + 1000 * i, "classify", _classify(i)) for i in range(300)]
    path = capture_of(builds, buffer_size=2048).write(tmp_path / "c.etl")
    with etl_file(path) as etl:
        assert len({b.cpu for b in etl.buffers}) == 3 and len(etl.buffers) > 20
    events = decode_etl(path)
    assert [e.fields["id"] for e in events] == [f"0x{i:x}" for i in range(300)]
    assert events[1].t == pytest.approx(1e-4)
    assert events[0].provider_name == "CalloutProbe"


def test_convert_maps_driver_and_agent_onto_one_trace(tmp_path: Path) -> None:
    builds = [
        (1, 2_000_000, "session_open", lambda eb: (
            eb.add_hexint64(b"session", 0x11), eb.add_bool32(b"dynamic", 1),
            eb.add_uint32(b"txn_wait_ms", 0), eb.add_bool32(b"kernel", 0),
            eb.add_hexint32(b"status", 0))),
        (0, 2_500_000, "classify", _classify(1)),
        (1, 2_600_000, "txn_begin", _status(0x80320012)),
        (0, 3_000_000, "classify_done", lambda eb: (
            eb.add_hexint64(b"id", 1), eb.add_uint32(b"action", 0x1002),
            eb.add_bool32(b"absorb", 0), eb.add_bool32(b"rights", 1))),
    ]
    path = capture_of(builds, perf_freq=3_579_545).write(tmp_path / "both.etl")
    out = tmp_path / "trace.jsonl"
    stats = convert_etl(path, out, providers=[PROBE, AGENT.lower()], target="win11")
    assert (stats.events, stats.skipped) == (4, 0)
    reader = TraceReader(out)
    events = list(reader)
    assert reader.header is not None and reader.header["os_build"] == 22631
    assert [e["ev"] for e in events] == ["session_open", "classify", "txn_begin",
                                         "classify_done"]
    assert events[1] == {
        "seq": 2, "t": events[1]["t"], "ev": "classify", "id": "0x1",
        "layer": "ALE_AUTH_CONNECT_V4", "callout": CALLOUT, "endpoint": "0xffffa50c1a2b3c40",
        "proto": "tcp", "dir": "out", "local": "10.0.2.15:49712", "remote": "10.0.2.2:8080",
        "reauth": False, "can_pend": True, "ale_required": False, "injection": "none",
        "rights": True,
    }
    assert events[1]["t"] == pytest.approx(500_000 / 3_579_545)
    assert events[0]["status"] == "STATUS_SUCCESS" and events[0]["dynamic"] is True
    assert events[2]["status"] == "FWP_E_TIMEOUT" and events[2]["waited_ms"] == 2.5
    assert events[3]["action"] == "PERMIT"
    # only the named providers
    assert [e["ev"] for e in etl_events(path, providers=[AGENT])] == ["session_open",
                                                                      "txn_begin"]


@pytest.mark.parametrize(("options", "found"), [
    ({"events_lost": 3}, "EventsLost 3, BuffersLost 0"),
    ({"buffers_lost": 1}, "EventsLost 0, BuffersLost 1"),
    ({"buffer_flags": 0x22}, "BufferFlag 0x0022: ETW dropped events"),
    ({"buffer_flags": 0x60}, "a compressed one"),
])
def test_an_incomplete_or_compressed_capture_is_refused(tmp_path: Path, options: dict[str, int],
                                                        found: str) -> None:
    path = capture_of([(0, 1_000_000, "classify", _classify(1))], **options).write(
        tmp_path / "lost.etl")
    with pytest.raises(TraceFormatError) as caught:
        decode_etl(path)
    assert found in str(caught.value) and str(caught.value).startswith(str(path))


def test_a_corrupt_file_is_one_line_naming_the_buffer(tmp_path: Path) -> None:
    path = capture_of([(0, 1_000_000, "classify", _classify(1))]).write(tmp_path / "c.etl")
    raw = bytearray(path.read_bytes())
    struct.pack_into("<H", raw, 4096 + 0x48, 9000)  # the event record's size
    bad = tmp_path / "bad.etl"
    bad.write_bytes(bytes(raw))
    with pytest.raises(TraceFormatError) as caught:
        decode_etl(bad)
    assert str(caught.value).startswith(f"{bad}: buffer 1 offset 0x48: expected a record of 8")
    cut = tmp_path / "cut.etl"
    cut.write_bytes(path.read_bytes()[:6000])
    with pytest.raises(TraceFormatError, match="the file is cut short"):
        decode_etl(cut)


def test_a_bad_value_names_the_event_and_field(tmp_path: Path) -> None:
    path = capture_of([(0, 1_000_000, "classify_done", lambda eb: eb.add_uint32(
        b"action", 77))]).write(tmp_path / "a.etl")
    with pytest.raises(TraceFormatError) as caught:
        convert_etl(path, tmp_path / "t.jsonl", providers=[PROBE])
    assert "classify_done.action (2026-" in str(caught.value)
    assert "expected an FWP_ACTION_TYPE value or action name, found" in str(caught.value)
    assert not (tmp_path / "t.jsonl").exists()


def test_cli_decode_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = capture_of([(0, 1_000_000, "classify", _classify(1)),
                       (1, 1_000_010, "txn_begin", _status(0))]).write(tmp_path / "d.etl")
    assert main(["etw", "decode", str(path), "--format", "json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in events] == ["classify", "txn_begin"]
    for key in ("provider", "provider_name", "name", "timestamp", "pid", "tid", "fields"):
        assert key in events[0]
    assert events[1]["provider_name"] == "CalloutHarness.Agent" and events[1]["pid"] == 900
    assert main(["etw", "decode", str(path), "--provider", PROBE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and " CalloutProbe classify pid=4 " in lines[0]
    assert main(["etw", "decode", str(REAL)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 112


def test_cli_convert_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = capture_of([(0, 1_000_000, "classify", _classify(1))]).write(tmp_path / "d.etl")
    out = tmp_path / "t.jsonl"
    assert main(["etw", "convert", str(path), "--provider", PROBE, "-o", str(out),
                 "--meta", "target=win11"]) == 0
    assert "1 events" in capsys.readouterr().out
    assert main(["check", str(out)]) == 1  # read as a trace: a classify never returned
    assert main(["etw", "convert", str(path), "--provider", "x", "-o", str(out)]) == 2
    assert main(["etw", "decode", str(tmp_path / "none.etl")]) == 2
    not_etl = tmp_path / "n.etl"
    not_etl.write_text("hello")
    assert main(["etw", "decode", str(not_etl)]) == 2
    err = capsys.readouterr().err
    assert "cannot open" in err and "expected an .etl buffer header" in err


def test_decoding_needs_no_guest_clients(tmp_path: Path) -> None:
    import subprocess
    import sys

    program = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('libvirt', 'winrm', 'paramiko', 'requests'):\n"
        "            raise ImportError(name + ' is blocked for this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from harness.cli import main\n"
        "print('RESULT', main(['etw', 'decode', sys.argv[1], '--format', 'json']) )\n"
    )
    proc = subprocess.run([sys.executable, "-c", program, str(REAL)], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.rstrip().endswith("RESULT 0"), proc.stderr
