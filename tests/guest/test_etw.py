"""Converting tracerpt's XML rendering of the probe's TraceLogging events into a trace."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.errors import TraceFormatError
from harness.guest.etw import EtwSession, convert_tracerpt, converted_events
from harness.trace.reader import TraceReader
from tests.guest.conftest import DATA

PROBE = "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"
CALLOUT = "{9A1E5C10-2B3D-4F60-A172-8394A5B6C701}"


def convert(tmp_path: Path, name: str = "tracerpt_probe.xml") -> Path:
    out = tmp_path / "trace.jsonl"
    convert_tracerpt(DATA / name, out, provider=PROBE, target="winrm://lab1:5986", driver="probe")
    return out


def test_the_converted_trace_passes_the_strict_reader(tmp_path: Path) -> None:
    reader = TraceReader(convert(tmp_path))
    events = list(reader)
    assert reader.header == {"ev": "trace", "format": 1, "source": "etw",
                             "target": "winrm://lab1:5986", "driver": "probe"}
    assert [e["ev"] for e in events] == [
        "callout_register", "classify", "pend_operation", "classify_done", "decision",
        "complete_operation", "classify", "classify_done", "pend_classify",
        "complete_classify", "notify", "session_open", "txn_begin", "free",
    ]
    assert [e["seq"] for e in events] == list(range(1, 15))


def test_only_the_providers_events_are_kept(tmp_path: Path) -> None:
    stats = convert_tracerpt(DATA / "tracerpt_probe.xml", tmp_path / "t.jsonl", provider=PROBE)
    # the EventTrace header event and another provider's event
    assert (stats.events, stats.skipped) == (14, 2)


def test_time_is_seconds_since_the_first_event_and_never_decreases(tmp_path: Path) -> None:
    events = list(TraceReader(convert(tmp_path)))
    assert events[0]["t"] == 0
    assert events[1]["t"] == pytest.approx(0.2500001)
    # the event logged one tick behind its predecessor keeps the predecessor's t
    assert events[5]["ev"] == "complete_operation" and events[6]["ev"] == "classify"
    assert events[6]["t"] == events[5]["t"] == pytest.approx(0.4001)
    assert events[-1]["t"] == 2.0


def test_values_are_normalised_as_the_driver_readme_says(tmp_path: Path) -> None:
    events = list(TraceReader(convert(tmp_path)))
    first = events[1]
    assert first == {
        "seq": 2, "t": first["t"], "ev": "classify", "id": "0x1",
        "layer": "ALE_AUTH_CONNECT_V4", "callout": CALLOUT, "endpoint": "0xffffa50c1a2b3c40",
        "proto": "tcp", "dir": "out", "local": "10.0.2.15:49712", "remote": "10.0.2.2:8080",
        "reauth": False, "can_pend": True, "ale_required": False, "injection": "none",
        "rights": True,
    }
    reauth = events[6]
    assert reauth["layer"] == "ALE_AUTH_CONNECT_V4"  # FWPS_LAYER_ prefix dropped
    assert (reauth["reauth"], reauth["can_pend"], reauth["injection"]) == (True, False, "none")
    # the same context logged in hex and in decimal is one handle
    assert events[2]["ctx"] == events[4]["ctx"] == events[5]["ctx"] == "0xffffa50c1b000010"
    assert events[7]["action"] == "PERMIT"  # FWP_ACTION_PERMIT 0x1002
    assert events[8]["status"] == "STATUS_FWP_CANNOT_PEND"  # negative decimal NTSTATUS
    assert events[9]["action"] is None  # empty: the indication will be reauthorized
    assert events[10]["status"] == "STATUS_FWP_CANNOT_PEND"  # 0xC0220103
    assert events[11]["status"] == "STATUS_SUCCESS" and events[11]["dynamic"] is True
    assert events[12]["waited_ms"] == 12.5
    assert "endpoint" not in events[13]  # an empty field is left out


def test_converted_events_in_memory_match_the_file(tmp_path: Path) -> None:
    in_memory = converted_events(DATA / "tracerpt_probe.xml", provider=PROBE)
    from_file = list(TraceReader(convert(tmp_path)))
    assert [e["ev"] for e in in_memory] == [e["ev"] for e in from_file]
    assert in_memory[1]["endpoint"] == from_file[1]["endpoint"]


def test_malformed_xml_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"
    with pytest.raises(TraceFormatError) as caught:
        convert_tracerpt(DATA / "tracerpt_truncated.xml", out, provider=PROBE)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{DATA / 'tracerpt_truncated.xml'}:122: expected well-formed")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_value_that_does_not_convert_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError) as caught:
        convert_tracerpt(DATA / "tracerpt_bad_bool.xml", tmp_path / "t.jsonl", provider=PROBE)
    assert str(caught.value) == (
        f"{DATA / 'tracerpt_bad_bool.xml'}:35: classify.reauth: "
        "expected true/false or 1/0, found string 'maybe'"
    )


def test_a_file_that_is_not_tracerpt_output_is_refused() -> None:
    with pytest.raises(TraceFormatError, match="expected an <Events> root"):
        converted_events(io.BytesIO(b"<wfpstate></wfpstate>\n"), provider=PROBE)
    with pytest.raises(TraceFormatError, match="expected well-formed"):
        converted_events(io.BytesIO(b"not xml at all\n"), provider=PROBE)
    with pytest.raises(TraceFormatError, match=r"no such|cannot open"):
        converted_events(Path("does/not/exist.xml"), provider=PROBE)


def test_without_a_provider_only_known_kinds_are_kept() -> None:
    events = converted_events(DATA / "tracerpt_probe.xml", provider=None)
    assert len(events) == 14 and "unrelated" not in {e["ev"] for e in events}


def test_session_commands_name_the_provider_and_files(ps_parser: object) -> None:
    from tests.guest.conftest import syntax_errors

    session = EtwSession.for_driver("probe", PROBE, "C:\\callout-harness\\trace")
    scripts = session.scripts()
    assert (
        "& 'logman.exe' 'create' 'trace' 'callout-harness-probe' '-ow' '-o' "
        "'C:\\callout-harness\\trace\\probe.etl' '-p' '{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}' "
        "'0xffffffffffffffff' '0xff' '-ets'"
    ) in scripts["etw_start"]
    assert "& 'logman.exe' 'stop' 'callout-harness-probe' '-ets'" in scripts["etw_stop"]
    assert (
        "& 'tracerpt.exe' 'C:\\callout-harness\\trace\\probe.etl' '-of' 'XML' '-o' "
        "'C:\\callout-harness\\trace\\probe.xml' '-y'"
    ) in scripts["etw_convert"]
    for script in scripts.values():
        assert syntax_errors(ps_parser, script) == []
