"""Trace format version 1: the event model, the strict reader and the writer."""

from harness.trace.events import Event
from harness.trace.reader import TraceReader, read_trace
from harness.trace.status import canonical, succeeded
from harness.trace.writer import TraceWriter, write_events

__all__ = [
    "Event",
    "TraceReader",
    "TraceWriter",
    "canonical",
    "read_trace",
    "succeeded",
    "write_events",
]
