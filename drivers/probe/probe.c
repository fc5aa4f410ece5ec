/*
 * probe.c - the callout-harness probe: the C reference callout driver.
 *
 * It does what the harness's Python reference callout does (an inspect-like
 * driver with the stream editing of stmedit), at every layer, IPv4 and IPv6:
 *
 *   ALE_AUTH_CONNECT        pends the connect (FwpsPendOperation0), holds the
 *                           indicated datagram by reference, and completes it
 *                           (FwpsCompleteOperation0) when the decision arrives
 *                           after the configured delay (a timer DPC stands in for
 *                           the user-mode service); the reauthorization that
 *                           follows is answered from the recorded decision
 *   ALE_AUTH_RECV_ACCEPT    the same, with a clone of the indicated packet that is
 *                           reinjected (permit) or freed (block) after completing
 *   ALE_RESOURCE_ASSIGNMENT, ALE_AUTH_LISTEN
 *                           allocate the per-endpoint context
 *   ALE_ENDPOINT_CLOSURE    completes what is still pended on the endpoint, and
 *                           when datagrams or stream data are still queued pends
 *                           the closure (FwpsPendClassify0), drains, then completes
 *   ALE_RESOURCE_RELEASE    frees the context of an endpoint that had no closure
 *   INBOUND/OUTBOUND_TRANSPORT
 *                           inspects UDP datagrams out of band: clone, absorb,
 *                           reinject after a delay (never a packet that still
 *                           needs ALE classification)
 *   ALE_FLOW_ESTABLISHED    associates a flow context for the STREAM layer
 *   STREAM                  edits chosen TCP streams out of band (clone, absorb,
 *                           inject in order); removes the flow context itself on
 *                           some flows (flowDeleteFn frees it on the others)
 *
 * The scenario's [callout] settings arrive through IOCTL_PROBE_CONFIGURE on the
 * probe's device (probe_ioctl.h): from the harness's step agent in a Windows
 * guest, from the host runtime on the engine model. With PROBE_FLAG_ADD_POLICY
 * the probe adds its provider, sublayer, callouts and filters itself.
 *
 * Locking: the probe's lists are touched from classifyFn, timer DPCs, injection
 * completions and flowDeleteFn. FwpsCompleteOperation0 and the injection calls can
 * re-enter classifyFn (the reauthorization), so no lock may be held across them;
 * the model runs one thread of control, and a lab build for multi-processor
 * machines must add a lock around each list operation (not around those calls).
 *
 * Every TraceLogging event is a trace-format kind with trace-format fields
 * (drivers/README.md gives the mapping). Handles are logged as hex UINT64,
 * statuses as hex UINT32, packets as pointers.
 *
 * Builds: the WDK in the lab (drivers/README.md), and gcc on Linux against the
 * harness's host headers (driver.toml [sim]), where the engine model runs it.
 * -DPROBE_MUTANT_<NAME> builds one of the C mutants listed in driver.toml.
 */

#define NDIS61 1
#define NDIS_SUPPORT_NDIS61 1

#include <ntddk.h>
#include <wdm.h>
#ifdef _MSC_VER
#pragma warning(push)
#pragma warning(disable : 4201)
#endif
#include <fwpsk.h>
#ifdef _MSC_VER
#pragma warning(pop)
#endif
#include <fwpmk.h>
#include <ntstrsafe.h>
#include <TraceLoggingProvider.h>
#include <evntrace.h>
#define INITGUID
#include <guiddef.h>

#include "probe_ioctl.h"

#define PROBE_TAG_ENDPOINT 'xcPE'  /* "EPcx" in a pool dump */
#define PROBE_TAG_PEND     'DNEP'  /* "PEND" */
#define PROBE_TAG_FLOW     'xcLF'  /* "FLcx" */
#define PROBE_TAG_WORK     'kroW'  /* "Work": the probe's own bookkeeping */

/* {6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}: etw_provider in driver.toml */
TRACELOGGING_DEFINE_PROVIDER(
    g_Trace, "CalloutProbe",
    (0x6b2b7a63, 0x6c1b, 0x4e58, 0x9c, 0x1b, 0x3e, 0x1a, 0x0c, 0x6f, 0x5a, 0x01));

/* provider_key and sublayer: must equal driver.toml */
DEFINE_GUID(PROBE_PROVIDER_KEY,
    0x3f0b1c2d, 0x4e5f, 0x4a6b, 0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d);
DEFINE_GUID(PROBE_SUBLAYER_KEY,
    0x3f0b1c2d, 0x4e5f, 0x4a6b, 0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4e);

/* Layer families, in the order of the callout table below. */
enum {
    FAM_ASSIGNMENT, FAM_RELEASE, FAM_LISTEN, FAM_CONNECT, FAM_RECV_ACCEPT, FAM_FLOW,
    FAM_CLOSURE, FAM_INBOUND, FAM_OUTBOUND, FAM_STREAM, FAM_COUNT
};

typedef struct _PROBE_CALLOUT {
    GUID key;                  /* {9A1E5C10-2B3D-4F60-A172-8394A5B6C7nn}, nn = 01.. */
    UINT16 layerId;            /* FWPS_LAYER_* */
    const GUID *layerKey;      /* FWPM_LAYER_* */
    const char *layerName;     /* as the trace format spells it */
    int family;
    int v6;
    UINT32 runtimeId;
} PROBE_CALLOUT;

#define PROBE_KEY(n) { 0x9a1e5c10, 0x2b3d, 0x4f60, { 0xa1, 0x72, 0x83, 0x94, 0xa5, 0xb6, 0xc7, n } }
#define PROBE_LAYER(fam, n4, n6, name) \
    { PROBE_KEY(n4), FWPS_LAYER_##name##_V4, &FWPM_LAYER_##name##_V4, #name "_V4", fam, 0, 0 }, \
    { PROBE_KEY(n6), FWPS_LAYER_##name##_V6, &FWPM_LAYER_##name##_V6, #name "_V6", fam, 1, 0 }

static PROBE_CALLOUT g_Callouts[] = {
    PROBE_LAYER(FAM_ASSIGNMENT, 0x01, 0x02, ALE_RESOURCE_ASSIGNMENT),
    PROBE_LAYER(FAM_RELEASE, 0x03, 0x04, ALE_RESOURCE_RELEASE),
    PROBE_LAYER(FAM_LISTEN, 0x05, 0x06, ALE_AUTH_LISTEN),
    PROBE_LAYER(FAM_CONNECT, 0x07, 0x08, ALE_AUTH_CONNECT),
    PROBE_LAYER(FAM_RECV_ACCEPT, 0x09, 0x0a, ALE_AUTH_RECV_ACCEPT),
    PROBE_LAYER(FAM_FLOW, 0x0b, 0x0c, ALE_FLOW_ESTABLISHED),
    PROBE_LAYER(FAM_CLOSURE, 0x0d, 0x0e, ALE_ENDPOINT_CLOSURE),
    PROBE_LAYER(FAM_INBOUND, 0x0f, 0x10, INBOUND_TRANSPORT),
    PROBE_LAYER(FAM_OUTBOUND, 0x11, 0x12, OUTBOUND_TRANSPORT),
    PROBE_LAYER(FAM_STREAM, 0x13, 0x14, STREAM),
};
#define PROBE_CALLOUT_COUNT (sizeof(g_Callouts) / sizeof(g_Callouts[0]))

/* Where the fields a callout reads sit at each layer (-1: not at this layer). */
typedef struct _PROBE_FIELDS { INT16 remoteAddress, remotePort, protocol, flags; } PROBE_FIELDS;
static const PROBE_FIELDS g_Fields[FAM_COUNT] = {
    [FAM_ASSIGNMENT] = { -1, -1, FWPS_FIELD_ALE_RESOURCE_ASSIGNMENT_V4_IP_PROTOCOL,
                         FWPS_FIELD_ALE_RESOURCE_ASSIGNMENT_V4_FLAGS },
    [FAM_RELEASE] = { -1, -1, FWPS_FIELD_ALE_RESOURCE_RELEASE_V4_IP_PROTOCOL,
                      FWPS_FIELD_ALE_RESOURCE_RELEASE_V4_FLAGS },
    [FAM_LISTEN] = { -1, -1, -1, FWPS_FIELD_ALE_AUTH_LISTEN_V4_FLAGS },
    [FAM_CONNECT] = { FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_REMOTE_ADDRESS,
                      FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_REMOTE_PORT,
                      FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_PROTOCOL,
                      FWPS_FIELD_ALE_AUTH_CONNECT_V4_FLAGS },
    [FAM_RECV_ACCEPT] = { FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_REMOTE_ADDRESS,
                          FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_REMOTE_PORT,
                          FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_PROTOCOL,
                          FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_FLAGS },
    [FAM_FLOW] = { FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_REMOTE_ADDRESS,
                   FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_REMOTE_PORT,
                   FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_PROTOCOL,
                   FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_FLAGS },
    [FAM_CLOSURE] = { FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_REMOTE_ADDRESS,
                      FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_REMOTE_PORT,
                      FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_PROTOCOL,
                      FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_FLAGS },
    [FAM_INBOUND] = { FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
                      FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_REMOTE_PORT,
                      FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_PROTOCOL,
                      FWPS_FIELD_INBOUND_TRANSPORT_V4_FLAGS },
    [FAM_OUTBOUND] = { FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
                       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT,
                       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL,
                       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_FLAGS },
    [FAM_STREAM] = { FWPS_FIELD_STREAM_V4_IP_REMOTE_ADDRESS, FWPS_FIELD_STREAM_V4_IP_REMOTE_PORT,
                     -1, FWPS_FIELD_STREAM_V4_FLAGS },
};

/* -- the driver's state ----------------------------------------------------------------- */

typedef struct _PROBE_ADDR {
    UINT8 present;
    UINT8 family;         /* 4 or 6 */
    UINT16 port;          /* host order */
    UINT8 address[16];    /* network order */
} PROBE_ADDR;

/* One classify, as the probe reads it from the incoming values and metadata. */
typedef struct _PROBE_CI {
    const PROBE_CALLOUT *callout;
    int family;
    UINT64 endpoint;
    BOOLEAN hasEndpoint;
    UINT64 flow;
    BOOLEAN hasFlow;
    UINT8 protocol;
    PROBE_ADDR remote;
    BOOLEAN reauth;
    BOOLEAN canPend;
    BOOLEAN aleRequired;
    BOOLEAN rights;
    FWPS_PACKET_INJECTION_STATE injection;
    PNET_BUFFER_LIST packet;
    FWPS_STREAM_DATA0 *stream;
    const FWPS_INCOMING_METADATA_VALUES0 *meta;
    const void *classifyContext;
} PROBE_CI;

typedef struct _PROBE_ENDPOINT {     /* pool tag EPcx: the per-endpoint context */
    LIST_ENTRY link;
    UINT64 endpoint;
} PROBE_ENDPOINT;

typedef struct _PROBE_PEND {         /* pool tag PEND: one pended ALE operation */
    LIST_ENTRY link;
    HANDLE ctx;
    UINT64 endpoint;
    PROBE_ADDR remote;
    PNET_BUFFER_LIST clone;          /* RECV_ACCEPT: the packet to reinject or free */
    PNET_BUFFER_LIST referenced;     /* AUTH_CONNECT: the datagram held by reference */
    BOOLEAN v6;
} PROBE_PEND;

typedef struct _PROBE_VERDICT {
    LIST_ENTRY link;
    UINT64 endpoint;
    PROBE_ADDR remote;
    UINT32 action;
} PROBE_VERDICT;

typedef struct _PROBE_HELD {         /* a clone held for later injection */
    LIST_ENTRY link;
    UINT64 serial;
    PNET_BUFFER_LIST nbl;
    BOOLEAN receive;                 /* transport: reinject inbound, else outbound */
    BOOLEAN v6;
    UINT64 endpoint;
} PROBE_HELD;

typedef struct _PROBE_QUEUE {        /* the datagrams held for one endpoint */
    LIST_ENTRY link;
    UINT64 endpoint;
    LIST_ENTRY held;
} PROBE_QUEUE;

typedef struct _PROBE_COUNT {        /* injections in flight for one endpoint */
    LIST_ENTRY link;
    UINT64 endpoint;
    LONG count;
} PROBE_COUNT;

typedef struct _PROBE_CLOSING {      /* a pended closure */
    LIST_ENTRY link;
    UINT64 endpoint;
    UINT64 handle;
} PROBE_CLOSING;

typedef struct _PROBE_STREAM {       /* one TCP flow at the STREAM layer */
    LIST_ENTRY link;
    UINT64 flow;
    UINT64 endpoint;
    BOOLEAN hasEndpoint;
    BOOLEAN v6;
    BOOLEAN scheduled;
    LONG segments;                   /* -1: an edited flow */
    LONG inFlight;
    LIST_ENTRY waiting;              /* absorbed, not yet injected (PROBE_HELD) */
} PROBE_STREAM;

typedef struct _PROBE_FLOWCTX {      /* pool tag FLcx: a flow context */
    LIST_ENTRY link;
    UINT64 flow;
    BOOLEAN attached;
} PROBE_FLOWCTX;

enum { DEFER_COMPLETE = 1, DEFER_RELEASE_HELD, DEFER_DRAIN_STREAM, DEFER_COMPLETE_REAUTH };
typedef struct _PROBE_DEFER {        /* one delayed call on a timer DPC */
    KTIMER timer;
    KDPC dpc;
    int kind;
    UINT64 key;
    UINT32 action;
} PROBE_DEFER;

typedef struct _PROBE_INJECTED {     /* what an injection completion needs */
    UINT64 endpoint;
    BOOLEAN hasEndpoint;
    PROBE_STREAM *stream;
} PROBE_INJECTED;

static PDEVICE_OBJECT g_Device;
static HANDLE g_Engine;
static HANDLE g_Inject4, g_Inject6;
static KSPIN_LOCK g_Lock;
static PROBE_CONFIG g_Config;
static LIST_ENTRY g_Endpoints, g_Pended, g_Verdicts, g_Queues, g_InFlight, g_Closing;
static LIST_ENTRY g_Streams, g_FlowContexts;
static UINT64 g_NextSerial;
static volatile LONG64 g_ClassifyId;
static const WCHAR g_DeviceName[] = PROBE_DEVICE_NAME;
static const WCHAR g_SymlinkName[] = PROBE_SYMLINK_NAME;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD ProbeUnload;
static void ProbeMaybeFinishClosure(UINT64 endpoint);
static void ProbeDrainStream(UINT64 flow);

/* -- tracing: the events the trace format defines ----------------------------------------- */

static void ProbeTraceAlloc(const void *obj, const PROBE_CI *ci, const char *tag)
{
    if (ci != NULL && ci->hasEndpoint) {
        TraceLoggingWrite(g_Trace, "alloc", TraceLoggingPointer(obj, "obj"),
            TraceLoggingHexUInt64(ci->endpoint, "endpoint"), TraceLoggingString(tag, "tag"));
    } else {
        TraceLoggingWrite(g_Trace, "alloc", TraceLoggingPointer(obj, "obj"),
            TraceLoggingString(tag, "tag"));
    }
}

static void ProbeTraceFree(const void *obj)
{
    TraceLoggingWrite(g_Trace, "free", TraceLoggingPointer(obj, "obj"));
}

static const char *ProbeActionName(UINT32 action)
{
    switch (action) {
    case FWP_ACTION_PERMIT: return "PERMIT";
    case FWP_ACTION_BLOCK: return "BLOCK";
    case FWP_ACTION_CONTINUE: return "CONTINUE";
    default: return "NONE";
    }
}

/* -- the fwpsk calls, each logged as the trace format's event for it ------------------------- */
/* Calls with a result are logged after they return; calls without one before they are made,
 * because FwpsCompleteOperation0 and friends can re-enter classifyFn. */

static UINT64 g_CurrentClassify;  /* the id of the classify being handled, 0 outside one */

static NTSTATUS ProbePendOperation(HANDLE completionHandle, HANDLE *completionContext)
{
    NTSTATUS status = FwpsPendOperation0(completionHandle, completionContext);
    TraceLoggingWrite(g_Trace, "pend_operation", TraceLoggingUInt64(g_CurrentClassify, "id"),
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)(NT_SUCCESS(status) ? *completionContext : NULL),
                              "ctx"),
        TraceLoggingHexUInt32((UINT32)status, "status"));
    return status;
}

static void ProbeCompleteOperation(HANDLE completionContext, PNET_BUFFER_LIST netBufferList)
{
    TraceLoggingWrite(g_Trace, "complete_operation",
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)completionContext, "ctx"));
    FwpsCompleteOperation0(completionContext, netBufferList);
}

static NTSTATUS ProbeAcquireClassifyHandle(void *classifyContext, UINT32 reserved, UINT64 *handle)
{
    NTSTATUS status = FwpsAcquireClassifyHandle0(classifyContext, reserved, handle);
    TraceLoggingWrite(g_Trace, "acquire_classify_handle",
        TraceLoggingUInt64(g_CurrentClassify, "id"),
        TraceLoggingHexUInt64(NT_SUCCESS(status) ? *handle : 0, "handle"),
        TraceLoggingHexUInt32((UINT32)status, "status"));
    return status;
}

static NTSTATUS ProbePendClassify(UINT64 handle, UINT64 filterId, UINT32 flags,
                                  FWPS_CLASSIFY_OUT0 *out)
{
    NTSTATUS status = FwpsPendClassify0(handle, filterId, flags, out);
    TraceLoggingWrite(g_Trace, "pend_classify", TraceLoggingUInt64(g_CurrentClassify, "id"),
        TraceLoggingHexUInt64(handle, "handle"), TraceLoggingHexUInt32((UINT32)status, "status"));
    return status;
}

static void ProbeCompleteClassify(UINT64 handle, UINT32 flags, const FWPS_CLASSIFY_OUT0 *out)
{
    TraceLoggingWrite(g_Trace, "complete_classify", TraceLoggingHexUInt64(handle, "handle"),
        TraceLoggingHexUInt32(out != NULL ? out->actionType : 0, "action"));
    FwpsCompleteClassify0(handle, flags, out);
}

static void ProbeReleaseClassifyHandle(UINT64 handle)
{
    TraceLoggingWrite(g_Trace, "release_classify_handle", TraceLoggingHexUInt64(handle, "handle"));
    FwpsReleaseClassifyHandle0(handle);
}

static NTSTATUS ProbeAllocateClone(PNET_BUFFER_LIST original, NDIS_HANDLE pool1,
                                   NDIS_HANDLE pool2, ULONG flags, PNET_BUFFER_LIST *clone)
{
    NTSTATUS status = FwpsAllocateCloneNetBufferList0(original, pool1, pool2, flags, clone);
    TraceLoggingWrite(g_Trace, "clone",
        TraceLoggingPointer(NT_SUCCESS(status) ? *clone : NULL, "packet"),
        TraceLoggingPointer(original, "of"), TraceLoggingHexUInt32((UINT32)status, "status"));
    return status;
}

static NTSTATUS ProbeCloneStream(FWPS_STREAM_DATA0 *data, NDIS_HANDLE pool1, NDIS_HANDLE pool2,
                                 ULONG flags, PNET_BUFFER_LIST *chain)
{
    NTSTATUS status = FwpsCloneStreamData0(data, pool1, pool2, flags, chain);
    TraceLoggingWrite(g_Trace, "clone",
        TraceLoggingPointer(NT_SUCCESS(status) ? *chain : NULL, "packet"),
        TraceLoggingPointer(data->netBufferListChain, "of"),
        TraceLoggingHexUInt32((UINT32)status, "status"));
    return status;
}

static void ProbeFreeCloneNbl(PNET_BUFFER_LIST nbl, ULONG flags)
{
    TraceLoggingWrite(g_Trace, "free_clone", TraceLoggingPointer(nbl, "packet"));
    FwpsFreeCloneNetBufferList0(nbl, flags);
}

static void ProbeDiscardStream(PNET_BUFFER_LIST chain, UINT32 flags, BOOLEAN dispatchLevel)
{
    TraceLoggingWrite(g_Trace, "free_clone", TraceLoggingPointer(chain, "packet"));
    FwpsDiscardClonedStreamData0(chain, flags, dispatchLevel);
}

static void ProbeReference(PNET_BUFFER_LIST nbl, BOOLEAN intendToModify)
{
    TraceLoggingWrite(g_Trace, "reference", TraceLoggingPointer(nbl, "packet"));
    FwpsReferenceNetBufferList0(nbl, intendToModify);
}

static void ProbeDereference(PNET_BUFFER_LIST nbl, BOOLEAN dispatchLevel)
{
    TraceLoggingWrite(g_Trace, "dereference", TraceLoggingPointer(nbl, "packet"));
    FwpsDereferenceNetBufferList0(nbl, dispatchLevel);
}

static void ProbeTraceInject(PNET_BUFFER_LIST nbl, const char *kind, NTSTATUS status)
{
    TraceLoggingWrite(g_Trace, "inject", TraceLoggingPointer(nbl, "packet"),
        TraceLoggingString(kind, "kind"), TraceLoggingHexUInt32((UINT32)status, "status"));
}

static void ProbeTraceInjected(PNET_BUFFER_LIST nbl)
{
    TraceLoggingWrite(g_Trace, "inject_complete", TraceLoggingPointer(nbl, "packet"),
        TraceLoggingHexUInt32((UINT32)NET_BUFFER_LIST_STATUS(nbl), "status"));
}

static NTSTATUS ProbeFlowAssociate(UINT64 flow, UINT16 layerId, const char *layer,
                                   UINT32 calloutId, UINT64 context)
{
    NTSTATUS status = FwpsFlowAssociateContext0(flow, layerId, calloutId, context);
    TraceLoggingWrite(g_Trace, "flow_associate", TraceLoggingUInt64(flow, "flow"),
        TraceLoggingString(layer, "layer"), TraceLoggingPointer((void *)(ULONG_PTR)context, "ctx"),
        TraceLoggingHexUInt32((UINT32)status, "status"));
    return status;
}

static NTSTATUS ProbeFlowRemove(UINT64 flow, UINT16 layerId, const char *layer, UINT32 calloutId)
{
    NTSTATUS status = FwpsFlowRemoveContext0(flow, layerId, calloutId);
    TraceLoggingWrite(g_Trace, "flow_remove", TraceLoggingUInt64(flow, "flow"),
        TraceLoggingString(layer, "layer"), TraceLoggingHexUInt32((UINT32)status, "status"));
    return status;
}

/* -- small helpers ------------------------------------------------------------------------ */

static void *ProbeAlloc(SIZE_T size, ULONG tag)
{
    return ExAllocatePool2(POOL_FLAG_NON_PAGED, size, tag);
}

static void ProbeReadAddress(const FWP_VALUE0 *value, const FWP_VALUE0 *port, int v6,
                             PROBE_ADDR *out)
{
    RtlZeroMemory(out, sizeof(*out));
    if (value->type == FWP_UINT32 && !v6) {
        UINT32 a = value->uint32;
        out->present = 1;
        out->family = 4;
        out->address[0] = (UINT8)(a >> 24);
        out->address[1] = (UINT8)(a >> 16);
        out->address[2] = (UINT8)(a >> 8);
        out->address[3] = (UINT8)a;
    } else if (value->type == FWP_BYTE_ARRAY16_TYPE && v6 && value->byteArray16 != NULL) {
        out->present = 1;
        out->family = 6;
        RtlCopyMemory(out->address, value->byteArray16->byteArray16, 16);
    }
    if (out->present && port->type == FWP_UINT16) {
        out->port = port->uint16;
    }
}

static BOOLEAN ProbeSameAddr(const PROBE_ADDR *a, const PROBE_ADDR *b)
{
    if (a->present != b->present) {
        return FALSE;
    }
    return !a->present || (a->family == b->family && a->port == b->port &&
                           RtlEqualMemory(a->address, b->address, a->family == 6 ? 16 : 4));
}

static const PROBE_CALLOUT *ProbeCalloutFor(UINT16 layerId)
{
    ULONG i;
    for (i = 0; i < PROBE_CALLOUT_COUNT; i++) {
        if (g_Callouts[i].layerId == layerId) {
            return &g_Callouts[i];
        }
    }
    return NULL;
}

static const PROBE_CALLOUT *ProbeStreamCallout(BOOLEAN v6)
{
    return ProbeCalloutFor(v6 ? FWPS_LAYER_STREAM_V6 : FWPS_LAYER_STREAM_V4);
}

/* The scenario's policy: the block set, then the default decision. */
static UINT32 ProbeDecide(const PROBE_CI *ci)
{
    UINT32 i;
    if (ci->remote.present) {
        for (i = 0; i < g_Config.blockedCount; i++) {
            const PROBE_REMOTE *r = &g_Config.blocked[i];
            if (r->family == ci->remote.family && r->port == ci->remote.port &&
                RtlEqualMemory(r->address, ci->remote.address, r->family == 6 ? 16 : 4)) {
                return FWP_ACTION_BLOCK;
            }
        }
        if (g_Config.decision == PROBE_DECISION_BLOCK) {
            return FWP_ACTION_BLOCK;
        }
    }
    return FWP_ACTION_PERMIT;
}

/* Write a final action, as far as the write right allows (a block without it is a veto). */
static void ProbeGive(FWPS_CLASSIFY_OUT0 *out, UINT32 action, BOOLEAN rights)
{
    if (action == FWP_ACTION_BLOCK) {
        out->actionType = FWP_ACTION_BLOCK;
        out->flags &= ~FWPS_CLASSIFY_OUT_FLAG_ABSORB;
        if (rights) {
            out->rights &= ~FWPS_RIGHT_ACTION_WRITE;
        }
    } else if (rights) {
        out->actionType = FWP_ACTION_PERMIT;
    }
}

static void ProbePermit(FWPS_CLASSIFY_OUT0 *out) { out->actionType = FWP_ACTION_PERMIT; }

static void ProbeAbsorb(FWPS_CLASSIFY_OUT0 *out)
{
    out->actionType = FWP_ACTION_BLOCK;
    out->flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB;
    out->rights &= ~FWPS_RIGHT_ACTION_WRITE;
}

static HANDLE ProbeInjectionHandle(BOOLEAN v6) { return v6 ? g_Inject6 : g_Inject4; }

/* A delayed call: what the Python reference does with call_later, on a timer DPC. */
KDEFERRED_ROUTINE ProbeDeferDpc;

static void ProbeDefer(int kind, UINT64 key, UINT32 action, UINT32 delayUs)
{
    PROBE_DEFER *d = ProbeAlloc(sizeof(*d), PROBE_TAG_WORK);
    LARGE_INTEGER due;
    if (d == NULL) {
        return;
    }
    d->kind = kind;
    d->key = key;
    d->action = action;
    KeInitializeTimer(&d->timer);
    KeInitializeDpc(&d->dpc, ProbeDeferDpc, d);
    due.QuadPart = -(LONGLONG)delayUs * 10;  /* relative, in 100 ns units */
    KeSetTimer(&d->timer, due, &d->dpc);
}

/* -- endpoints --------------------------------------------------------------------------------- */

static PROBE_ENDPOINT *ProbeFindEndpoint(UINT64 endpoint)
{
    PLIST_ENTRY e;
    for (e = g_Endpoints.Flink; e != &g_Endpoints; e = e->Flink) {
        PROBE_ENDPOINT *ctx = CONTAINING_RECORD(e, PROBE_ENDPOINT, link);
        if (ctx->endpoint == endpoint) {
            return ctx;
        }
    }
    return NULL;
}

static void ProbeEndpointContext(const PROBE_CI *ci)
{
    PROBE_ENDPOINT *ctx;
    if (!(g_Config.flags & PROBE_FLAG_ENDPOINT_CONTEXTS) || !ci->hasEndpoint) {
        return;
    }
    if (ProbeFindEndpoint(ci->endpoint) != NULL) {
        return;
    }
    ctx = ProbeAlloc(sizeof(*ctx), PROBE_TAG_ENDPOINT);
    if (ctx == NULL) {
        return;
    }
    ctx->endpoint = ci->endpoint;
    InsertTailList(&g_Endpoints, &ctx->link);
    ProbeTraceAlloc(ctx, ci, "EPcx");
}

static void ProbeFreeEndpointContext(UINT64 endpoint)
{
    PROBE_ENDPOINT *ctx = ProbeFindEndpoint(endpoint);
    if (ctx == NULL) {
        return;
    }
    RemoveEntryList(&ctx->link);
#ifdef PROBE_MUTANT_LEAKS_ENDPOINT_CONTEXT
    return;  /* the bug: forgotten, never freed */
#else
    ProbeTraceFree(ctx);
    ExFreePoolWithTag(ctx, PROBE_TAG_ENDPOINT);
#endif
}

/* -- verdicts: the decisions a reauthorization is answered from ---------------------------------- */

static PROBE_VERDICT *ProbeFindVerdict(UINT64 endpoint, const PROBE_ADDR *remote)
{
    PLIST_ENTRY e;
    for (e = g_Verdicts.Flink; e != &g_Verdicts; e = e->Flink) {
        PROBE_VERDICT *v = CONTAINING_RECORD(e, PROBE_VERDICT, link);
        if (v->endpoint == endpoint && ProbeSameAddr(&v->remote, remote)) {
            return v;
        }
    }
    return NULL;
}

static void ProbeRecordVerdict(UINT64 endpoint, const PROBE_ADDR *remote, UINT32 action)
{
    PROBE_VERDICT *v = ProbeFindVerdict(endpoint, remote);
    if (v == NULL) {
        v = ProbeAlloc(sizeof(*v), PROBE_TAG_WORK);
        if (v == NULL) {
            return;
        }
        v->endpoint = endpoint;
        v->remote = *remote;
        InsertTailList(&g_Verdicts, &v->link);
    }
    v->action = action;
}

/* -- injection bookkeeping --------------------------------------------------------------------- */

static PROBE_COUNT *ProbeFindCount(UINT64 endpoint)
{
    PLIST_ENTRY e;
    for (e = g_InFlight.Flink; e != &g_InFlight; e = e->Flink) {
        PROBE_COUNT *c = CONTAINING_RECORD(e, PROBE_COUNT, link);
        if (c->endpoint == endpoint) {
            return c;
        }
    }
    return NULL;
}

static void ProbeAddInFlight(UINT64 endpoint)
{
    PROBE_COUNT *c = ProbeFindCount(endpoint);
    if (c == NULL) {
        c = ProbeAlloc(sizeof(*c), PROBE_TAG_WORK);
        if (c == NULL) {
            return;
        }
        c->endpoint = endpoint;
        InsertTailList(&g_InFlight, &c->link);
    }
    c->count++;
}

static void ProbeSettle(const PROBE_INJECTED *done)
{
    PROBE_COUNT *c;
    if (!done->hasEndpoint) {
        return;
    }
    c = ProbeFindCount(done->endpoint);
    if (c != NULL && --c->count <= 0) {
        RemoveEntryList(&c->link);
        ExFreePoolWithTag(c, PROBE_TAG_WORK);
    }
    ProbeMaybeFinishClosure(done->endpoint);
}

/* A transport injection completed: only now may the clone be freed. */
static void NTAPI ProbeTransportInjected(void *context, PNET_BUFFER_LIST nbl, BOOLEAN dispatchLevel)
{
    PROBE_INJECTED *done = context;
    UNREFERENCED_PARAMETER(dispatchLevel);
    ProbeTraceInjected(nbl);
#ifndef PROBE_MUTANT_LEAKS_CLONE
    ProbeFreeCloneNbl(nbl, 0);
#else
    UNREFERENCED_PARAMETER(nbl);  /* the bug: the clone is never freed */
#endif
    ProbeSettle(done);
    ExFreePoolWithTag(done, PROBE_TAG_WORK);
}

static NTSTATUS ProbeInjectTransport(PNET_BUFFER_LIST nbl, BOOLEAN receive, BOOLEAN v6,
                                     UINT64 endpoint)
{
    PROBE_INJECTED *done = ProbeAlloc(sizeof(*done), PROBE_TAG_WORK);
    NTSTATUS status;
    if (done == NULL) {
        ProbeFreeCloneNbl(nbl, 0);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    done->endpoint = endpoint;
    done->hasEndpoint = TRUE;
    ProbeAddInFlight(endpoint);
    if (receive) {
        status = FwpsInjectTransportReceiveAsync0(ProbeInjectionHandle(v6), NULL, NULL, 0,
            v6 ? AF_INET6 : AF_INET, UNSPECIFIED_COMPARTMENT_ID, 0, 0, nbl,
            ProbeTransportInjected, done);
        ProbeTraceInject(nbl, "transport_recv", status);
    } else {
        status = FwpsInjectTransportSendAsync0(ProbeInjectionHandle(v6), NULL, endpoint, 0, NULL,
            v6 ? AF_INET6 : AF_INET, UNSPECIFIED_COMPARTMENT_ID, nbl, ProbeTransportInjected,
            done);
        ProbeTraceInject(nbl, "transport_send", status);
    }
    if (!NT_SUCCESS(status)) {
        ProbeFreeCloneNbl(nbl, 0);  /* no completion will come */
        ProbeSettle(done);
        ExFreePoolWithTag(done, PROBE_TAG_WORK);
    }
    return status;
}

/* -- datagram queues ------------------------------------------------------------------------------ */

static PROBE_QUEUE *ProbeFindQueue(UINT64 endpoint)
{
    PLIST_ENTRY e;
    for (e = g_Queues.Flink; e != &g_Queues; e = e->Flink) {
        PROBE_QUEUE *q = CONTAINING_RECORD(e, PROBE_QUEUE, link);
        if (q->endpoint == endpoint) {
            return q;
        }
    }
    return NULL;
}

/* -- streams ------------------------------------------------------------------------------------ */

static PROBE_STREAM *ProbeFindStream(UINT64 flow)
{
    PLIST_ENTRY e;
    for (e = g_Streams.Flink; e != &g_Streams; e = e->Flink) {
        PROBE_STREAM *s = CONTAINING_RECORD(e, PROBE_STREAM, link);
        if (s->flow == flow) {
            return s;
        }
    }
    return NULL;
}

static PROBE_STREAM *ProbeSetStream(UINT64 flow, const PROBE_CI *ci, BOOLEAN withEndpoint)
{
    PROBE_STREAM *s = ProbeFindStream(flow);
    if (s == NULL) {
        s = ProbeAlloc(sizeof(*s), PROBE_TAG_WORK);
        if (s == NULL) {
            return NULL;
        }
        InsertTailList(&g_Streams, &s->link);
    }
    s->flow = flow;
    s->endpoint = withEndpoint ? ci->endpoint : 0;
    s->hasEndpoint = withEndpoint && ci->hasEndpoint;
    s->v6 = (BOOLEAN)ci->callout->v6;
    s->scheduled = FALSE;
    s->segments = 0;
    s->inFlight = 0;
    InitializeListHead(&s->waiting);
    return s;
}

static BOOLEAN ProbeOutOfBand(const PROBE_STREAM *s)
{
#ifdef PROBE_MUTANT_MIXES_STREAM_MODES
    {   /* the bug: every other segment goes through inline while data is absorbed */
        LONG n = 0;
        PLIST_ENTRY e;
        for (e = s->waiting.Flink; e != &s->waiting; e = e->Flink) {
            n++;
        }
        if (n % 2 == 1) {
            return FALSE;
        }
    }
#endif
    return s->segments < 0 || !IsListEmpty(&s->waiting) || s->inFlight > 0;
}

static BOOLEAN ProbeBusy(UINT64 endpoint)
{
    PROBE_QUEUE *q = ProbeFindQueue(endpoint);
    PLIST_ENTRY e;
    if ((q != NULL && !IsListEmpty(&q->held)) || ProbeFindCount(endpoint) != NULL) {
        return TRUE;
    }
    for (e = g_Streams.Flink; e != &g_Streams; e = e->Flink) {
        PROBE_STREAM *s = CONTAINING_RECORD(e, PROBE_STREAM, link);
        if (s->hasEndpoint && s->endpoint == endpoint &&
            (!IsListEmpty(&s->waiting) || s->inFlight > 0)) {
            return TRUE;
        }
    }
    return FALSE;
}

/* Streams and verdicts of an endpoint that is gone. */
static void ProbeForget(UINT64 endpoint)
{
    PLIST_ENTRY e, next;
    for (e = g_Streams.Flink; e != &g_Streams; e = next) {
        PROBE_STREAM *s = CONTAINING_RECORD(e, PROBE_STREAM, link);
        next = e->Flink;
        if (s->hasEndpoint && s->endpoint == endpoint) {
            RemoveEntryList(&s->link);
            ExFreePoolWithTag(s, PROBE_TAG_WORK);
        }
    }
    for (e = g_Verdicts.Flink; e != &g_Verdicts; e = next) {
        PROBE_VERDICT *v = CONTAINING_RECORD(e, PROBE_VERDICT, link);
        next = e->Flink;
        if (v->endpoint == endpoint) {
            RemoveEntryList(&v->link);
            ExFreePoolWithTag(v, PROBE_TAG_WORK);
        }
    }
}

/* -- ALE connect and recv-accept: pend, decide later, complete -------------------------------------- */

static PROBE_PEND *ProbeFindPend(HANDLE ctx)
{
    PLIST_ENTRY e;
    for (e = g_Pended.Flink; e != &g_Pended; e = e->Flink) {
        PROBE_PEND *p = CONTAINING_RECORD(e, PROBE_PEND, link);
        if (p->ctx == ctx) {
            return p;
        }
    }
    return NULL;
}

/* Pend the operation; absorb only when the pend succeeded. */
static void ProbePend(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out, BOOLEAN clone)
{
    PNET_BUFFER_LIST copy = NULL;
    HANDLE ctx = NULL;
    NTSTATUS status;
    PROBE_PEND *record;
    UINT32 verdict;

    if (clone && ci->packet != NULL) {
        status = ProbeAllocateClone(ci->packet, NULL, NULL, 0, &copy);
        if (!NT_SUCCESS(status)) {
            ProbeGive(out, ProbeDecide(ci), TRUE);
            return;
        }
    }
    status = ProbePendOperation(ci->meta->completionHandle, &ctx);
    if (!NT_SUCCESS(status)) {
        if (copy != NULL) {
            ProbeFreeCloneNbl(copy, 0);
        }
        ProbeGive(out, ProbeDecide(ci), TRUE);
        return;
    }
    record = ProbeAlloc(sizeof(*record), PROBE_TAG_PEND);
    if (record == NULL) {
        ProbeCompleteOperation(ctx, NULL);
        return;
    }
    record->ctx = ctx;
    record->endpoint = ci->hasEndpoint ? ci->endpoint : 0;
    record->remote = ci->remote;
    record->clone = copy;
    record->v6 = (BOOLEAN)ci->callout->v6;
    ProbeTraceAlloc(record, ci, "PEND");
    if (!clone && ci->packet != NULL) {
        ProbeReference(ci->packet, FALSE);  /* held until the decision */
        record->referenced = ci->packet;
    }
    InsertTailList(&g_Pended, &record->link);
    ProbeAbsorb(out);
#ifdef PROBE_MUTANT_PEND_WITHOUT_ABSORB
    out->flags &= ~FWPS_CLASSIFY_OUT_FLAG_ABSORB;  /* the bug: pended, yet permitted */
    out->actionType = FWP_ACTION_PERMIT;
    out->rights |= FWPS_RIGHT_ACTION_WRITE;
#endif
    verdict = ProbeDecide(ci);
    ProbeDefer(DEFER_COMPLETE, (UINT64)(ULONG_PTR)ctx, verdict, g_Config.delayUs);
}

/* Reinject the clone to allow, free it to deny. */
static void ProbeFinishRecvAccept(PROBE_PEND *record, UINT32 action)
{
#ifdef PROBE_MUTANT_NEVER_REINJECTS_CLONE
    UNREFERENCED_PARAMETER(record);
    UNREFERENCED_PARAMETER(action);  /* the bug: neither reinjected nor freed */
#else
    if (action == FWP_ACTION_PERMIT) {
        ProbeInjectTransport(record->clone, TRUE, record->v6, record->endpoint);
    } else {
        ProbeFreeCloneNbl(record->clone, 0);
    }
#endif
}

/* The decision arrived: record it, complete, then deal with the packet. */
static void ProbeComplete(HANDLE ctx, UINT32 action)
{
    PROBE_PEND *record = ProbeFindPend(ctx);
    if (record == NULL) {
        return;  /* completed at the endpoint's closure already */
    }
    RemoveEntryList(&record->link);
    ProbeRecordVerdict(record->endpoint, &record->remote, action);
    TraceLoggingWrite(g_Trace, "decision",
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)ctx, "ctx"),
        TraceLoggingString(ProbeActionName(action), "action"));
    if (record->referenced != NULL) {
        ProbeDereference(record->referenced, FALSE);
    }
    ProbeTraceFree(record);
#ifndef PROBE_MUTANT_FORGETS_COMPLETE
    ProbeCompleteOperation(ctx, NULL);
#else
    if (record->clone != NULL) {  /* the bug: connects are never completed */
        ProbeCompleteOperation(ctx, NULL);
    }
#endif
#ifdef PROBE_MUTANT_COMPLETES_TWICE
    ProbeCompleteOperation(ctx, NULL);  /* the bug: a retry path completes again */
#endif
    if (record->clone != NULL) {
        ProbeFinishRecvAccept(record, action);
    }
    ExFreePoolWithTag(record, PROBE_TAG_PEND);
}

/* -- transport: datagram inspection ----------------------------------------------------------------- */

static BOOLEAN ProbeWantsQueue(const PROBE_CI *ci)
{
    if (ci->aleRequired || ci->protocol != IPPROTO_UDP) {
        return FALSE;
    }
    return ci->packet != NULL && ci->hasEndpoint;
}

static void ProbeOnTransport(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out)
{
    PNET_BUFFER_LIST copy = NULL;
    PROBE_HELD *held;
    PROBE_QUEUE *q;
    if (!ci->rights) {
        return;
    }
    if (!(g_Config.pendMask & PROBE_PEND_CLOSURE) || !ProbeWantsQueue(ci)) {
        ProbePermit(out);
        return;
    }
    if (!NT_SUCCESS(ProbeAllocateClone(ci->packet, NULL, NULL, 0, &copy))) {
        ProbePermit(out);
        return;
    }
    held = ProbeAlloc(sizeof(*held), PROBE_TAG_WORK);
    q = ProbeFindQueue(ci->endpoint);
    if (q == NULL && held != NULL) {
        q = ProbeAlloc(sizeof(*q), PROBE_TAG_WORK);
        if (q != NULL) {
            q->endpoint = ci->endpoint;
            InitializeListHead(&q->held);
            InsertTailList(&g_Queues, &q->link);
        }
    }
    if (held == NULL || q == NULL) {
        if (held != NULL) {
            ExFreePoolWithTag(held, PROBE_TAG_WORK);
        }
        ProbeFreeCloneNbl(copy, 0);
        ProbePermit(out);
        return;
    }
    held->serial = ++g_NextSerial;
    held->nbl = copy;
    held->receive = ci->family == FAM_INBOUND;
    held->v6 = (BOOLEAN)ci->callout->v6;
    held->endpoint = ci->endpoint;
    InsertTailList(&q->held, &held->link);
    TraceLoggingWrite(g_Trace, "queue", TraceLoggingPointer(copy, "packet"),
        TraceLoggingHexUInt64(ci->endpoint, "endpoint"));
    ProbeAbsorb(out);
    ProbeDefer(DEFER_RELEASE_HELD, held->serial, 0, g_Config.transportDelayUs);
}

static PROBE_HELD *ProbeTakeHeld(UINT64 serial)
{
    PLIST_ENTRY qe, he;
    for (qe = g_Queues.Flink; qe != &g_Queues; qe = qe->Flink) {
        PROBE_QUEUE *q = CONTAINING_RECORD(qe, PROBE_QUEUE, link);
        for (he = q->held.Flink; he != &q->held; he = he->Flink) {
            PROBE_HELD *held = CONTAINING_RECORD(he, PROBE_HELD, link);
            if (held->serial == serial) {
                RemoveEntryList(&held->link);
                if (IsListEmpty(&q->held)) {
                    RemoveEntryList(&q->link);
                    ExFreePoolWithTag(q, PROBE_TAG_WORK);
                }
                return held;
            }
        }
    }
    return NULL;
}

static void ProbeReleaseHeld(UINT64 serial)
{
    PROBE_HELD *held = ProbeTakeHeld(serial);
    if (held == NULL) {
        return;  /* drained at closure already */
    }
#ifdef PROBE_MUTANT_USE_AFTER_FREE_CLONE
    ProbeFreeCloneNbl(held->nbl, 0);  /* the bug: freed, then injected */
#endif
    ProbeInjectTransport(held->nbl, held->receive, held->v6, held->endpoint);
    ExFreePoolWithTag(held, PROBE_TAG_WORK);
}

/* -- streams: out-of-band editing --------------------------------------------------------------------- */

static BOOLEAN ProbeEdits(const PROBE_CI *ci)
{
    UINT32 i;
    if (!ci->remote.present || g_Config.streamMode != PROBE_STREAM_OUT_OF_BAND) {
        return FALSE;
    }
    for (i = 0; i < g_Config.editPortCount; i++) {
        if (g_Config.editPorts[i] == ci->remote.port) {
            return TRUE;
        }
    }
    return FALSE;
}

static PROBE_FLOWCTX *ProbeFindFlowContext(UINT64 flow)
{
    PLIST_ENTRY e;
    for (e = g_FlowContexts.Flink; e != &g_FlowContexts; e = e->Flink) {
        PROBE_FLOWCTX *f = CONTAINING_RECORD(e, PROBE_FLOWCTX, link);
        if (f->flow == flow) {
            return f;
        }
    }
    return NULL;
}

static void ProbeAssociateFlow(const PROBE_CI *ci)
{
    PROBE_FLOWCTX *ctx = ProbeAlloc(sizeof(*ctx), PROBE_TAG_FLOW);
    const PROBE_CALLOUT *stream = ProbeStreamCallout((BOOLEAN)ci->callout->v6);
    NTSTATUS status;
    if (ctx == NULL) {
        return;
    }
    ctx->flow = ci->flow;
    ProbeTraceAlloc(ctx, ci, "FLcx");
    status = ProbeFlowAssociate(ci->flow, stream->layerId, stream->layerName, stream->runtimeId,
                                (UINT64)(ULONG_PTR)ctx);
    if (NT_SUCCESS(status)) {
        ctx->attached = TRUE;
        InsertTailList(&g_FlowContexts, &ctx->link);
    } else {
        ProbeTraceFree(ctx);  /* not attached, so still ours */
        ExFreePoolWithTag(ctx, PROBE_TAG_FLOW);
    }
}

static void ProbeOnFlowEstablished(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out)
{
    PROBE_STREAM *s;
    UNREFERENCED_PARAMETER(out);
#ifdef PROBE_MUTANT_PENDS_AT_FLOW_ESTABLISHED
    {   /* the bug: asynchronous processing is not supported at FLOW_ESTABLISHED */
        HANDLE ctx = NULL;
        UINT64 handle = 0;
        ProbePendOperation(ci->meta->completionHandle, &ctx);
        if (NT_SUCCESS(ProbeAcquireClassifyHandle((void *)ci->classifyContext, 0, &handle))) {
            if (NT_SUCCESS(ProbePendClassify(handle, 0, 0, out))) {
                FWPS_CLASSIFY_OUT0 done = *out;
                done.actionType = FWP_ACTION_PERMIT;
                ProbeCompleteClassify(handle, 0, &done);
            }
            ProbeReleaseClassifyHandle(handle);
        }
    }
#endif
    if (ci->protocol != IPPROTO_TCP || !ci->hasFlow) {
        return;
    }
    s = ProbeSetStream(ci->flow, ci, TRUE);
    if (s != NULL && ProbeEdits(ci)) {
        s->segments = -1;  /* marks an edited flow */
    }
    if (g_Config.flags & PROBE_FLAG_FLOW_CONTEXTS) {
        ProbeAssociateFlow(ci);
    }
}

static void NTAPI ProbeStreamInjected(void *context, PNET_BUFFER_LIST nbl, BOOLEAN dispatchLevel)
{
    PROBE_INJECTED *done = context;
    PROBE_STREAM *s = done->stream;
    UNREFERENCED_PARAMETER(dispatchLevel);
    ProbeTraceInjected(nbl);
    ProbeDiscardStream(nbl, 0, FALSE);
    s->inFlight--;
    if (s->hasEndpoint) {
        ProbeMaybeFinishClosure(s->endpoint);
    }
    ExFreePoolWithTag(done, PROBE_TAG_WORK);
}

/* Inject what was absorbed, in the order it was indicated. */
static void ProbeDrainStream(UINT64 flow)
{
    PROBE_STREAM *s = ProbeFindStream(flow);
    LIST_ENTRY waiting;
    const PROBE_CALLOUT *callout;
    if (s == NULL) {
        return;
    }
    s->scheduled = FALSE;
    InitializeListHead(&waiting);
    while (!IsListEmpty(&s->waiting)) {
#ifdef PROBE_MUTANT_INJECTS_OUT_OF_ORDER
        InsertTailList(&waiting, RemoveTailList(&s->waiting));  /* the bug: newest first */
#else
        InsertTailList(&waiting, RemoveHeadList(&s->waiting));
#endif
    }
    callout = ProbeStreamCallout(s->v6);
    while (!IsListEmpty(&waiting)) {
        PROBE_HELD *held = CONTAINING_RECORD(RemoveHeadList(&waiting), PROBE_HELD, link);
        PROBE_INJECTED *done = ProbeAlloc(sizeof(*done), PROBE_TAG_WORK);
        NTSTATUS status = STATUS_INSUFFICIENT_RESOURCES;
        s->inFlight++;
        if (done != NULL) {
            done->stream = s;
            status = FwpsStreamInjectAsync0(ProbeInjectionHandle(s->v6), NULL, 0, flow,
                callout->runtimeId, callout->layerId, FWPS_STREAM_FLAG_SEND, held->nbl,
                NET_BUFFER_DATA_LENGTH(NET_BUFFER_LIST_FIRST_NB(held->nbl)),
                ProbeStreamInjected, done);
            ProbeTraceInject(held->nbl, "stream", status);
        }
        if (!NT_SUCCESS(status)) {
            ProbeDiscardStream(held->nbl, 0, FALSE);
            s->inFlight--;
            if (done != NULL) {
                ExFreePoolWithTag(done, PROBE_TAG_WORK);
            }
        }
        ExFreePoolWithTag(held, PROBE_TAG_WORK);
    }
    if (s->hasEndpoint) {
        ProbeMaybeFinishClosure(s->endpoint);
    }
}

static void ProbeAbsorbSegment(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out, PROBE_STREAM *s)
{
    PNET_BUFFER_LIST copy = NULL;
    PROBE_HELD *held;
    if (!NT_SUCCESS(ProbeCloneStream(ci->stream, NULL, NULL, 0, &copy))) {
        ProbePermit(out);
        return;
    }
    held = ProbeAlloc(sizeof(*held), PROBE_TAG_WORK);
    if (held == NULL) {
        ProbeDiscardStream(copy, 0, FALSE);
        ProbePermit(out);
        return;
    }
    held->serial = ++g_NextSerial;
    held->nbl = copy;
    held->endpoint = s->endpoint;
    InsertTailList(&s->waiting, &held->link);
    ProbeAbsorb(out);
    if (!s->scheduled) {
        s->scheduled = TRUE;
        ProbeDefer(DEFER_DRAIN_STREAM, ci->flow, 0, g_Config.streamDelayUs);
    }
}

static void ProbeOnStream(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out)
{
    PROBE_STREAM *s;
    if (!ci->hasFlow || ci->stream == NULL) {
        return;
    }
    s = ProbeFindStream(ci->flow);
    if (s == NULL) {
        s = ProbeSetStream(ci->flow, ci, FALSE);
        if (s == NULL) {
            return;
        }
    }
    if (!ci->rights) {
        return;
    }
    if (s->segments >= 0) {
        s->segments++;
        if (s->segments == 3 && ci->flow % 2 == 0 && ProbeFindFlowContext(ci->flow) != NULL) {
            /* done with it; flowDeleteFn frees it */
            ProbeFlowRemove(ci->flow, ci->callout->layerId, ci->callout->layerName,
                            ci->callout->runtimeId);
        }
    }
    if (ProbeOutOfBand(s)) {
        ProbeAbsorbSegment(ci, out, s);
    } else {
        ProbePermit(out);
    }
}

/* -- closure: drain, free, complete ------------------------------------------------------------------- */

static PROBE_CLOSING *ProbeFindClosing(UINT64 endpoint)
{
    PLIST_ENTRY e;
    for (e = g_Closing.Flink; e != &g_Closing; e = e->Flink) {
        PROBE_CLOSING *c = CONTAINING_RECORD(e, PROBE_CLOSING, link);
        if (c->endpoint == endpoint) {
            return c;
        }
    }
    return NULL;
}

static void ProbeCompleteClosure(UINT64 handle)
{
    FWPS_CLASSIFY_OUT0 out;
    RtlZeroMemory(&out, sizeof(out));
    out.actionType = FWP_ACTION_PERMIT;
    ProbeCompleteClassify(handle, 0, &out);
#ifndef PROBE_MUTANT_LEAKS_CLASSIFY_HANDLE
    ProbeReleaseClassifyHandle(handle);
#endif
}

static void ProbeMaybeFinishClosure(UINT64 endpoint)
{
    PROBE_CLOSING *c = ProbeFindClosing(endpoint);
    UINT64 handle;
    if (c == NULL || ProbeBusy(endpoint)) {
        return;
    }
    handle = c->handle;
    RemoveEntryList(&c->link);
    ExFreePoolWithTag(c, PROBE_TAG_WORK);
    ProbeFreeEndpointContext(endpoint);
    ProbeForget(endpoint);
    ProbeCompleteClosure(handle);
}

/* Reinject every queued packet now, before the endpoint goes. */
static void ProbeDrain(UINT64 endpoint)
{
    PROBE_QUEUE *q = ProbeFindQueue(endpoint);
    PLIST_ENTRY e;
#ifdef PROBE_MUTANT_COMPLETES_CLOSURE_EARLY
    {   /* the bug: the closure is completed before what it queued is drained */
        PROBE_CLOSING *c = ProbeFindClosing(endpoint);
        if (c != NULL) {
            UINT64 handle = c->handle;
            RemoveEntryList(&c->link);
            ExFreePoolWithTag(c, PROBE_TAG_WORK);
            ProbeFreeEndpointContext(endpoint);
            ProbeCompleteClosure(handle);
        }
    }
#endif
    if (q != NULL) {
        RemoveEntryList(&q->link);
        while (!IsListEmpty(&q->held)) {
            PROBE_HELD *held = CONTAINING_RECORD(RemoveHeadList(&q->held), PROBE_HELD, link);
            ProbeInjectTransport(held->nbl, held->receive, held->v6, held->endpoint);
            ExFreePoolWithTag(held, PROBE_TAG_WORK);
        }
        ExFreePoolWithTag(q, PROBE_TAG_WORK);
    }
    /* draining a stream can end the closure and forget the endpoint's streams: look again */
    for (e = g_Streams.Flink; e != &g_Streams;) {
        PROBE_STREAM *s = CONTAINING_RECORD(e, PROBE_STREAM, link);
        if (s->hasEndpoint && s->endpoint == endpoint && !IsListEmpty(&s->waiting)) {
            ProbeDrainStream(s->flow);
            e = g_Streams.Flink;
            continue;
        }
        e = e->Flink;
    }
    ProbeMaybeFinishClosure(endpoint);
}

static void ProbeOnClosure(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out)
{
    UINT64 endpoint = ci->endpoint;
    UINT64 handle = 0;
    PLIST_ENTRY e, next;
    PROBE_CLOSING *c;
    if (!ci->hasEndpoint) {
        return;
    }
#ifndef PROBE_MUTANT_CLOSURE_BEFORE_COMPLETION
    /* nothing stays pended on an endpoint that is closing */
    for (e = g_Pended.Flink; e != &g_Pended; e = next) {
        PROBE_PEND *p = CONTAINING_RECORD(e, PROBE_PEND, link);
        next = e->Flink;
        if (p->endpoint == endpoint) {
            ProbeComplete(p->ctx, FWP_ACTION_BLOCK);
        }
    }
#else
    UNREFERENCED_PARAMETER(e);
    UNREFERENCED_PARAMETER(next);
#endif
    if (!ProbeBusy(endpoint)) {
        ProbeFreeEndpointContext(endpoint);
        ProbeForget(endpoint);
        return;
    }
    if (!NT_SUCCESS(ProbeAcquireClassifyHandle((void *)ci->classifyContext, 0, &handle))) {
        ProbeFreeEndpointContext(endpoint);
        return;
    }
    if (!NT_SUCCESS(ProbePendClassify(handle, 0, 0, out))) {
        ProbeReleaseClassifyHandle(handle);
        ProbeFreeEndpointContext(endpoint);
        return;
    }
    c = ProbeAlloc(sizeof(*c), PROBE_TAG_WORK);
    if (c == NULL) {
        ProbeCompleteClosure(handle);
        return;
    }
    c->endpoint = endpoint;
    c->handle = handle;
    InsertTailList(&g_Closing, &c->link);
    ProbeDrain(endpoint);
}

/* -- the delayed calls --------------------------------------------------------------------------------- */

void ProbeDeferDpc(PKDPC dpc, PVOID context, PVOID argument1, PVOID argument2)
{
    PROBE_DEFER *d = context;
    UNREFERENCED_PARAMETER(dpc);
    UNREFERENCED_PARAMETER(argument1);
    UNREFERENCED_PARAMETER(argument2);
    switch (d->kind) {
    case DEFER_COMPLETE:
        ProbeComplete((HANDLE)(ULONG_PTR)d->key, d->action);
        break;
    case DEFER_RELEASE_HELD:
        ProbeReleaseHeld(d->key);
        break;
    case DEFER_DRAIN_STREAM:
        ProbeDrainStream(d->key);
        break;
    case DEFER_COMPLETE_REAUTH:
        ProbeCompleteOperation((HANDLE)(ULONG_PTR)d->key, NULL);
        break;
    default:
        break;
    }
    ExFreePoolWithTag(d, PROBE_TAG_WORK);
}

/* -- reauthorization --------------------------------------------------------------------------------- */

static void ProbeAnswerReauth(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out)
{
    PROBE_VERDICT *v = ProbeFindVerdict(ci->hasEndpoint ? ci->endpoint : 0, &ci->remote);
    UINT32 action = v != NULL ? v->action : ProbeDecide(ci);
#ifdef PROBE_MUTANT_FLIPS_REAUTH_DECISION
    if (v != NULL) {  /* the bug: the opposite of the recorded decision */
        action = action == FWP_ACTION_PERMIT ? FWP_ACTION_BLOCK : FWP_ACTION_PERMIT;
    }
#endif
#ifdef PROBE_MUTANT_ABSORBS_AFTER_CANNOT_PEND
    if (ci->family == FAM_CONNECT) {
        HANDLE ctx = NULL;
        if (!NT_SUCCESS(ProbePendOperation(ci->meta->completionHandle, &ctx))) {
            out->actionType = FWP_ACTION_BLOCK;  /* the bug: nothing was pended */
            out->flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB;
            return;
        }
    }
#endif
    ProbeGive(out, action, ci->rights);
}

/* A driver that tries to pend every authorization: the engine refuses a reauthorization. */
static void ProbeTryPendReauth(const PROBE_CI *ci)
{
    HANDLE ctx = NULL;
    if (!(ci->canPend && ci->rights)) {
        return;
    }
    if (NT_SUCCESS(ProbePendOperation(ci->meta->completionHandle, &ctx))) {
        ProbeDefer(DEFER_COMPLETE_REAUTH, (UINT64)(ULONG_PTR)ctx, 0, 0);
    }
}

/* -- classifyFn --------------------------------------------------------------------------------------- */

static void ProbeReadClassify(const FWPS_INCOMING_VALUES0 *in,
                              const FWPS_INCOMING_METADATA_VALUES0 *meta, void *layerData,
                              const void *classifyContext, const FWPS_CLASSIFY_OUT0 *out,
                              PROBE_CI *ci)
{
    const PROBE_FIELDS *f;
    UINT32 flags = 0;
    RtlZeroMemory(ci, sizeof(*ci));
    ci->callout = ProbeCalloutFor(in->layerId);
    ci->family = ci->callout->family;
    f = &g_Fields[ci->family];
    if (f->flags >= 0 && in->incomingValue[f->flags].value.type == FWP_UINT32) {
        flags = in->incomingValue[f->flags].value.uint32;
    }
    if (f->remoteAddress >= 0) {
        ProbeReadAddress(&in->incomingValue[f->remoteAddress].value,
                         &in->incomingValue[f->remotePort].value, ci->callout->v6, &ci->remote);
    }
    ci->protocol = IPPROTO_TCP;  /* the listen and stream layers are TCP's */
    if (f->protocol >= 0 && in->incomingValue[f->protocol].value.type == FWP_UINT8) {
        ci->protocol = in->incomingValue[f->protocol].value.uint8;
    }
    ci->reauth = (flags & FWP_CONDITION_FLAG_IS_REAUTHORIZE) != 0;
    ci->meta = meta;
    ci->classifyContext = classifyContext;
    ci->canPend = FWPS_IS_METADATA_FIELD_PRESENT(meta, FWPS_METADATA_FIELD_COMPLETION_HANDLE);
    ci->aleRequired = FWPS_IS_METADATA_FIELD_PRESENT(meta,
                                                     FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED);
    ci->hasEndpoint = FWPS_IS_METADATA_FIELD_PRESENT(meta,
                                                     FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE);
    ci->endpoint = ci->hasEndpoint ? meta->transportEndpointHandle : 0;
    ci->hasFlow = FWPS_IS_METADATA_FIELD_PRESENT(meta, FWPS_METADATA_FIELD_FLOW_HANDLE);
    ci->flow = ci->hasFlow ? meta->flowHandle : 0;
    ci->rights = (out->rights & FWPS_RIGHT_ACTION_WRITE) != 0;
    if (layerData != NULL) {
        if (ci->family == FAM_STREAM) {
            ci->stream = ((FWPS_STREAM_CALLOUT_IO_PACKET0 *)layerData)->streamData;
            ci->packet = ci->stream != NULL ? ci->stream->netBufferListChain : NULL;
        } else {
            ci->packet = (PNET_BUFFER_LIST)layerData;
        }
    }
    ci->injection = FWPS_PACKET_NOT_INJECTED;
    if (ci->packet != NULL) {
        ci->injection = FwpsQueryPacketInjectionState0(
            ProbeInjectionHandle((BOOLEAN)ci->callout->v6), ci->packet, NULL);
    }
}

static BOOLEAN ProbePendPoint(int family)
{
    if (family == FAM_CONNECT) {
        return (g_Config.pendMask & PROBE_PEND_CONNECT) != 0;
    }
    if (family == FAM_RECV_ACCEPT) {
        return (g_Config.pendMask & PROBE_PEND_RECV_ACCEPT) != 0;
    }
    return TRUE;
}

static void ProbeDispatch(const PROBE_CI *ci, FWPS_CLASSIFY_OUT0 *out)
{
    if (ci->injection == FWPS_PACKET_INJECTED_BY_SELF ||
        ci->injection == FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF) {
#ifdef PROBE_MUTANT_REPENDS_SELF_INJECTED
        /* the bug: its own reinjected clone is pended again (once per endpoint) */
        if (ci->family == FAM_RECV_ACCEPT && ProbeFindVerdict(ci->endpoint, &ci->remote) != NULL
            && ProbeFindEndpoint(ci->endpoint) != NULL && ci->rights && ci->canPend) {
            PROBE_VERDICT *v = ProbeFindVerdict(ci->endpoint, &ci->remote);
            if (v->action != 0xFFFFFFFFu) {
                v->action = 0xFFFFFFFFu;  /* learnt: only once */
                ProbePend(ci, out, TRUE);
                return;
            }
        }
#endif
        if (ci->rights) {
            ProbePermit(out);
        }
        return;
    }
    if (ci->reauth) {
        if (g_Config.flags & PROBE_FLAG_PEND_ON_REAUTH) {
            ProbeTryPendReauth(ci);
        }
        ProbeAnswerReauth(ci, out);
        return;
    }
    if (!ProbePendPoint(ci->family)) {
        /* an authorization the scenario does not pend: decided here */
        ProbeEndpointContext(ci);
        if (ci->rights) {
            ProbeGive(out, ProbeDecide(ci), TRUE);
        }
        return;
    }
    switch (ci->family) {
    case FAM_ASSIGNMENT:
        ProbeEndpointContext(ci);
        break;
    case FAM_RELEASE:
        if (ci->hasEndpoint) {
            ProbeFreeEndpointContext(ci->endpoint);  /* an endpoint that had no closure */
        }
        break;
    case FAM_LISTEN:
        ProbeEndpointContext(ci);
        ProbeGive(out, ProbeDecide(ci), ci->rights);
        break;
    case FAM_CONNECT:
        ProbeEndpointContext(ci);
        if (!ci->rights) {
            break;
        }
        if (!ci->canPend) {
            ProbeGive(out, ProbeDecide(ci), TRUE);
            break;
        }
        ProbePend(ci, out, FALSE);
        break;
    case FAM_RECV_ACCEPT:
        ProbeEndpointContext(ci);
        if (!ci->rights) {
            break;
        }
        if (!ci->canPend || ci->packet == NULL) {
            ProbeGive(out, ProbeDecide(ci), TRUE);
            break;
        }
        ProbePend(ci, out, TRUE);
        break;
    case FAM_FLOW:
        ProbeOnFlowEstablished(ci, out);
        break;
    case FAM_CLOSURE:
        ProbeOnClosure(ci, out);
        break;
    case FAM_INBOUND:
    case FAM_OUTBOUND:
        ProbeOnTransport(ci, out);
        break;
    case FAM_STREAM:
        ProbeOnStream(ci, out);
        break;
    default:
        break;
    }
}

static void NTAPI ProbeClassify(const FWPS_INCOMING_VALUES0 *in,
                                const FWPS_INCOMING_METADATA_VALUES0 *meta, void *layerData,
                                const void *classifyContext, const FWPS_FILTER3 *filter,
                                UINT64 flowContext, FWPS_CLASSIFY_OUT0 *out)
{
    PROBE_CI ci;
    UINT64 id = (UINT64)InterlockedIncrement64(&g_ClassifyId);
    UNREFERENCED_PARAMETER(filter);
    UNREFERENCED_PARAMETER(flowContext);
    if (ProbeCalloutFor(in->layerId) == NULL) {
        return;
    }
    UINT64 outer = g_CurrentClassify;
    ProbeReadClassify(in, meta, layerData, classifyContext, out, &ci);
    TraceLoggingWrite(g_Trace, "classify", TraceLoggingUInt64(id, "id"),
        TraceLoggingString(ci.callout->layerName, "layer"),
        TraceLoggingBoolean(ci.reauth, "reauth"), TraceLoggingBoolean(ci.canPend, "can_pend"),
        TraceLoggingBoolean(ci.rights, "rights"));
    g_CurrentClassify = id;
    ProbeDispatch(&ci, out);
    g_CurrentClassify = outer;
    TraceLoggingWrite(g_Trace, "classify_done", TraceLoggingUInt64(id, "id"),
        TraceLoggingString(ProbeActionName(out->actionType), "action"),
        TraceLoggingBoolean((out->flags & FWPS_CLASSIFY_OUT_FLAG_ABSORB) != 0, "absorb"),
        TraceLoggingBoolean((out->rights & FWPS_RIGHT_ACTION_WRITE) != 0, "rights"));
}

static NTSTATUS NTAPI ProbeNotify(FWPS_CALLOUT_NOTIFY_TYPE type, const GUID *filterKey,
                                  FWPS_FILTER3 *filter)
{
    UNREFERENCED_PARAMETER(type);
    UNREFERENCED_PARAMETER(filterKey);
    UNREFERENCED_PARAMETER(filter);
    return STATUS_SUCCESS;
}

static void NTAPI ProbeFlowDelete(UINT16 layerId, UINT32 calloutId, UINT64 flowContext)
{
    PROBE_FLOWCTX *ctx = (PROBE_FLOWCTX *)(ULONG_PTR)flowContext;
    UNREFERENCED_PARAMETER(layerId);
    UNREFERENCED_PARAMETER(calloutId);
    if (ctx == NULL) {
        return;
    }
    if (ctx->attached) {
        RemoveEntryList(&ctx->link);
        ctx->attached = FALSE;
    }
    ProbeTraceFree(ctx);
    ExFreePoolWithTag(ctx, PROBE_TAG_FLOW);
}

/* -- configuration: IOCTL_PROBE_CONFIGURE on the probe's device -------------------------------------- */

static void ProbeDefaultConfig(void)
{
    RtlZeroMemory(&g_Config, sizeof(g_Config));
    g_Config.size = sizeof(g_Config);
    g_Config.version = PROBE_CONFIG_VERSION;
    g_Config.pendMask = PROBE_PEND_CONNECT | PROBE_PEND_RECV_ACCEPT | PROBE_PEND_CLOSURE;
    g_Config.delayUs = 50000;          /* until configured: the Python reference's defaults */
    g_Config.decision = PROBE_DECISION_PERMIT;
    g_Config.streamMode = PROBE_STREAM_OUT_OF_BAND;
    g_Config.flags = PROBE_FLAG_ENDPOINT_CONTEXTS | PROBE_FLAG_FLOW_CONTEXTS;
    g_Config.transportDelayUs = 20000;
    g_Config.streamDelayUs = 10000;
    g_Config.editPortCount = 1;
    g_Config.editPorts[0] = 8080;
}

static NTSTATUS ProbeAddPolicy(void);

static NTSTATUS ProbeConfigure(const PROBE_CONFIG *config, ULONG length)
{
    KLOCK_QUEUE_HANDLE lock;
    if (config == NULL || length != sizeof(PROBE_CONFIG) || config->size != sizeof(PROBE_CONFIG)
        || config->version != PROBE_CONFIG_VERSION || config->blockedCount > PROBE_MAX_BLOCKED
        || config->editPortCount > PROBE_MAX_EDIT_PORTS
        || config->decision > PROBE_DECISION_BLOCK
        || config->streamMode > PROBE_STREAM_OUT_OF_BAND) {
        return STATUS_INVALID_PARAMETER;
    }
    KeAcquireInStackQueuedSpinLock(&g_Lock, &lock);
    g_Config = *config;
    KeReleaseInStackQueuedSpinLock(&lock);
    if ((config->flags & PROBE_FLAG_ADD_POLICY) && g_Engine == NULL) {
        return ProbeAddPolicy();
    }
    return STATUS_SUCCESS;
}

static NTSTATUS ProbeDispatchIrp(PDEVICE_OBJECT device, PIRP irp)
{
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(irp);
    NTSTATUS status = STATUS_SUCCESS;
    UNREFERENCED_PARAMETER(device);
    if (stack->MajorFunction == IRP_MJ_DEVICE_CONTROL) {
        if (stack->Parameters.DeviceIoControl.IoControlCode == IOCTL_PROBE_CONFIGURE) {
            status = ProbeConfigure((const PROBE_CONFIG *)irp->AssociatedIrp.SystemBuffer,
                                    stack->Parameters.DeviceIoControl.InputBufferLength);
        } else {
            status = STATUS_INVALID_DEVICE_REQUEST;
        }
    }
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = 0;
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    return status;
}

/* -- policy: provider, sublayer, callouts and one filter per layer, in one transaction -------------- */

static NTSTATUS ProbeAddPolicy(void)
{
    FWPM_SESSION0 session;
    FWPM_PROVIDER0 provider;
    FWPM_SUBLAYER0 sublayer;
    NTSTATUS status;
    ULONG i;

    RtlZeroMemory(&session, sizeof(session));
    session.flags = FWPM_SESSION_FLAG_DYNAMIC;
    status = FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, &session, &g_Engine);
    if (!NT_SUCCESS(status)) {
        g_Engine = NULL;
        return status;
    }
    status = FwpmTransactionBegin0(g_Engine, 0);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    RtlZeroMemory(&provider, sizeof(provider));
    provider.providerKey = PROBE_PROVIDER_KEY;
    provider.displayData.name = L"callout-harness probe";
    status = FwpmProviderAdd0(g_Engine, &provider, NULL);
    if (NT_SUCCESS(status)) {
        RtlZeroMemory(&sublayer, sizeof(sublayer));
        sublayer.subLayerKey = PROBE_SUBLAYER_KEY;
        sublayer.displayData.name = L"callout-harness probe sublayer";
        sublayer.providerKey = (GUID *)&PROBE_PROVIDER_KEY;
        sublayer.weight = 0x100;
        status = FwpmSubLayerAdd0(g_Engine, &sublayer, NULL);
    }
    for (i = 0; NT_SUCCESS(status) && i < PROBE_CALLOUT_COUNT; i++) {
        FWPM_CALLOUT0 mcallout;
        FWPM_FILTER0 filter;
        RtlZeroMemory(&mcallout, sizeof(mcallout));
        RtlZeroMemory(&filter, sizeof(filter));
        mcallout.calloutKey = g_Callouts[i].key;
        mcallout.displayData.name = L"callout-harness probe callout";
        mcallout.providerKey = (GUID *)&PROBE_PROVIDER_KEY;
        mcallout.applicableLayer = *g_Callouts[i].layerKey;
        status = FwpmCalloutAdd0(g_Engine, &mcallout, NULL, NULL);
        if (!NT_SUCCESS(status)) {
            break;
        }
        ExUuidCreate(&filter.filterKey);
        filter.displayData.name = L"callout-harness probe filter";
        filter.providerKey = (GUID *)&PROBE_PROVIDER_KEY;
        filter.layerKey = *g_Callouts[i].layerKey;
        filter.subLayerKey = PROBE_SUBLAYER_KEY;
        filter.weight.type = FWP_EMPTY;
        filter.action.type = FWP_ACTION_CALLOUT_TERMINATING;
        filter.action.calloutKey = g_Callouts[i].key;
        status = FwpmFilterAdd0(g_Engine, &filter, NULL, NULL);
    }
    if (NT_SUCCESS(status)) {
        status = FwpmTransactionCommit0(g_Engine);
    } else {
        FwpmTransactionAbort0(g_Engine);
    }
    return status;
}

/* -- load and unload ----------------------------------------------------------------------------------- */

static void ProbeUnregister(void)
{
    ULONG i;
    for (i = 0; i < PROBE_CALLOUT_COUNT; i++) {
        if (g_Callouts[i].runtimeId != 0) {
            FwpsCalloutUnregisterById0(g_Callouts[i].runtimeId);
            g_Callouts[i].runtimeId = 0;
        }
    }
    if (g_Engine != NULL) {
        FwpmEngineClose0(g_Engine);  /* a dynamic session: its objects go with it */
        g_Engine = NULL;
    }
}

/* Bookkeeping of endpoints whose closure the probe never saw (its closure callouts were
 * unregistered first, while other callouts were busy): nothing refers to it any more. A
 * stream still holding absorbed data is left alone, and reported as a leak. */
static void ProbeFreeBookkeeping(void)
{
    PLIST_ENTRY e, next;
    while (!IsListEmpty(&g_Verdicts)) {
        ExFreePoolWithTag(CONTAINING_RECORD(RemoveHeadList(&g_Verdicts), PROBE_VERDICT, link),
                          PROBE_TAG_WORK);
    }
    while (!IsListEmpty(&g_InFlight)) {
        ExFreePoolWithTag(CONTAINING_RECORD(RemoveHeadList(&g_InFlight), PROBE_COUNT, link),
                          PROBE_TAG_WORK);
    }
    for (e = g_Streams.Flink; e != &g_Streams; e = next) {
        PROBE_STREAM *s = CONTAINING_RECORD(e, PROBE_STREAM, link);
        next = e->Flink;
        if (IsListEmpty(&s->waiting)) {
            RemoveEntryList(&s->link);
            ExFreePoolWithTag(s, PROBE_TAG_WORK);
        }
    }
}

VOID ProbeUnload(PDRIVER_OBJECT driver)
{
    UNICODE_STRING link;
    UNREFERENCED_PARAMETER(driver);
    ProbeUnregister();
    /* every callout is gone: free what is left */
    while (!IsListEmpty(&g_Endpoints)) {
        PROBE_ENDPOINT *ctx = CONTAINING_RECORD(g_Endpoints.Flink, PROBE_ENDPOINT, link);
        ProbeFreeEndpointContext(ctx->endpoint);
    }
    ProbeFreeBookkeeping();
    if (g_Inject4 != NULL) {
        FwpsInjectionHandleDestroy0(g_Inject4);
        g_Inject4 = NULL;
    }
    if (g_Inject6 != NULL) {
        FwpsInjectionHandleDestroy0(g_Inject6);
        g_Inject6 = NULL;
    }
    if (g_Device != NULL) {
        RtlInitUnicodeString(&link, g_SymlinkName);
        IoDeleteSymbolicLink(&link);
        IoDeleteDevice(g_Device);
        g_Device = NULL;
    }
    TraceLoggingUnregister(g_Trace);
}

NTSTATUS
DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registryPath)
{
    UNICODE_STRING name, link;
    NTSTATUS status;
    ULONG i;

    UNREFERENCED_PARAMETER(registryPath);
    InitializeListHead(&g_Endpoints);
    InitializeListHead(&g_Pended);
    InitializeListHead(&g_Verdicts);
    InitializeListHead(&g_Queues);
    InitializeListHead(&g_InFlight);
    InitializeListHead(&g_Closing);
    InitializeListHead(&g_Streams);
    InitializeListHead(&g_FlowContexts);
    KeInitializeSpinLock(&g_Lock);
    ProbeDefaultConfig();
    TraceLoggingRegister(g_Trace);
    driver->DriverUnload = ProbeUnload;
    driver->MajorFunction[IRP_MJ_CREATE] = ProbeDispatchIrp;
    driver->MajorFunction[IRP_MJ_CLOSE] = ProbeDispatchIrp;
    driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] = ProbeDispatchIrp;

    RtlInitUnicodeString(&name, g_DeviceName);
    status = IoCreateDevice(driver, 0, &name, FILE_DEVICE_NETWORK, FILE_DEVICE_SECURE_OPEN,
                            FALSE, &g_Device);
    if (!NT_SUCCESS(status)) {
        TraceLoggingUnregister(g_Trace);
        return status;
    }
    RtlInitUnicodeString(&link, g_SymlinkName);
    status = IoCreateSymbolicLink(&link, &name);
    if (NT_SUCCESS(status)) {
        status = FwpsInjectionHandleCreate0(AF_INET,
            FWPS_INJECTION_TYPE_TRANSPORT | FWPS_INJECTION_TYPE_STREAM, &g_Inject4);
    }
    if (NT_SUCCESS(status)) {
        status = FwpsInjectionHandleCreate0(AF_INET6,
            FWPS_INJECTION_TYPE_TRANSPORT | FWPS_INJECTION_TYPE_STREAM, &g_Inject6);
    }
    for (i = 0; NT_SUCCESS(status) && i < PROBE_CALLOUT_COUNT; i++) {
        FWPS_CALLOUT3 callout;
        RtlZeroMemory(&callout, sizeof(callout));
        callout.calloutKey = g_Callouts[i].key;
        callout.classifyFn = ProbeClassify;
        callout.notifyFn = ProbeNotify;
        callout.flowDeleteFn = ProbeFlowDelete;
        status = FwpsCalloutRegister3(g_Device, &callout, &g_Callouts[i].runtimeId);
    }
    if (!NT_SUCCESS(status)) {
        ProbeUnload(driver);
    }
    return status;
}
