"""``callout-harness etw decode|convert``: read an ``.etl`` capture on any host.

    callout-harness etw decode FILE.etl [--format text|json] [--provider GUID ...]
    callout-harness etw convert FILE.etl --provider GUID [--provider GUID ...] -o TRACE.jsonl

``decode`` prints every event (provider GUID and name, event name, time stamp,
process and thread id, fields); ``--format json`` prints one JSON array of
objects with ``provider``, ``provider_name``, ``name``, ``timestamp``, ``t``,
``pid``, ``tid``, ``fields`` (and ``cpu``, ``id``, ``level``, ``opcode``,
``keyword``). ``convert`` maps the named providers' TraceLogging events onto
the trace format. A capture that lost events is refused (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.errors import UsageError


def _guid(text: str) -> str:
    from harness.etw.convert import provider_guid

    try:
        return provider_guid(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="etw_command", metavar="ACTION", parser_class=type(p))
    dec = sub.add_parser("decode", help="print every event of an .etl file")
    dec.add_argument("etl", type=Path, metavar="FILE.etl")
    dec.add_argument("--format", choices=("text", "json"), default="text")
    dec.add_argument("--provider", action="append", type=_guid, default=None, metavar="GUID",
                     help="only this provider's events (repeatable)")
    con = sub.add_parser("convert", help="map providers' events onto the trace format")
    con.add_argument("etl", type=Path, metavar="FILE.etl")
    con.add_argument("--provider", action="append", type=_guid, required=True, metavar="GUID",
                     help="a provider whose events go into the trace (repeatable: the driver "
                     "and the agent)")
    con.add_argument("-o", "--out", type=Path, required=True, metavar="TRACE.jsonl")
    con.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                     help="a header field (target=..., scenario=...)")


def _text_line(ev: Any) -> str:
    fields = " ".join(f"{k}={json.dumps(v)}" for k, v in ev.fields.items())
    name = ev.name if ev.name is not None else f"(event id {ev.event_id}, not TraceLogging)"
    who = ev.provider_name or ev.provider
    return f"{ev.timestamp} t={ev.t:.7f} {who} {name} pid={ev.pid} tid={ev.tid} {fields}".rstrip()


def run(args: argparse.Namespace) -> int:
    if args.etw_command == "decode":
        return _decode(args)
    if args.etw_command == "convert":
        return _convert(args)
    raise UsageError("etw: expected an action: decode or convert")


def _decode(args: argparse.Namespace) -> int:
    from harness.etw.decode import decode_events
    from harness.etw.etl import etl_file

    providers = set(args.provider) if args.provider else None
    with etl_file(args.etl) as etl:
        events = decode_events(etl, providers=providers)
        if args.format == "json":
            out = sys.stdout
            out.write("[")
            for i, ev in enumerate(events):
                out.write(("," if i else "") + "\n" + json.dumps(ev.as_json()))
            out.write("\n]\n")
        else:
            for ev in events:
                print(_text_line(ev))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from harness.etw.convert import convert_etl

    meta: dict[str, Any] = {}
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta {item!r}: expected KEY=VALUE")
        meta[key] = value
    stats = convert_etl(args.etl, args.out, providers=args.provider, **meta)
    print(f"{args.out}: {stats.events} events ({stats.skipped} without TraceLogging metadata "
          "skipped)")
    return 0
