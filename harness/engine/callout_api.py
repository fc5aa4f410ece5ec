"""The callout side of the engine model: what a Python callout is and what it sees.

This mirrors fwpsk.h. A callout (:class:`Callout`) is registered for run-time
layers and has classifyFn, notifyFn and flowDeleteFn; it talks back to the
engine through a :class:`CalloutApi` (FwpsPendOperation0,
FwpsCompleteOperation0, FwpsAcquireClassifyHandle0, FwpsPendClassify0,
FwpsAllocateCloneNetBufferList0, FwpsInjectTransportReceiveAsync0,
FwpsFlowAssociateContext0, ...), which the engine implements in
``harness.engine.kernel``. The engine writes every indication and every API
call into the trace itself: a callout author never logs by hand.

Names: a callout registered as ``name`` gets one run-time callout key per
layer, ``name.LAYER`` (``reference.ALE_AUTH_CONNECT_V4``), as a driver
registers one FWPS callout per layer it filters at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from harness.callouts.settings import CalloutSettings
    from harness.engine.bfe import Session
    from harness.engine.objects import Filter
    from harness.trace.writer import TraceWriter

STATUS_SUCCESS = "STATUS_SUCCESS"
STATUS_PENDING = "STATUS_PENDING"
STATUS_OBJECT_NAME_EXISTS = "STATUS_OBJECT_NAME_EXISTS"
STATUS_DEVICE_BUSY = "STATUS_DEVICE_BUSY"
STATUS_NOT_FOUND = "STATUS_NOT_FOUND"
STATUS_INVALID_PARAMETER = "STATUS_INVALID_PARAMETER"
STATUS_FWP_CANNOT_PEND = "STATUS_FWP_CANNOT_PEND"
STATUS_FWP_INJECT_HANDLE_CLOSING = "STATUS_FWP_INJECT_HANDLE_CLOSING"
STATUS_FWP_TCPIP_NOT_READY = "STATUS_FWP_TCPIP_NOT_READY"

#: Layers (without _V4/_V6) where FwpsPendOperation0 may be called (PC003).
PEND_OPERATION_LAYERS = frozenset({
    "ALE_RESOURCE_ASSIGNMENT", "ALE_AUTH_LISTEN", "ALE_AUTH_RECV_ACCEPT", "ALE_AUTH_CONNECT",
})
#: Layers where FwpsPendClassify0 succeeds (PK003).
PEND_CLASSIFY_LAYERS = frozenset({
    "ALE_ENDPOINT_CLOSURE", "ALE_CONNECT_REDIRECT", "ALE_BIND_REDIRECT",
})


class ClassifyIn(NamedTuple):
    """One classifyFn call's inputs: fixed values, metadata and layer data in one value.

    Fields that do not apply at a layer are None (``endpoint`` at STREAM).
    ``flow_context`` is the context associated with this flow, layer and
    callout, if any; ``filter`` the filter that invoked the callout.
    """

    id: int
    layer: str
    callout: str
    endpoint: int | None
    parent: int | None
    flow: int | None
    proto: str
    dir: str
    local: str | None
    remote: str | None
    reauth: bool
    can_pend: bool
    ale_required: bool
    injection: str
    rights: bool
    packet: int | None
    flow_context: object
    filter: Filter | None

    @property
    def family(self) -> str:
        return self.layer[:-3]

    @property
    def version(self) -> str:
        return self.layer[-2:]


class ClassifyOut:
    """FWPS_CLASSIFY_OUT0: what the callout writes back.

    On entry ``action`` is CONTINUE and ``rights`` is the write right the
    engine grants; ``absorb`` is FWPS_CLASSIFY_OUT_FLAG_ABSORB.
    """

    __slots__ = ("absorb", "action", "rights")

    def __init__(self, rights: bool) -> None:
        self.action = "CONTINUE"
        self.absorb = False
        self.rights = rights

    def permit(self) -> None:
        self.action = "PERMIT"

    def block(self, *, absorb: bool = False, clear_right: bool = False) -> None:
        self.action = "BLOCK"
        self.absorb = absorb
        if clear_right:
            self.rights = False


class PendResult(NamedTuple):
    """What FwpsPendOperation0 / FwpsAcquireClassifyHandle0 / a clone give back."""

    status: str
    handle: int | None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_SUCCESS


InjectDone = Callable[[int, str], None]


class CalloutApi(Protocol):
    """The fwpsk calls a callout makes. Each one is written to the trace by the engine."""

    @property
    def now(self) -> float: ...

    # ALE pend/complete
    def pend_operation(self, ci: ClassifyIn) -> PendResult: ...
    def complete_operation(self, ctx: int, packet: int | None = None) -> None: ...
    # pended classification
    def acquire_classify_handle(self, ci: ClassifyIn) -> PendResult: ...
    def release_classify_handle(self, handle: int) -> None: ...
    def pend_classify(self, handle: int, ci: ClassifyIn) -> str: ...
    def complete_classify(self, handle: int, action: str | None) -> None: ...
    # packets
    def clone(self, packet: int) -> PendResult: ...
    def free_clone(self, packet: int) -> None: ...
    def reference(self, packet: int) -> None: ...
    def dereference(self, packet: int) -> None: ...
    def inject(
        self, kind: str, packet: int, *, endpoint: int | None = None, flow: int | None = None,
        on_complete: InjectDone | None = None,
    ) -> str: ...
    # flow contexts
    def flow_associate(self, flow: int, layer: str, ctx: object) -> str: ...
    def flow_remove(self, flow: int, layer: str) -> str: ...
    # bookkeeping the checker follows
    def alloc(self, tag: str, endpoint: int | None = None) -> int: ...
    def free(self, obj: int) -> None: ...
    def decision(self, ctx: int, action: str) -> None: ...
    def queue(self, packet: int, endpoint: int) -> None: ...
    # a driver's own asynchronous work (a worker thread, a user-mode answer)
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...
    # the management API a driver calls from DriverEntry (fwpmk.h): FwpmEngineOpen0 from
    # kernel mode opens a BFE session whose transactions are never force-aborted; every
    # call on it writes its policy-client event (session_open with kernel true, ...)
    def open_kernel_session(self, *, dynamic: bool = False, txn_wait_ms: int = 0) -> Session: ...
    # what a driver host needs to see of the run: the engine's trace writer (to flush
    # it before control enters foreign code) and a packet's size in bytes (None: no
    # such packet)
    @property
    def trace_writer(self) -> TraceWriter: ...
    def packet_size(self, packet: int) -> int | None: ...


class Callout(Protocol):
    """A callout driver as the engine model runs it.

    ``layers`` are the run-time layers it registers a callout for; ``attach``
    is DriverEntry handing it the API; ``configure`` takes the scenario's
    settings before it starts (the probe's configuration IOCTL);
    ``classify``, ``notify`` and ``flow_delete`` are classifyFn, notifyFn and
    flowDeleteFn; ``unloaded`` is DriverUnload, after every callout
    unregistered.
    """

    name: str
    layers: tuple[str, ...]

    def attach(self, api: CalloutApi) -> None: ...
    def configure(self, settings: CalloutSettings) -> None: ...
    def unloaded(self) -> None: ...
    def classify(self, ci: ClassifyIn, out: ClassifyOut) -> None: ...
    def notify(self, type: str, filter: Filter) -> str: ...
    def flow_delete(self, layer: str, callout: str, flow: int, ctx: object) -> None: ...


def callout_key(name: str, layer: str) -> str:
    """The run-time callout key of callout ``name`` at ``layer``."""
    return f"{name}.{layer}"
