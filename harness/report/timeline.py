"""A trace as a timeline: lanes, marks, arrows and bars.

Endpoints are lanes; so are BFE sessions. Every event that concerns an
endpoint (its classifies, the calls made inside them, the completion of a
pend made there, the injection of a clone taken there) lands on that
endpoint's lane. Pend -> complete pairs become arrows, transactions become
bars, a policy change is a rule across all lanes. The x axis is event order
(``seq``): in virtual time many events share one instant, and order is what
a reader of a contract violation needs; ticks along it give each slot's time.

The timeline opens on the scenario: the harness's set-up (the driver
registering its callouts, the installer session adding objects, the policy
changes that follow) collapses into one labelled band, and a long stretch of
events far from any violation's evidence collapses into a gap, so that the
first evidence is in view when a row is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.trace.events import Event, layer_family

# What a mark looks like, by event kind (and for classify_done, by action).
SHAPES = {
    "classify": "circle", "classify_done": "dot", "pend_operation": "diamond",
    "complete_operation": "diamond", "pend_classify": "diamond", "complete_classify": "diamond",
    "clone": "tri", "inject": "tri", "inject_complete": "tri", "free_clone": "cross",
    "alloc": "square", "free": "square", "queue": "square", "decision": "star",
    "txn_begin": "bar", "txn_commit": "bar", "txn_abort": "bar", "txn_forced_abort": "bar",
}

_LANE_LIMIT = 200
#: Event kinds a harness or DriverEntry set-up is made of.
SETUP_KINDS = frozenset({
    "callout_register", "notify", "session_open", "session_close", "txn_begin",
    "txn_commit", "txn_abort", "object_add", "policy_change", "alloc",
})
#: Slots drawn before eliding; slots kept at the start, around evidence, at the end.
WINDOW, HEAD, AROUND, TAIL = 90, 30, 12, 10
SETUP_SLOTS = 12


@dataclass
class Mark:
    x: int
    lane: int
    ev: Event
    kind: str
    css: str
    label: str = ""
    rules: list[str] = field(default_factory=list)


@dataclass
class Arrow:
    x1: int
    lane1: int
    x2: int
    lane2: int
    css: str


@dataclass
class Bar:
    x1: int
    x2: int
    lane: int
    css: str
    label: str


@dataclass
class Band:
    """A stretch of events drawn as one labelled block (the set-up, an elided gap)."""

    x1: int
    x2: int
    css: str
    label: str
    detail: list[str] = field(default_factory=list)


@dataclass
class Timeline:
    lanes: list[str]
    marks: list[Mark]
    arrows: list[Arrow]
    bars: list[Bar]
    rules_x: list[tuple[int, str]]  # policy changes: (x, label)
    width: int
    truncated: int = 0
    bands: list[Band] = field(default_factory=list)
    ticks: list[tuple[int, str]] = field(default_factory=list)  # (x, time label)


def setup_prefix(events: list[Event]) -> int:
    """How many leading events are set-up, for a trace whose target did not say.

    The leading run of set-up kinds, up to and including the first
    ``session_close`` (the installer's), when it includes callout
    registrations; 0 when the trace does not start that way.
    """
    n = 0
    registered = False
    for ev in events:
        kind = ev.get("ev")
        if kind not in SETUP_KINDS:
            break
        n += 1
        registered = registered or kind == "callout_register"
        if kind == "session_close":
            break
    return n if registered else 0


_SETUP_WORDS = {"callout_register": "callouts registered", "object_add": "objects added",
                "policy_change": "policy changes", "notify": "notifies"}


def _setup_band(events: list[Event]) -> Band:
    counts: dict[str, int] = {}
    for ev in events:
        word = _SETUP_WORDS.get(str(ev.get("ev")), "BFE calls")
        counts[word] = counts.get(word, 0) + 1
    detail = [f"{n} {word}" for word, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    return Band(0, SETUP_SLOTS - 1, "setup", f"set-up: {len(events)} events", detail)


def _short_layer(layer: str) -> str:
    fam = layer_family(layer)
    return fam.replace("ALE_", "").replace("AUTH_", "").replace("ENDPOINT_", "").lower()


def _or(value: int | None, fallback: Callable[[], int]) -> int:
    return fallback() if value is None else value


def build_timeline(
    events: list[Event], evidence: dict[int, list[str]] | None = None, max_marks: int = 2500,
    setup: int | None = None,
) -> Timeline:
    """Lay out ``events``; ``evidence`` maps seq -> rule IDs that cite it; the
    first ``setup`` events (found by :func:`setup_prefix` when None) are the
    set-up band."""
    evidence = evidence or {}
    count = setup_prefix(events) if setup is None else max(0, min(setup, len(events)))
    for i in range(count):  # never hide an evidence event in the band
        if events[i].get("seq") in evidence:
            count = i
            break
    band = _setup_band(events[:count]) if count else None
    offset = SETUP_SLOTS if band else 0
    events = events[count:]
    lanes: list[str] = []
    lane_of_key: dict[object, int] = {}

    def lane(key: object, label: str) -> int:
        idx = lane_of_key.get(key)
        if idx is None:
            if len(lanes) >= _LANE_LIMIT:
                key, label = ("overflow",), "(more lanes)"
                idx = lane_of_key.get(key)
                if idx is not None:
                    return idx
            idx = len(lanes)
            lanes.append(label)
            lane_of_key[key] = idx
        return idx

    selected = events
    truncated = 0
    if len(events) > max_marks:
        keep = set(evidence)
        head = events[:max_marks]
        extra = [e for e in events[max_marks:] if e.get("seq") in keep]
        selected = head + extra
        truncated = len(events) - len(selected)

    marks: list[Mark] = []
    arrows: list[Arrow] = []
    bars: list[Bar] = []
    rules_x: list[tuple[int, str]] = []
    classify_lane: dict[object, int] = {}
    packet_lane: dict[object, int] = {}
    pend_at: dict[object, tuple[int, int]] = {}
    handle_lane: dict[object, int] = {}
    flow_lane: dict[object, int] = {}
    txn_start: dict[object, tuple[int, int]] = {}
    other = None

    def other_lane() -> int:
        nonlocal other
        if other is None:
            other = lane(("other",), "driver / engine")
        return other

    for x, ev in enumerate(selected, offset):
        kind = ev.get("ev")
        seq = ev.get("seq")
        css = str(kind)
        label = ""
        ln: int
        if kind == "classify":
            ep = ev.get("endpoint")
            if ep is not None:
                desc = f"endpoint {ep}"
                if ev.get("proto"):
                    desc += f" {ev.get('proto')} {ev.get('dir', '')} {ev.get('remote', '')}"
                ln = lane(("ep", ep), desc.strip())
            elif ev.get("flow") is not None and ev.get("flow") in flow_lane:
                ln = flow_lane[ev.get("flow")]
            else:
                ln = other_lane()
            if ev.get("flow") is not None:
                flow_lane.setdefault(ev.get("flow"), ln)
            classify_lane[ev.get("id")] = ln
            if ev.get("packet") is not None:
                packet_lane[ev.get("packet")] = ln
            layer = str(ev.get("layer", ""))
            label = _short_layer(layer)
            if "CLOSURE" in layer or "RELEASE" in layer:
                css = "closure"
            if ev.get("reauth"):
                css += " reauth"
                label += " (reauth)"
        elif kind == "classify_done":
            ln = _or(classify_lane.pop(ev.get("id"), None), other_lane)
            action = str(ev.get("action", ""))
            css = f"done {action.lower()}" + (" absorb" if ev.get("absorb") else "")
            label = action + ("+absorb" if ev.get("absorb") else "")
        elif kind in ("pend_operation", "acquire_classify_handle", "pend_classify"):
            ln = _or(classify_lane.get(ev.get("id")), other_lane)
            if kind == "pend_operation":
                pend_at[("ctx", ev.get("ctx"))] = (x, ln)
            else:
                handle_lane[ev.get("handle")] = ln
                if kind == "pend_classify":
                    pend_at[("h", ev.get("handle"))] = (x, ln)
        elif kind == "complete_operation":
            start = pend_at.pop(("ctx", ev.get("ctx")), None)
            ln = start[1] if start else other_lane()
            if start:
                arrows.append(Arrow(start[0], start[1], x, ln, "pend"))
        elif kind in ("complete_classify", "release_classify_handle"):
            ln = _or(handle_lane.get(ev.get("handle")), other_lane)
            start = None
            if kind == "complete_classify":
                start = pend_at.pop(("h", ev.get("handle")), None)
            if start:
                arrows.append(Arrow(start[0], start[1], x, ln, "pend"))
        elif kind == "clone":
            ln = _or(packet_lane.get(ev.get("of")), other_lane)
            packet_lane[ev.get("packet")] = ln
        elif kind in ("inject", "inject_complete", "free_clone", "reference", "dereference"):
            ln = _or(packet_lane.get(ev.get("packet")), other_lane)
        elif kind == "decision":
            start = pend_at.get(("ctx", ev.get("ctx")))
            ln = start[1] if start else other_lane()
        elif kind in ("alloc", "free", "queue"):
            ep = ev.get("endpoint")
            ln = lane(("ep", ep), f"endpoint {ep}") if ep is not None else other_lane()
            if kind == "queue":
                packet_lane[ev.get("packet")] = ln
        elif kind in ("flow_associate", "flow_remove", "flow_delete"):
            ln = _or(flow_lane.get(ev.get("flow")), other_lane)
        elif kind in (
            "session_open", "session_close", "txn_begin", "txn_commit", "txn_abort",
            "txn_forced_abort", "object_add", "object_delete",
        ):
            session = ev.get("session")
            ln = lane(("s", session), f"BFE session {session}")
            if kind == "txn_begin" and str(ev.get("status")) in ("STATUS_SUCCESS", "S_OK"):
                txn_start[session] = (x, ln)
            elif kind in ("txn_commit", "txn_abort", "txn_forced_abort", "session_close"):
                start = txn_start.pop(session, None)
                if start:
                    end_css = {"txn_commit": "commit", "session_close": "closed"}.get(
                        str(kind), "abort"
                    )
                    bars.append(Bar(start[0], x, ln, f"txn {end_css}", str(kind)))
            if kind == "object_add":
                label = f"+{ev.get('type', '')}"
            elif kind == "object_delete":
                label = f"-{ev.get('type', '')}"
            status = str(ev.get("status", ""))
            if status and status not in ("STATUS_SUCCESS", "S_OK"):
                css += " failed"
        elif kind == "policy_change":
            rules_x.append((x, f"policy change {ev.get('layer', '')}"))
            continue
        else:
            ln = other_lane()
        rules = evidence.get(seq, []) if isinstance(seq, int) else []
        if rules:
            css += " violation"
        marks.append(Mark(x, ln, ev, str(kind), css, label, list(rules)))

    end = offset + len(selected)
    for session, (x0, ln) in txn_start.items():  # still open at the end
        bars.append(Bar(x0, end, ln, "txn open", f"session {session} never ended"))
    tl = Timeline(lanes, marks, arrows, bars, rules_x, end, truncated,
                  [band] if band else [])
    _elide(tl, offset, selected)
    return tl


def _elide(tl: Timeline, offset: int, selected: list[Event]) -> None:
    """Collapse stretches far from the start, the end and the evidence into
    one-slot gaps (so the first evidence is in view), then set the time ticks."""
    slots = tl.width - offset
    keep: set[int] = set()
    if slots > WINDOW:
        keep.update(range(offset, offset + HEAD))
        keep.update(range(tl.width - TAIL, tl.width))
        for m in tl.marks:
            if m.rules:
                keep.update(range(m.x - AROUND, m.x + AROUND + 1))
    else:
        keep.update(range(offset, tl.width))
    new_x: dict[int, int] = {}
    gaps: list[Band] = []
    x_out = offset
    run_start: int | None = None
    for x in range(offset, tl.width + 1):
        if x < tl.width and x not in keep:
            if run_start is None:
                run_start = x
            continue
        if run_start is not None:  # close an elided run: one gap slot
            n = x - run_start
            for hidden in range(run_start, x):
                new_x[hidden] = x_out
            t0, t1 = selected[run_start - offset].get("t"), selected[x - 1 - offset].get("t")
            gaps.append(Band(x_out, x_out, "gap", f"{n} events",
                             [f"{n} events not drawn, t={_t(t0)} to t={_t(t1)}"]))
            x_out += 1
            run_start = None
        if x < tl.width:
            new_x[x] = x_out
            x_out += 1
    hidden_x = {x for x in range(offset, tl.width) if x not in keep}
    tl.marks = [m for m in tl.marks if m.x not in hidden_x]
    for m in tl.marks:
        m.x = new_x.get(m.x, m.x)
    for a in tl.arrows:
        a.x1, a.x2 = new_x.get(a.x1, a.x1), new_x.get(a.x2, a.x2)
    for b in tl.bars:
        b.x1, b.x2 = new_x.get(b.x1, b.x1), new_x.get(b.x2, x_out)
    tl.rules_x = [(new_x[x], label) for x, label in tl.rules_x if x not in hidden_x]
    tl.bands.extend(gaps)
    # ticks: the time at the first drawn slot and then about every 10 slots
    gap_x = {g.x1 for g in gaps}
    times = {new_x[x]: selected[x - offset].get("t") for x in range(offset, tl.width)
             if x not in hidden_x}
    last = -100
    for x in sorted(times):
        if x in gap_x or x - last < 10:
            continue
        tl.ticks.append((x, f"t={_t(times[x])}"))
        last = x
    tl.width = x_out


def _t(value: object) -> str:
    from harness.contract.base import seconds

    return seconds(value) if isinstance(value, int | float) else "?"
