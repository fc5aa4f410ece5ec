"""A C driver as a callout of the engine model.

:class:`CCallout` plays the built shared object against the engine's callout
API: classifyFn, notifyFn and flowDeleteFn are called through the runtime's
``csim_*`` entry points with the engine's :class:`ClassifyIn` turned into a
``CSIM_CLASSIFY`` record, and every fwpsk call the driver makes comes back
through the ``CSIM_HOST`` table as a call on the engine's
:class:`~harness.engine.callout_api.CalloutApi` (which writes the trace).
Work items, timers and DPCs run on the engine's scheduler through
``call_later``. The driver's TraceLogging events arrive here too: ``alloc``,
``free``, ``decision`` and ``queue`` (the driver's own bookkeeping, which only
the driver knows) go into the trace; the rest are kept for the cross-check
against the engine's events (:mod:`harness.csim.crosscheck`).

Every instance loads its own copy of the shared object, so driver globals are
fresh for every scenario.
"""

from __future__ import annotations

import ctypes as C
import functools
import json
import shutil
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from harness.callouts.settings import CalloutSettings
from harness.csim import ffi
from harness.csim.bfe import DriverBfe
from harness.csim.config import IOCTL_PROBE_CONFIGURE, pack, parse_remote
from harness.csim.layers import (
    FWP_ACTIONS,
    FWP_CONDITION_FLAG_IS_REAUTHORIZE,
    FWP_CONDITION_FLAG_REQUIRES_ALE_CLASSIFY,
    INJECTION_STATES,
    LAYER_IDS,
    LAYER_NAMES,
    PROTOCOLS,
)
from harness.csim.manifest import SimManifest
from harness.engine.callout_api import CalloutApi, ClassifyIn, ClassifyOut, callout_key
from harness.engine.objects import Filter
from harness.errors import DriverCrashed, TargetError
from harness.trace.status import name_for_value, value_of

#: Classifies remembered for calls the driver makes after classifyFn returned.
MAX_REMEMBERED = 4096
#: TraceLogging events kept for the cross-check.
MAX_TLG_EVENTS = 1_000_000
#: The driver's events that go into the trace (the rest are for the cross-check).
DRIVER_EVENTS = frozenset({"alloc", "free", "decision", "queue"})
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_NOT_SUPPORTED = 0xC00000BB
STATUS_INVALID_DEVICE_REQUEST = 0xC0000010
NOTIFY_TYPES = {"add_filter": 0, "delete_filter": 1}
MAX_WSTRING = 4096
#: The driver's TraceLogging stream is kept beside the trace, in this file.
TLG_SUFFIX = ".driver-tlg.jsonl"


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _status(name: str) -> int:
    """A status name as the NTSTATUS a kernel caller sees (FWP_E_X as STATUS_FWP_X)."""
    try:
        value = value_of(name)
    except KeyError:
        return _signed(STATUS_INVALID_PARAMETER)
    if value & 0xFFFF0000 == 0x80320000:
        value = 0xC0220000 | (value & 0xFFFF)
    return _signed(value)


@functools.lru_cache(maxsize=4096)
def _addr(text: str) -> tuple[int, bytes, int]:
    return parse_remote(text)


class CCallout:
    """One loaded C driver; see the module docstring."""

    def __init__(self, manifest: SimManifest, library: Path, spec: str) -> None:
        self.name = manifest.name
        self.spec = spec
        self.layers: tuple[str, ...] = tuple(layer for _, layer in manifest.layers)
        self._layer_of_key = dict(manifest.layers)
        self._manifest = manifest
        self._library = library
        self._lib_handle: C.CDLL | None = None
        self._api: CalloutApi | None = None
        self._settings: CalloutSettings | None = None  # None: the driver's own defaults
        #: Ask the probe to add its own provider, sublayer, callouts and filters (its
        #: PROBE_FLAG_ADD_POLICY, as in a guest); the scenario's installer then must not.
        self.add_policy = False
        self._loaded = False
        self._error: BaseException | None = None
        self._ids: dict[str, int] = {}          # layer -> run-time callout id
        self._layer_of_id: dict[int, str] = {}
        self._classifies: OrderedDict[int, ClassifyIn] = OrderedDict()
        self._handles: dict[int, ClassifyIn] = {}
        self._obj_of_ptr: dict[int, int] = {}
        self._ptr_of_obj: dict[int, int] = {}
        self._sidecar: IO[str] | None = None
        self._logged = 0
        self.flush: Callable[[], None] = lambda: None
        layer_of_runtime_key = {callout_key(self.name, layer): layer
                                for _, layer in manifest.layers}
        self._bfe = DriverBfe(
            lambda: self.api,
            {guid: callout_key(self.name, layer) for guid, layer in manifest.layers},
            lambda key: self._ids.get(layer_of_runtime_key.get(key, ""), 0))
        self._host = self._make_host()

    @property
    def _lib(self) -> C.CDLL:
        """The driver, loaded on first use from a private copy (fresh globals)."""
        if self._lib_handle is None:
            copy_dir = Path(tempfile.mkdtemp(prefix="csim-"))
            private = copy_dir / self._library.name
            try:
                shutil.copyfile(self._library, private)
                lib = ffi.load_library(private)
            finally:
                shutil.rmtree(copy_dir, ignore_errors=True)
            status = lib.csim_init(C.byref(self._host))
            if status != 0:
                raise TargetError(f"{self.spec}: the host runtime refused to start "
                                  f"(0x{status & 0xFFFFFFFF:08X})")
            self._lib_handle = lib
        return self._lib_handle

    # -- the Callout protocol ------------------------------------------------------------

    def attach(self, api: CalloutApi) -> None:
        """DriverEntry, then the configuration IOCTL."""
        self._api = api
        from harness.csim.process import in_child

        # A scenario in its child process: keep the trace on disk should the driver crash,
        # and the driver's stream beside it for the cross-check. In-process (simulate) a
        # crash ends the process anyway.
        isolated = in_child()
        self._lib.csim_tlg_select(1 if isolated else 0)
        if isolated:
            self.flush = flush_hook(api)
        trace = trace_path(api) if isolated else None
        if trace is not None and self._sidecar is None:
            # the driver's own TraceLogging stream, for the cross-check
            self._sidecar = open(f"{trace}{TLG_SUFFIX}", "w", encoding="utf-8")  # noqa: SIM115
            weakref.finalize(self, self._sidecar.close)
        if self._loaded:
            return
        status = self._enter(self._lib.csim_driver_entry)
        if status < 0:
            refused = "; ".join(self._bfe.refused)
            raise TargetError(f"{self.spec}: DriverEntry failed with {name_for_value(status)}"
                              + (f" (the model's BFE cannot express: {refused})" if refused
                                 else ""))
        self._loaded = True
        missing = [layer for layer in self.layers if layer not in self._ids]
        if missing:
            raise TargetError(f"{self.spec}: DriverEntry registered no callout for "
                              f"{', '.join(missing)} (listed in [[callouts]] of "
                              f"{self._manifest.path})")
        self._send_configuration()

    def configure(self, settings: CalloutSettings) -> None:
        self._settings = settings
        if self._loaded:
            self._send_configuration()

    def _send_configuration(self) -> None:
        if self._settings is None:
            return
        data = pack(self._settings, add_policy=self.add_policy)
        buf = C.create_string_buffer(data, len(data))
        status = self._enter(self._lib.csim_device_control, IOCTL_PROBE_CONFIGURE, buf, len(data))
        if status == _signed(STATUS_INVALID_DEVICE_REQUEST):
            return  # a driver without the probe's configuration IOCTL runs as it is
        if status < 0:
            raise TargetError(f"{self.spec}: IOCTL_PROBE_CONFIGURE failed with "
                              f"{name_for_value(status)}")

    def unloaded(self) -> None:
        """DriverUnload (every callout is unregistered already)."""
        if self._loaded:
            self._loaded = False
            self._enter(self._lib.csim_driver_unload)
            # engine handles the driver left open are closed with it (session_close events)
            self._bfe.close_all()
            leaks = pool_leaks(self.pool_report())
            if leaks:
                raise DriverCrashed(
                    f"{self.spec}: DriverUnload returned with pool still allocated: "
                    + ", ".join(f"tag {tag!r} {count} allocation(s) ({size} bytes)"
                                for tag, count, size in leaks))

    def classify(self, ci: ClassifyIn, out: ClassifyOut) -> None:
        callout_id = self._ids.get(ci.layer)
        layer_id = LAYER_IDS.get(ci.layer)
        if callout_id is None or layer_id is None:
            return
        c = ffi.CLASSIFY()
        c.id = ci.id
        c.layerId = layer_id
        c.calloutId = callout_id
        present = 0
        if ci.endpoint is not None:
            present |= ffi.HAS_ENDPOINT
            c.endpoint = ci.endpoint
        if ci.parent is not None:
            present |= ffi.HAS_PARENT
            c.parent = ci.parent
        if ci.flow is not None:
            present |= ffi.HAS_FLOW
            c.flow = ci.flow
        if ci.can_pend:
            present |= ffi.HAS_COMPLETION
        if ci.packet is not None:
            present |= ffi.HAS_PACKET
            c.packet = ci.packet
            c.packetSize = self._packet_size(ci.packet)
        if ci.ale_required:
            present |= ffi.HAS_ALE_REQUIRED
        c.present = present
        flags = FWP_CONDITION_FLAG_IS_REAUTHORIZE if ci.reauth else 0
        if ci.ale_required:
            flags |= FWP_CONDITION_FLAG_REQUIRES_ALE_CLASSIFY
        c.conditionFlags = flags
        c.injection = INJECTION_STATES.get(ci.injection, 0)
        c.rights = 1 if ci.rights else 0
        c.protocol = PROTOCOLS.get(ci.proto, 255)
        c.direction = 1 if ci.dir == "in" else 0
        if isinstance(ci.flow_context, int):
            c.flowContext = self._ptr_of_obj.get(ci.flow_context, 0)
        for text, target in ((ci.local, c.local), (ci.remote, c.remote)):
            if text:
                family, raw, port = _addr(text)
                target.family = family
                target.port = port
                target.bytes[:] = raw
        self._classifies[ci.id] = ci
        if len(self._classifies) > MAX_REMEMBERED:
            self._classifies.popitem(last=False)
        result = ffi.RESULT()
        self._enter(self._lib.csim_classify, C.byref(c), C.byref(result))
        out.action = FWP_ACTIONS.get(result.actionType, "NONE")
        out.absorb = bool(result.flags & 0x1)
        out.rights = bool(result.rights & 0x1)

    def notify(self, type: str, filter: Filter) -> str:
        layer = filter.layer
        callout_id = self._ids.get(layer)
        if callout_id is None:
            return "STATUS_SUCCESS"
        status = self._enter(self._lib.csim_notify, callout_id, NOTIFY_TYPES.get(type, 0),
                             filter.filter_id, 0, LAYER_IDS.get(layer, 0))
        return name_for_value(status)

    def flow_delete(self, layer: str, callout: str, flow: int, ctx: object) -> None:
        callout_id = self._ids.get(layer)
        if callout_id is None:
            return
        ptr = self._ptr_of_obj.get(ctx, 0) if isinstance(ctx, int) else 0
        self._enter(self._lib.csim_flow_delete, LAYER_IDS[layer], callout_id, ptr)

    def pool_report(self) -> str:
        """Outstanding pool per tag: ``TAG live bytes total`` lines."""
        buf = C.create_string_buffer(8192)
        n = self._lib.csim_pool_report(buf, len(buf))
        return buf.raw[:n].decode("ascii", "replace")

    # -- calling into C and back ---------------------------------------------------------

    def _enter(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.flush()  # the trace so far is on disk should the driver crash
        if self._sidecar is not None:
            self._sidecar.flush()
        result = fn(*args)
        if self._sidecar is not None:
            self._sidecar.flush()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return result

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def _guard(self, default: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A host callback that never lets a Python exception unwind through C."""

        def call(*args: Any) -> Any:
            if self._error is not None:
                return default
            try:
                return fn(*args)
            except BaseException as exc:  # re-raised where C returns to Python
                self._fail(exc)
                return default

        return call

    @property
    def api(self) -> CalloutApi:
        if self._api is None:
            raise DriverCrashed(f"{self.spec}: the driver called the engine before DriverEntry")
        return self._api

    def _ci(self, classify_id: int) -> ClassifyIn | None:
        return self._classifies.get(classify_id)

    def _packet_size(self, packet: int) -> int:
        # the model's packets have a size but no payload; the runtime makes a buffer
        size = self.api.packet_size(packet)
        return size if size is not None and 0 <= size <= 65535 else 512

    def _make_host(self) -> ffi.HOST:
        bad = _signed(STATUS_INVALID_PARAMETER)

        def pend_operation(classify_id: int, out: Any) -> int:
            ci = self._ci(classify_id)
            if ci is None:
                return bad
            r = self.api.pend_operation(ci)
            if r.handle is not None:
                out[0] = r.handle
            return _status(r.status)

        def complete_operation(ctx: int, packet: int) -> None:
            self.api.complete_operation(ctx, packet or None)

        def acquire(classify_id: int, out: Any) -> int:
            ci = self._ci(classify_id)
            if ci is None:
                return bad
            r = self.api.acquire_classify_handle(ci)
            if r.handle is not None:
                out[0] = r.handle
                self._handles[r.handle] = ci
            return _status(r.status)

        def release(handle: int) -> None:
            self.api.release_classify_handle(handle)

        def pend_classify(handle: int) -> int:
            ci = self._handles.get(handle)
            if ci is None:
                return bad
            return _status(self.api.pend_classify(handle, ci))

        def complete_classify(handle: int, action: int) -> None:
            self.api.complete_classify(handle, FWP_ACTIONS.get(action) if action else None)

        def clone(packet: int, out: Any) -> int:
            r = self.api.clone(packet)
            if r.handle is not None:
                out[0] = r.handle
            return _status(r.status)

        def inject(kind: int, packet: int, endpoint: int, flow: int, cookie: int) -> int:
            done = None
            if cookie:
                def done(_packet: int, status: str) -> None:
                    self._enter(self._lib.csim_inject_complete, cookie, _status(status))
            return _status(self.api.inject(
                ffi.INJECT_KINDS.get(kind, "transport_recv"), packet,
                endpoint=endpoint or None, flow=flow or None, on_complete=done))

        def flow_associate(flow: int, layer_id: int, callout_id: int, ctx: int) -> int:
            layer = LAYER_NAMES.get(layer_id)
            if layer is None:
                return bad
            return _status(self.api.flow_associate(flow, layer, self._obj_of_ptr.get(ctx, ctx)))

        def flow_remove(flow: int, layer_id: int, callout_id: int) -> int:
            layer = LAYER_NAMES.get(layer_id)
            if layer is None:
                return bad
            return _status(self.api.flow_remove(flow, layer))

        def register(callout_id: int, key: Any) -> int:
            text = key.contents.text()
            layer = self._layer_of_key.get(text)
            if layer is None:
                raise TargetError(f"{self.spec}: DriverEntry registered callout key {{{text}}}, "
                                  f"which [[callouts]] of {self._manifest.path} does not list")
            self._ids[layer] = callout_id
            self._layer_of_id[callout_id] = layer
            return 0

        def unregister(callout_id: int) -> int:
            return 0  # the engine unregisters the keys itself (Engine.unregister)

        def call_later(delay_100ns: int, cookie: int) -> None:
            self.api.call_later(delay_100ns / 1e7, lambda: self._enter(self._lib.csim_fire, cookie))

        def trace(provider: bytes, name: bytes, fields: Any, count: int) -> None:
            kind = name.decode("ascii", "replace")
            if kind in DRIVER_EVENTS or self._sidecar is not None:
                self._on_trace(kind, _decode_fields(fields, count))

        def fatal(message: bytes) -> None:
            self.flush()

        def now() -> int:
            return round(self.api.now * 1e7)

        def bfe(op: int, session: int, args: Any, out: Any) -> int:
            # FwpmEngineOpen0 ... FwpmFilterDeleteById0: a kernel session on the model's BFE
            return _status(self._bfe.call(ffi.BFE_OPS.get(op, ""), session, args, out))

        g = self._guard
        host = ffi.HOST()
        host.version = ffi.ABI_VERSION
        host.pend_operation = ffi.PEND_OPERATION(g(bad, pend_operation))
        host.complete_operation = ffi.COMPLETE_OPERATION(g(None, complete_operation))
        host.acquire_classify_handle = ffi.ACQUIRE(g(bad, acquire))
        host.release_classify_handle = ffi.RELEASE(g(None, release))
        host.pend_classify = ffi.PEND_CLASSIFY(g(bad, pend_classify))
        host.complete_classify = ffi.COMPLETE_CLASSIFY(g(None, complete_classify))
        host.clone = ffi.CLONE(g(bad, clone))
        host.free_clone = ffi.PACKET(g(None, lambda p: self.api.free_clone(p)))
        host.reference = ffi.PACKET(g(None, lambda p: self.api.reference(p)))
        host.dereference = ffi.PACKET(g(None, lambda p: self.api.dereference(p)))
        host.inject = ffi.INJECT(g(bad, inject))
        host.flow_associate = ffi.FLOW_ASSOCIATE(g(bad, flow_associate))
        host.flow_remove = ffi.FLOW_REMOVE(g(bad, flow_remove))
        host.callout_register = ffi.REGISTER(g(bad, register))
        host.callout_unregister = ffi.UNREGISTER(g(0, unregister))
        host.call_later = ffi.CALL_LATER(g(None, call_later))
        host.trace = ffi.TRACE(g(None, trace))
        host.fatal = ffi.FATAL(g(None, fatal))
        host.now100ns = ffi.NOW(g(0, now))
        host.bfe = ffi.BFE(g(_signed(STATUS_NOT_SUPPORTED), bfe))
        return host

    # -- TraceLogging ----------------------------------------------------------------------

    def _on_trace(self, name: str, fields: dict[str, object]) -> None:
        api = self.api
        if name == "alloc":
            ptr = _int(fields, "obj")
            endpoint = fields.get("endpoint")
            obj = api.alloc(str(fields.get("tag", "")),
                            endpoint if isinstance(endpoint, int) else None)
            self._obj_of_ptr[ptr] = obj
            self._ptr_of_obj[obj] = ptr
            fields = {**fields, "obj": obj}
        elif name == "free":
            ptr = _int(fields, "obj")
            freed = self._obj_of_ptr.pop(ptr, None)
            if freed is None:
                raise DriverCrashed(f"{self.spec}: the driver logged a free of 0x{ptr:x}, "
                                    "which it never logged as allocated")
            self._ptr_of_obj.pop(freed, None)
            api.free(freed)
            fields = {**fields, "obj": freed}
        elif name == "decision":
            api.decision(_int(fields, "ctx"), str(fields.get("action", "")))
        elif name == "queue":
            packet = self._lib.csim_packet_of(_int(fields, "packet"))
            api.queue(packet, _int(fields, "endpoint"))
            fields = {**fields, "packet": packet}
        else:
            fields = self._engine_ids(name, fields)
        if self._sidecar is not None and self._logged < MAX_TLG_EVENTS:
            self._logged += 1
            self._sidecar.write(json.dumps({"ev": name, **fields}) + "\n")

    def _engine_ids(self, name: str, fields: dict[str, object]) -> dict[str, object]:
        """The driver's pointers (NET_BUFFER_LISTs, its contexts) as the engine's ids."""
        out = dict(fields)
        for key in ("packet", "of"):
            if key in out:
                out[key] = self._lib.csim_packet_of(_int(out, key))
        if name == "flow_associate" and "ctx" in out:
            out["ctx"] = self._obj_of_ptr.get(_int(out, "ctx"), _int(out, "ctx"))
        return out


def pool_leaks(report: str) -> list[tuple[str, int, int]]:
    """(tag, outstanding allocations, outstanding bytes) of every tag in a
    :meth:`CCallout.pool_report` with allocations not freed."""
    leaks = []
    for line in report.splitlines():
        tag, parts = line[:4], line[5:].split()  # a tag is four characters, spaces included
        if len(parts) == 3 and parts[0].isdigit() and int(parts[0]) > 0:
            leaks.append((tag, int(parts[0]), int(parts[1])))
    return leaks


def _int(fields: dict[str, object], key: str) -> int:
    value = fields.get(key, 0)
    return value if isinstance(value, int) else 0


def _decode_fields(fields: Any, count: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for i in range(min(count, 64)):
        f = fields[i]
        kind = ffi.TLG_TYPES.get(f.type, "meta")
        name = (f.name or b"").decode("ascii", "replace")
        if kind == "meta":
            continue
        value: object
        if kind in ("u32", "u64", "hex32", "hex64", "ptr"):
            value = int(f.v.u)
        elif kind in ("i32", "i64"):
            value = int(f.v.i)
        elif kind == "bool":
            value = bool(f.v.u)
        elif kind == "str":
            value = (f.v.s or b"").decode("utf-8", "replace")
        elif kind == "wstr":
            value = _wide(f.v.w)
        else:
            value = "{" + f.v.g.text() + "}"
        out[name] = value
    return out


def _wide(address: int | None) -> str:
    """A 16-bit WCHAR string (-fshort-wchar), read up to its terminator."""
    if not address:
        return ""
    units = C.cast(address, C.POINTER(C.c_uint16))
    chars: list[int] = []
    for i in range(MAX_WSTRING):
        unit = units[i]
        if unit == 0:
            break
        chars.append(unit)
    return bytes(b for u in chars for b in u.to_bytes(2, "little")).decode("utf-16-le", "replace")


def flush_hook(api: CalloutApi) -> Callable[[], None]:
    """How to flush the engine's trace file before control enters the driver."""
    return api.trace_writer.flush


def trace_path(api: CalloutApi) -> str | None:
    """The engine's trace file, when it writes one."""
    return api.trace_writer.path
