"""A trace as a timeline: lanes, marks, arrows and bars.

Endpoints are lanes; so are BFE sessions. Every event that concerns an
endpoint (its classifies, the calls made inside them, the completion of a
pend made there, the injection of a clone taken there) lands on that
endpoint's lane. Pend -> complete pairs become arrows, transactions become
bars, a policy change is a rule across all lanes. The x axis is event order
(``seq``): in virtual time many events share one instant, and order is what
a reader of a contract violation needs.
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
class Timeline:
    lanes: list[str]
    marks: list[Mark]
    arrows: list[Arrow]
    bars: list[Bar]
    rules_x: list[tuple[int, str]]  # policy changes: (x, label)
    width: int
    truncated: int = 0


def _short_layer(layer: str) -> str:
    fam = layer_family(layer)
    return fam.replace("ALE_", "").replace("AUTH_", "").replace("ENDPOINT_", "").lower()


def _or(value: int | None, fallback: Callable[[], int]) -> int:
    return fallback() if value is None else value


def build_timeline(
    events: list[Event], evidence: dict[int, list[str]] | None = None, max_marks: int = 2500
) -> Timeline:
    """Lay out ``events``; ``evidence`` maps seq -> rule IDs that cite it."""
    evidence = evidence or {}
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

    for x, ev in enumerate(selected):
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

    for session, (x0, ln) in txn_start.items():  # still open at the end
        bars.append(Bar(x0, len(selected), ln, "txn open", f"session {session} never ended"))
    return Timeline(lanes, marks, arrows, bars, rules_x, len(selected), truncated)
