"""tracerpt XML as real Windows machines write it: local offsets, RawTime, padding, errors.

The shapes follow what ``tracerpt X.etl -of XML`` writes: the EventTrace
header event first (its EventData carries the session's clock and loss
counters), ``SystemTime`` in UTC or in local time with the machine's offset,
7 or 9 fraction digits, ``RawTime`` only with ``-rts``, integers right-aligned
with spaces, ``BinaryEventData`` for an event it could not decode.
"""

from __future__ import annotations

import io

import pytest

from harness.errors import TraceFormatError
from harness.guest.etw import converted_events

PROBE = "{6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}"


def header(perf_freq: int | None = 10_000_000, events_lost: int = 0, buffers_lost: int = 0,
           clock: int = 1) -> str:
    freq = f'<Data Name="PerfFreq">{perf_freq:>10}</Data>' if perf_freq else ""
    return f"""<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Guid="{{68fdd900-4a3e-11d1-84f4-0000f80464e3}}" />
    <EventID>0</EventID><Version>2</Version><Level>0</Level><Task>0</Task><Opcode>0</Opcode>
    <Keywords>0x0</Keywords>
    <TimeCreated SystemTime="2026-03-04T10:11:12.000000000-07:00" RawTime="1000" />
    <Execution ProcessID="4294967295" ThreadID="4294967295" ProcessorID="0" />
  </System>
  <EventData>
    <Data Name="BufferSize">      1024</Data>
    <Data Name="EventsLost">{events_lost:>10}</Data>
    <Data Name="BuffersLost">{buffers_lost:>10}</Data>
    {freq}
    <Data Name="ReservedFlags">{clock:>10}</Data>
    <Data Name="CPUSpeed">      2995</Data>
  </EventData>
  <RenderingInfo Culture="en-US"><Opcode>Header </Opcode></RenderingInfo>
</Event>"""


def event(name: str, time_attrs: str, data: str = "", body: str | None = None) -> str:
    payload = body if body is not None else f"<EventData>{data}</EventData>"
    return f"""<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Name="CalloutProbe" Guid="{{6b2b7a63-6c1b-4e58-9c1b-3e1a0c6f5a01}}" />
    <EventID>0</EventID><Version>0</Version><Level>5</Level><Task>0</Task>
    <TimeCreated {time_attrs} />
    <Execution ProcessID="4" ThreadID="212" ProcessorID="1" KernelTime="0" UserTime="0" />
  </System>
  {payload}
  <RenderingInfo Culture="en-US"><Level>Verbose </Level><Task>{name}</Task></RenderingInfo>
</Event>"""


def xml(*events: str) -> io.BytesIO:
    return io.BytesIO(("<?xml version='1.0' encoding='UTF-8'?>\n<Events>\n"
                       + "\n".join(events) + "\n</Events>\n").encode())


FREE = '<Data Name="obj">0x10</Data>'


@pytest.mark.parametrize("stamps", [
    # the same three instants as UTC, and as local time in three zones
    ("2026-03-04T17:11:12.6210169Z", "2026-03-04T17:11:12.8210169Z",
     "2026-03-04T17:11:13.6210169Z"),
    ("2026-03-04T10:11:12.621016900-07:00", "2026-03-04T10:11:12.821016900-07:00",
     "2026-03-04T10:11:13.621016900-07:00"),
    ("2026-03-04T18:10:12.6210169+00:59", "2026-03-04T18:10:12.8210169+00:59",
     "2026-03-04T18:10:13.6210169+00:59"),
    ("2026-03-04T19:10:12.621016900+0159", "2026-03-04T19:10:12.821016900+0159",
     "2026-03-04T19:10:13.621016900+0159"),
    # midnight crossed by the offset
    ("2026-03-04T23:59:59.9000000-00:30", "2026-03-05T00:00:00.1000000-00:30",
     "2026-03-05T00:00:00.9000000-00:30"),
])
def test_system_time_in_utc_or_any_local_offset(stamps: tuple[str, ...]) -> None:
    events = converted_events(xml(header(), *(event("free", f'SystemTime="{s}"', FREE)
                                              for s in stamps)), provider=PROBE)
    t = [e["t"] for e in events]
    assert t[0] == 0
    assert t[1] == pytest.approx(0.2, abs=1e-7)
    assert t[2] == pytest.approx(1.0, abs=1e-7)


def test_a_utc_offset_changes_the_order_it_describes() -> None:
    # 10:00-07:00 is 17:00Z: one hour after 16:00Z, not seven hours before it
    events = converted_events(xml(
        event("free", 'SystemTime="2026-03-04T16:00:00.0000000Z"', FREE),
        event("free", 'SystemTime="2026-03-04T10:00:00.0000000-07:00"', FREE),
    ), provider=PROBE)
    assert events[1]["t"] == 3600.0


def test_raw_time_only_uses_the_header_events_perf_freq() -> None:
    events = converted_events(xml(
        header(perf_freq=3_579_545),
        event("free", 'RawTime="   7159090"', FREE),
        event("free", 'RawTime="  10738635"', FREE),
        event("free", 'RawTime="  14318180"', FREE),
    ), provider=PROBE)
    assert [e["t"] for e in events] == [0.0, 1.0, 2.0]


def test_raw_time_on_a_system_time_clock_counts_100ns() -> None:
    events = converted_events(xml(
        header(perf_freq=None, clock=2),
        event("free", 'RawTime="134000000000000000"', FREE),
        event("free", 'RawTime="134000000005000000"', FREE),
    ), provider=PROBE)
    assert events[1]["t"] == 0.5


def test_raw_time_is_preferred_to_system_time_when_the_clock_is_known() -> None:
    events = converted_events(xml(
        header(perf_freq=10_000_000),
        event("free", 'SystemTime="2026-03-04T10:11:12.0000000Z" RawTime="100"', FREE),
        event("free", 'SystemTime="2026-03-04T10:11:12.0000000Z" RawTime="150"', FREE),
    ), provider=PROBE)
    assert events[1]["t"] == pytest.approx(5e-6)


def test_raw_time_without_the_header_event_is_an_error_naming_it() -> None:
    with pytest.raises(TraceFormatError) as caught:
        converted_events(xml(event("free", 'RawTime="100"', FREE)), provider=PROBE)
    message = str(caught.value)
    assert ":3: RawTime: expected the session clock (PerfFreq)" in message
    assert "\n" not in message


@pytest.mark.parametrize(("lost", "key"), [((3, 0), "EventsLost"), ((0, 1), "BuffersLost")])
def test_a_capture_that_lost_events_is_refused(lost: tuple[int, int], key: str) -> None:
    with pytest.raises(TraceFormatError) as caught:
        converted_events(xml(header(events_lost=lost[0], buffers_lost=lost[1]),
                             event("free", 'SystemTime="2026-03-04T10:11:12Z"', FREE)),
                         provider=PROBE)
    assert f"EventTrace.{key}: expected a complete capture" in str(caught.value)


def test_space_padded_integers_convert() -> None:
    data = ('<Data Name="session">        17</Data><Data Name="read_only">         1</Data>'
            '<Data Name="waited_ms">        12</Data><Data Name="status">         0</Data>')
    reg = '<Data Name="callout">{9a1e5c10-2b3d-4f60-a172-8394a5b6c701}</Data>' \
          '<Data Name="status">-1071513341</Data>'
    events = converted_events(xml(
        header(),
        event("txn_begin ", 'SystemTime="2026-03-04T10:11:12.6210169Z"', data),
        event("callout_register", 'SystemTime="2026-03-04T10:11:12.6210169Z"', reg),
        event("classify_done", 'SystemTime="2026-03-04T10:11:12.6210169Z"',
              '<Data Name="id">         1</Data><Data Name="action">      4098</Data>'
              '<Data Name="absorb">         0</Data>'),
    ), provider=PROBE)
    assert events[0] == {"seq": 1, "t": 0.0, "ev": "txn_begin", "session": "0x11",
                         "read_only": True, "waited_ms": 12, "status": "STATUS_SUCCESS"}
    assert events[1]["status"] == "STATUS_FWP_CANNOT_PEND"
    assert (events[2]["id"], events[2]["action"], events[2]["absorb"]) == ("0x1", "PERMIT",
                                                                            False)


def test_win_error_more_data_is_an_error_naming_the_event_and_field() -> None:
    with pytest.raises(TraceFormatError) as caught:
        converted_events(xml(header(), event(
            "classify", 'SystemTime="2026-03-04T10:11:12Z"',
            '<Data Name="id">0x1</Data><Data Name="remote">win:ErrorMoreData</Data>')),
            provider=PROBE)
    message = str(caught.value)
    assert ": classify.remote: expected a rendered value, found tracerpt's " \
           "win:ErrorMoreData" in message


def test_binary_event_data_is_an_error_naming_the_event() -> None:
    body = "<BinaryEventData>0A000000FFFFFFFF</BinaryEventData>"
    with pytest.raises(TraceFormatError) as caught:
        converted_events(xml(header(), event("", 'SystemTime="2026-03-04T10:11:12Z"',
                                             body=body)), provider=PROBE)
    message = str(caught.value)
    assert "event 0.BinaryEventData: expected decoded fields" in message
    assert "etw decode" in message
    # another provider's undecodable event is not ours to judge
    other = event("", 'SystemTime="2026-03-04T10:11:12Z"', body=body).replace(
        "6b2b7a63", "00000000")
    assert converted_events(xml(header(), other), provider=PROBE) == []


@pytest.mark.parametrize("bad", ["2026-03-04T10:11:12+25:00", "2026-03-04T10:11:12.1234567890Z",
                                 "2026-13-04T10:11:12Z", "2026-03-04 10:11:12Z"])
def test_a_bad_system_time_names_the_attribute(bad: str) -> None:
    with pytest.raises(TraceFormatError, match=r":3: SystemTime: expected"):
        converted_events(xml(event("free", f'SystemTime="{bad}"', FREE)), provider=PROBE)
