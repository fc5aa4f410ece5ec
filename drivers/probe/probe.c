/*
 * probe.c - the callout-harness probe: a WFP callout driver that does what a
 * well-behaved callout does and says so, event by event, over TraceLogging.
 *
 * Callouts (one per layer, keys in driver.toml):
 *   ALE_AUTH_CONNECT_V4      pends the connect (FwpsPendOperation0), decides
 *                            PERMIT in a work item, completes it
 *                            (FwpsCompleteOperation0), permits the reauthorization
 *   ALE_AUTH_RECV_ACCEPT_V4  same, for inbound connections
 *   ALE_RESOURCE_ASSIGNMENT_V4  allocates a per-endpoint context
 *   ALE_RESOURCE_RELEASE_V4     observes the release
 *   ALE_ENDPOINT_CLOSURE_V4     frees the endpoint's context
 *
 * Every event name is a trace-format kind and every field a trace-format field
 * (shared contract, trace-format.md); drivers/README.md gives the mapping and
 * how harness.guest.etw normalises values. Statuses are logged as hex UINT32,
 * actions and layers as strings, handles as hex UINT64.
 *
 * Built with the WDK in the lab (see drivers/README.md); it cannot be built on
 * the Linux CI machines, which test the harness against manifests only.
 */

#define NDIS61 1
#define NDIS_SUPPORT_NDIS61 1

#include <ntddk.h>
#include <wdm.h>
#pragma warning(push)
#pragma warning(disable : 4201)
#include <fwpsk.h>
#pragma warning(pop)
#include <fwpmk.h>
#include <ntstrsafe.h>
#include <ip2string.h>
#include <TraceLoggingProvider.h>
#include <evntrace.h>
#define INITGUID
#include <guiddef.h>

#define PROBE_TAG 'borP'

/* {6B2B7A63-6C1B-4E58-9C1B-3E1A0C6F5A01}: etw_provider in driver.toml */
TRACELOGGING_DEFINE_PROVIDER(
    g_Trace, "CalloutProbe",
    (0x6b2b7a63, 0x6c1b, 0x4e58, 0x9c, 0x1b, 0x3e, 0x1a, 0x0c, 0x6f, 0x5a, 0x01));

/* provider_key and callout keys: must equal driver.toml */
DEFINE_GUID(PROBE_PROVIDER_KEY,
    0x3f0b1c2d, 0x4e5f, 0x4a6b, 0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d);
DEFINE_GUID(PROBE_SUBLAYER_KEY,
    0x3f0b1c2d, 0x4e5f, 0x4a6b, 0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4e);
DEFINE_GUID(PROBE_CALLOUT_CONNECT,
    0x9a1e5c10, 0x2b3d, 0x4f60, 0xa1, 0x72, 0x83, 0x94, 0xa5, 0xb6, 0xc7, 0x01);
DEFINE_GUID(PROBE_CALLOUT_RECV_ACCEPT,
    0x9a1e5c10, 0x2b3d, 0x4f60, 0xa1, 0x72, 0x83, 0x94, 0xa5, 0xb6, 0xc7, 0x02);
DEFINE_GUID(PROBE_CALLOUT_RESOURCE_ASSIGNMENT,
    0x9a1e5c10, 0x2b3d, 0x4f60, 0xa1, 0x72, 0x83, 0x94, 0xa5, 0xb6, 0xc7, 0x03);
DEFINE_GUID(PROBE_CALLOUT_RESOURCE_RELEASE,
    0x9a1e5c10, 0x2b3d, 0x4f60, 0xa1, 0x72, 0x83, 0x94, 0xa5, 0xb6, 0xc7, 0x04);
DEFINE_GUID(PROBE_CALLOUT_ENDPOINT_CLOSURE,
    0x9a1e5c10, 0x2b3d, 0x4f60, 0xa1, 0x72, 0x83, 0x94, 0xa5, 0xb6, 0xc7, 0x05);

typedef struct _PROBE_CALLOUT {
    const GUID *key;
    const GUID *layerKey;      /* FWPM_LAYER_* for the filter */
    const char *layerName;     /* run-time layer name, as the trace format spells it */
    FWP_ACTION_TYPE filterAction;
    UINT32 runtimeId;
} PROBE_CALLOUT;

static PROBE_CALLOUT g_Callouts[] = {
    { &PROBE_CALLOUT_CONNECT, &FWPM_LAYER_ALE_AUTH_CONNECT_V4,
      "ALE_AUTH_CONNECT_V4", FWP_ACTION_CALLOUT_TERMINATING, 0 },
    { &PROBE_CALLOUT_RECV_ACCEPT, &FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4,
      "ALE_AUTH_RECV_ACCEPT_V4", FWP_ACTION_CALLOUT_TERMINATING, 0 },
    { &PROBE_CALLOUT_RESOURCE_ASSIGNMENT, &FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V4,
      "ALE_RESOURCE_ASSIGNMENT_V4", FWP_ACTION_CALLOUT_INSPECTION, 0 },
    { &PROBE_CALLOUT_RESOURCE_RELEASE, &FWPM_LAYER_ALE_RESOURCE_RELEASE_V4,
      "ALE_RESOURCE_RELEASE_V4", FWP_ACTION_CALLOUT_INSPECTION, 0 },
    { &PROBE_CALLOUT_ENDPOINT_CLOSURE, &FWPM_LAYER_ALE_ENDPOINT_CLOSURE_V4,
      "ALE_ENDPOINT_CLOSURE_V4", FWP_ACTION_CALLOUT_INSPECTION, 0 },
};
#define PROBE_CALLOUT_COUNT (sizeof(g_Callouts) / sizeof(g_Callouts[0]))

/* A pended connect: completed from a work item at PASSIVE_LEVEL. */
typedef struct _PROBE_PEND {
    PIO_WORKITEM workItem;
    HANDLE completionContext;
} PROBE_PEND;

/* Per-endpoint context, allocated at RESOURCE_ASSIGNMENT, freed at ENDPOINT_CLOSURE. */
typedef struct _PROBE_ENDPOINT {
    LIST_ENTRY link;
    UINT64 endpoint;
} PROBE_ENDPOINT;

static PDEVICE_OBJECT g_Device;
static HANDLE g_Engine;
static LIST_ENTRY g_Endpoints;
static KSPIN_LOCK g_EndpointsLock;
static volatile LONG64 g_ClassifyId;
static volatile LONG64 g_Session = 1;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD ProbeUnload;
IO_WORKITEM_ROUTINE ProbeCompleteWork;

static PROBE_CALLOUT *
ProbeCalloutForLayer(UINT16 layerId)
{
    switch (layerId) {
    case FWPS_LAYER_ALE_AUTH_CONNECT_V4: return &g_Callouts[0];
    case FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4: return &g_Callouts[1];
    case FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V4: return &g_Callouts[2];
    case FWPS_LAYER_ALE_RESOURCE_RELEASE_V4: return &g_Callouts[3];
    case FWPS_LAYER_ALE_ENDPOINT_CLOSURE_V4: return &g_Callouts[4];
    default: return NULL;
    }
}

/* "a.b.c.d:port" from a host-order address and port. */
static void
ProbeFormatAddress(UINT32 address, UINT16 port, char *out, ULONG size)
{
    IN_ADDR in;
    in.S_un.S_addr = RtlUlongByteSwap(address);
    if (!NT_SUCCESS(RtlIpv4AddressToStringExA(&in, RtlUshortByteSwap(port), out, &size))) {
        out[0] = '\0';
    }
}

static const char *
ProbeProtocol(UINT8 protocol)
{
    switch (protocol) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_ICMP: return "icmp";
    default: return "raw";
    }
}

/* Field indexes differ per layer; these layers share the same shape for v4. */
typedef struct _PROBE_FIELDS {
    UINT32 localAddress, localPort, remoteAddress, remotePort, protocol, flags;
} PROBE_FIELDS;

static BOOLEAN
ProbeFieldsFor(UINT16 layerId, PROBE_FIELDS *f)
{
    switch (layerId) {
    case FWPS_LAYER_ALE_AUTH_CONNECT_V4:
        *f = (PROBE_FIELDS){ FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_LOCAL_ADDRESS,
            FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_LOCAL_PORT,
            FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_REMOTE_ADDRESS,
            FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_REMOTE_PORT,
            FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_PROTOCOL,
            FWPS_FIELD_ALE_AUTH_CONNECT_V4_FLAGS };
        return TRUE;
    case FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4:
        *f = (PROBE_FIELDS){ FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_LOCAL_ADDRESS,
            FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_LOCAL_PORT,
            FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_REMOTE_ADDRESS,
            FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_REMOTE_PORT,
            FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_PROTOCOL,
            FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_FLAGS };
        return TRUE;
    case FWPS_LAYER_ALE_ENDPOINT_CLOSURE_V4:
        *f = (PROBE_FIELDS){ FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_LOCAL_ADDRESS,
            FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_LOCAL_PORT,
            FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_REMOTE_ADDRESS,
            FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_REMOTE_PORT,
            FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_PROTOCOL,
            FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_FLAGS };
        return TRUE;
    default:
        return FALSE;
    }
}

static void
ProbeTraceClassify(UINT64 id, const PROBE_CALLOUT *callout,
                   const FWPS_INCOMING_VALUES0 *in, const FWPS_INCOMING_METADATA_VALUES0 *meta,
                   const FWPS_CLASSIFY_OUT0 *out)
{
    PROBE_FIELDS f;
    char local[64] = "", remote[64] = "";
    UINT32 flags = 0;
    const char *proto = "raw";
    const char *dir = "out";
    UINT64 endpoint = 0;

    if (ProbeFieldsFor(in->layerId, &f)) {
        ProbeFormatAddress(in->incomingValue[f.localAddress].value.uint32,
                           in->incomingValue[f.localPort].value.uint16, local, sizeof(local));
        ProbeFormatAddress(in->incomingValue[f.remoteAddress].value.uint32,
                           in->incomingValue[f.remotePort].value.uint16, remote, sizeof(remote));
        proto = ProbeProtocol(in->incomingValue[f.protocol].value.uint8);
        flags = in->incomingValue[f.flags].value.uint32;
    }
    if (in->layerId == FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4) {
        dir = "in";
    }
    if (FWPS_IS_METADATA_FIELD_PRESENT(meta, FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE)) {
        endpoint = meta->transportEndpointHandle;
    }
    TraceLoggingWrite(g_Trace, "classify",
        TraceLoggingUInt64(id, "id"),
        TraceLoggingString(callout->layerName, "layer"),
        TraceLoggingGuid(*callout->key, "callout"),
        TraceLoggingHexUInt64(endpoint, "endpoint"),
        TraceLoggingString(proto, "proto"),
        TraceLoggingString(dir, "dir"),
        TraceLoggingString(local, "local"),
        TraceLoggingString(remote, "remote"),
        TraceLoggingBoolean((flags & FWP_CONDITION_FLAG_IS_REAUTHORIZE) != 0, "reauth"),
        TraceLoggingBoolean(FWPS_IS_METADATA_FIELD_PRESENT(meta,
            FWPS_METADATA_FIELD_COMPLETION_HANDLE) != 0, "can_pend"),
        TraceLoggingBoolean((flags & FWP_CONDITION_FLAG_REQUIRES_ALE_CLASSIFY) != 0,
            "ale_required"),
        TraceLoggingString("none", "injection"),
        TraceLoggingBoolean((out->rights & FWPS_RIGHT_ACTION_WRITE) != 0, "rights"));
}

static const char *
ProbeActionName(FWP_ACTION_TYPE action)
{
    switch (action) {
    case FWP_ACTION_PERMIT: return "PERMIT";
    case FWP_ACTION_BLOCK: return "BLOCK";
    case FWP_ACTION_CONTINUE: return "CONTINUE";
    default: return "NONE";
    }
}

static void
ProbeTraceDone(UINT64 id, const FWPS_CLASSIFY_OUT0 *out)
{
    TraceLoggingWrite(g_Trace, "classify_done",
        TraceLoggingUInt64(id, "id"),
        TraceLoggingString(ProbeActionName(out->actionType), "action"),
        TraceLoggingBoolean((out->flags & FWPS_CLASSIFY_OUT_FLAG_ABSORB) != 0, "absorb"),
        TraceLoggingBoolean((out->rights & FWPS_RIGHT_ACTION_WRITE) != 0, "rights"));
}

VOID
ProbeCompleteWork(PDEVICE_OBJECT device, PVOID context)
{
    PROBE_PEND *pend = (PROBE_PEND *)context;
    UNREFERENCED_PARAMETER(device);

    /* The decision is PERMIT; the reauthorization classify applies it. */
    TraceLoggingWrite(g_Trace, "decision",
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)pend->completionContext, "ctx"),
        TraceLoggingString("PERMIT", "action"));
    FwpsCompleteOperation0(pend->completionContext, NULL);
    TraceLoggingWrite(g_Trace, "complete_operation",
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)pend->completionContext, "ctx"));
    IoFreeWorkItem(pend->workItem);
    TraceLoggingWrite(g_Trace, "free",
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)pend, "obj"),
        TraceLoggingString("borP", "tag"));
    ExFreePoolWithTag(pend, PROBE_TAG);
}

/* ALE_AUTH_CONNECT / RECV_ACCEPT: pend the first classify, permit the reauthorization. */
static void
ProbeAuthorize(UINT64 id, const FWPS_INCOMING_VALUES0 *in,
               const FWPS_INCOMING_METADATA_VALUES0 *meta, FWPS_CLASSIFY_OUT0 *out)
{
    PROBE_FIELDS f;
    PROBE_PEND *pend;
    NTSTATUS status;
    BOOLEAN reauth = FALSE;

    if (ProbeFieldsFor(in->layerId, &f)) {
        reauth = (in->incomingValue[f.flags].value.uint32 & FWP_CONDITION_FLAG_IS_REAUTHORIZE) != 0;
    }
    if (reauth || !FWPS_IS_METADATA_FIELD_PRESENT(meta, FWPS_METADATA_FIELD_COMPLETION_HANDLE)) {
        out->actionType = FWP_ACTION_PERMIT;
        return;
    }
    pend = ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*pend), PROBE_TAG);
    if (pend == NULL) {
        out->actionType = FWP_ACTION_PERMIT;
        return;
    }
    TraceLoggingWrite(g_Trace, "alloc",
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)pend, "obj"),
        TraceLoggingString("borP", "tag"));
    pend->workItem = IoAllocateWorkItem(g_Device);
    status = pend->workItem == NULL ? STATUS_INSUFFICIENT_RESOURCES
        : FwpsPendOperation0(meta->completionHandle, &pend->completionContext);
    TraceLoggingWrite(g_Trace, "pend_operation",
        TraceLoggingUInt64(id, "id"),
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)pend->completionContext, "ctx"),
        TraceLoggingHexUInt32((UINT32)status, "status"));
    if (!NT_SUCCESS(status)) {
        if (pend->workItem != NULL) {
            IoFreeWorkItem(pend->workItem);
        }
        TraceLoggingWrite(g_Trace, "free",
            TraceLoggingHexUInt64((UINT64)(ULONG_PTR)pend, "obj"),
            TraceLoggingString("borP", "tag"));
        ExFreePoolWithTag(pend, PROBE_TAG);
        out->actionType = FWP_ACTION_PERMIT;
        return;
    }
    /* A pended indication is blocked and absorbed; the reauthorization decides. */
    out->actionType = FWP_ACTION_BLOCK;
    out->flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB;
    out->rights &= ~FWPS_RIGHT_ACTION_WRITE;
    IoQueueWorkItem(pend->workItem, ProbeCompleteWork, DelayedWorkQueue, pend);
}

static void
ProbeEndpointAssigned(UINT64 endpoint)
{
    KLOCK_QUEUE_HANDLE lock;
    PROBE_ENDPOINT *ctx = ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*ctx), PROBE_TAG);
    if (ctx == NULL) {
        return;
    }
    ctx->endpoint = endpoint;
    KeAcquireInStackQueuedSpinLock(&g_EndpointsLock, &lock);
    InsertTailList(&g_Endpoints, &ctx->link);
    KeReleaseInStackQueuedSpinLock(&lock);
    TraceLoggingWrite(g_Trace, "alloc",
        TraceLoggingHexUInt64((UINT64)(ULONG_PTR)ctx, "obj"),
        TraceLoggingHexUInt64(endpoint, "endpoint"),
        TraceLoggingString("borP", "tag"));
}

static void
ProbeEndpointClosed(UINT64 endpoint)
{
    KLOCK_QUEUE_HANDLE lock;
    PLIST_ENTRY entry;
    PROBE_ENDPOINT *found = NULL;

    KeAcquireInStackQueuedSpinLock(&g_EndpointsLock, &lock);
    for (entry = g_Endpoints.Flink; entry != &g_Endpoints; entry = entry->Flink) {
        PROBE_ENDPOINT *ctx = CONTAINING_RECORD(entry, PROBE_ENDPOINT, link);
        if (ctx->endpoint == endpoint) {
            RemoveEntryList(entry);
            found = ctx;
            break;
        }
    }
    KeReleaseInStackQueuedSpinLock(&lock);
    if (found != NULL) {
        TraceLoggingWrite(g_Trace, "free",
            TraceLoggingHexUInt64((UINT64)(ULONG_PTR)found, "obj"),
            TraceLoggingHexUInt64(endpoint, "endpoint"),
            TraceLoggingString("borP", "tag"));
        ExFreePoolWithTag(found, PROBE_TAG);
    }
}

static void NTAPI
ProbeClassify(const FWPS_INCOMING_VALUES0 *in, const FWPS_INCOMING_METADATA_VALUES0 *meta,
              void *layerData, const void *classifyContext, const FWPS_FILTER3 *filter,
              UINT64 flowContext, FWPS_CLASSIFY_OUT0 *out)
{
    UINT64 id = (UINT64)InterlockedIncrement64(&g_ClassifyId);
    const PROBE_CALLOUT *callout = ProbeCalloutForLayer(in->layerId);
    UINT64 endpoint = 0;

    UNREFERENCED_PARAMETER(layerData);
    UNREFERENCED_PARAMETER(classifyContext);
    UNREFERENCED_PARAMETER(filter);
    UNREFERENCED_PARAMETER(flowContext);

    if (callout == NULL) {
        return;
    }
    ProbeTraceClassify(id, callout, in, meta, out);
    if (FWPS_IS_METADATA_FIELD_PRESENT(meta, FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE)) {
        endpoint = meta->transportEndpointHandle;
    }
    if (!(out->rights & FWPS_RIGHT_ACTION_WRITE)) {
        /* A higher-weight callout decided already: leave its decision alone. */
        ProbeTraceDone(id, out);
        return;
    }
    switch (in->layerId) {
    case FWPS_LAYER_ALE_AUTH_CONNECT_V4:
    case FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4:
        ProbeAuthorize(id, in, meta, out);
        break;
    case FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V4:
        ProbeEndpointAssigned(endpoint);
        out->actionType = FWP_ACTION_CONTINUE;
        break;
    case FWPS_LAYER_ALE_ENDPOINT_CLOSURE_V4:
        ProbeEndpointClosed(endpoint);
        out->actionType = FWP_ACTION_CONTINUE;
        break;
    default:
        out->actionType = FWP_ACTION_CONTINUE;
        break;
    }
    ProbeTraceDone(id, out);
}

/* The callout key for a run-time callout id (notify gets only the id). */
static const GUID *
ProbeKeyForId(UINT32 runtimeId)
{
    ULONG i;
    for (i = 0; i < PROBE_CALLOUT_COUNT; i++) {
        if (g_Callouts[i].runtimeId == runtimeId) {
            return g_Callouts[i].key;
        }
    }
    return &GUID_NULL;
}

static NTSTATUS NTAPI
ProbeNotify(FWPS_CALLOUT_NOTIFY_TYPE type, const GUID *filterKey, FWPS_FILTER3 *filter)
{
    UNREFERENCED_PARAMETER(filterKey);
    if (type == FWPS_CALLOUT_NOTIFY_ADD_FILTER || type == FWPS_CALLOUT_NOTIFY_DELETE_FILTER) {
        TraceLoggingWrite(g_Trace, "notify",
            TraceLoggingGuid(*ProbeKeyForId(filter->action.calloutId), "callout"),
            TraceLoggingString(type == FWPS_CALLOUT_NOTIFY_ADD_FILTER
                ? "add_filter" : "delete_filter", "type"),
            TraceLoggingUInt64(filter->filterId, "filter"),
            TraceLoggingHexUInt32(STATUS_SUCCESS, "status"));
    }
    return STATUS_SUCCESS;
}

static void
ProbeTraceObject(UINT64 session, const char *type, const GUID *key, NTSTATUS status)
{
    TraceLoggingWrite(g_Trace, "object_add",
        TraceLoggingUInt64(session, "session"),
        TraceLoggingString(type, "type"),
        TraceLoggingGuid(*key, "key"),
        TraceLoggingString("dynamic", "lifetime"),
        TraceLoggingGuid(PROBE_PROVIDER_KEY, "provider"),
        TraceLoggingHexUInt32((UINT32)status, "status"));
}

/* Provider, sublayer, callouts and one filter per layer, in one BFE transaction. */
static NTSTATUS
ProbeAddPolicy(void)
{
    FWPM_SESSION0 session = { 0 };
    FWPM_PROVIDER0 provider = { 0 };
    FWPM_SUBLAYER0 sublayer = { 0 };
    UINT64 sid = (UINT64)InterlockedIncrement64(&g_Session);
    NTSTATUS status;
    ULONG i;

    session.flags = FWPM_SESSION_FLAG_DYNAMIC;
    status = FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, &session, &g_Engine);
    TraceLoggingWrite(g_Trace, "session_open",
        TraceLoggingUInt64(sid, "session"), TraceLoggingBoolean(TRUE, "dynamic"),
        TraceLoggingUInt32(0, "txn_wait_ms"), TraceLoggingBoolean(TRUE, "kernel"),
        TraceLoggingHexUInt32((UINT32)status, "status"));
    if (!NT_SUCCESS(status)) {
        return status;
    }
    status = FwpmTransactionBegin0(g_Engine, 0);
    TraceLoggingWrite(g_Trace, "txn_begin",
        TraceLoggingUInt64(sid, "session"), TraceLoggingBoolean(FALSE, "read_only"),
        TraceLoggingUInt32(0, "waited_ms"), TraceLoggingHexUInt32((UINT32)status, "status"));
    if (!NT_SUCCESS(status)) {
        return status;
    }
    provider.providerKey = PROBE_PROVIDER_KEY;
    provider.displayData.name = L"callout-harness probe";
    status = FwpmProviderAdd0(g_Engine, &provider, NULL);
    ProbeTraceObject(sid, "provider", &PROBE_PROVIDER_KEY, status);
    if (NT_SUCCESS(status)) {
        sublayer.subLayerKey = PROBE_SUBLAYER_KEY;
        sublayer.displayData.name = L"callout-harness probe sublayer";
        sublayer.providerKey = (GUID *)&PROBE_PROVIDER_KEY;
        sublayer.weight = 0x100;
        status = FwpmSubLayerAdd0(g_Engine, &sublayer, NULL);
        ProbeTraceObject(sid, "sublayer", &PROBE_SUBLAYER_KEY, status);
    }
    for (i = 0; NT_SUCCESS(status) && i < PROBE_CALLOUT_COUNT; i++) {
        FWPM_CALLOUT0 mcallout = { 0 };
        FWPM_FILTER0 filter = { 0 };
        GUID filterKey;

        mcallout.calloutKey = *g_Callouts[i].key;
        mcallout.displayData.name = L"callout-harness probe callout";
        mcallout.providerKey = (GUID *)&PROBE_PROVIDER_KEY;
        mcallout.applicableLayer = *g_Callouts[i].layerKey;
        status = FwpmCalloutAdd0(g_Engine, &mcallout, NULL, NULL);
        ProbeTraceObject(sid, "callout", g_Callouts[i].key, status);
        if (!NT_SUCCESS(status)) {
            break;
        }
        ExUuidCreate(&filterKey);
        filter.filterKey = filterKey;
        filter.displayData.name = L"callout-harness probe filter";
        filter.providerKey = (GUID *)&PROBE_PROVIDER_KEY;
        filter.layerKey = *g_Callouts[i].layerKey;
        filter.subLayerKey = PROBE_SUBLAYER_KEY;
        filter.weight.type = FWP_EMPTY;
        filter.action.type = g_Callouts[i].filterAction;
        filter.action.calloutKey = *g_Callouts[i].key;
        status = FwpmFilterAdd0(g_Engine, &filter, NULL, NULL);
        ProbeTraceObject(sid, "filter", &filterKey, status);
    }
    if (NT_SUCCESS(status)) {
        status = FwpmTransactionCommit0(g_Engine);
        TraceLoggingWrite(g_Trace, "txn_commit",
            TraceLoggingUInt64(sid, "session"), TraceLoggingHexUInt32((UINT32)status, "status"));
    } else {
        NTSTATUS abort = FwpmTransactionAbort0(g_Engine);
        TraceLoggingWrite(g_Trace, "txn_abort",
            TraceLoggingUInt64(sid, "session"), TraceLoggingHexUInt32((UINT32)abort, "status"));
    }
    return status;
}

static void
ProbeUnregister(void)
{
    ULONG i;
    for (i = 0; i < PROBE_CALLOUT_COUNT; i++) {
        if (g_Callouts[i].runtimeId != 0) {
            NTSTATUS status = FwpsCalloutUnregisterById0(g_Callouts[i].runtimeId);
            TraceLoggingWrite(g_Trace, "callout_unregister",
                TraceLoggingGuid(*g_Callouts[i].key, "callout"),
                TraceLoggingHexUInt32((UINT32)status, "status"));
            g_Callouts[i].runtimeId = 0;
        }
    }
    if (g_Engine != NULL) {
        /* A dynamic session: closing it deletes every object it added. */
        FwpmEngineClose0(g_Engine);
        TraceLoggingWrite(g_Trace, "session_close", TraceLoggingUInt64(g_Session, "session"));
        g_Engine = NULL;
    }
}

VOID
ProbeUnload(PDRIVER_OBJECT driver)
{
    UNREFERENCED_PARAMETER(driver);
    ProbeUnregister();
    if (g_Device != NULL) {
        IoDeleteDevice(g_Device);
    }
    TraceLoggingUnregister(g_Trace);
}

NTSTATUS
DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registryPath)
{
    NTSTATUS status;
    ULONG i;

    UNREFERENCED_PARAMETER(registryPath);
    InitializeListHead(&g_Endpoints);
    KeInitializeSpinLock(&g_EndpointsLock);
    TraceLoggingRegister(g_Trace);
    driver->DriverUnload = ProbeUnload;

    status = IoCreateDevice(driver, 0, NULL, FILE_DEVICE_NETWORK, FILE_DEVICE_SECURE_OPEN,
                            FALSE, &g_Device);
    if (!NT_SUCCESS(status)) {
        TraceLoggingUnregister(g_Trace);
        return status;
    }
    for (i = 0; i < PROBE_CALLOUT_COUNT; i++) {
        FWPS_CALLOUT3 callout = { 0 };
        callout.calloutKey = *g_Callouts[i].key;
        callout.classifyFn = ProbeClassify;
        callout.notifyFn = ProbeNotify;
        callout.flowDeleteFn = NULL;
        status = FwpsCalloutRegister3(g_Device, &callout, &g_Callouts[i].runtimeId);
        TraceLoggingWrite(g_Trace, "callout_register",
            TraceLoggingGuid(*g_Callouts[i].key, "callout"),
            TraceLoggingHexUInt32((UINT32)status, "status"));
        if (!NT_SUCCESS(status)) {
            break;
        }
    }
    if (NT_SUCCESS(status)) {
        status = ProbeAddPolicy();
    }
    if (!NT_SUCCESS(status)) {
        ProbeUnload(driver);
    }
    return status;
}
