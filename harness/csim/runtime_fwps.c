/*
 * runtime_fwps.c - the WFP side of the host runtime: callout registration,
 * classifyFn/notifyFn/flowDeleteFn, pend and complete, classify handles,
 * NET_BUFFER_LISTs with their clones and references, injection, stream data,
 * flow contexts, and the kernel-mode management (Fwpm) calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csim_runtime.h"

#define STATUS_FWP_NULL_POINTER      ((NTSTATUS)0xC022001CL)
#define CSIM_MAX_CALLOUTS 256
#define CSIM_MAX_PACKETS (1u << 24)
#define CSIM_NBL_MAGIC 0x4E424C31u
#define CSIM_INJECT_MAGIC 0x494E4A48u
#define CSIM_ENGINE_MAGIC 0x42464548u

/* -- layers: ids, names, keys and where each data field sits ------------------------------ */

typedef struct CSIM_LAYER {
    UINT16 id;
    const char *name;
    const GUID *key;
    INT16 localAddress, localPort, remoteAddress, remotePort, protocol, direction, flags;
    UINT16 count;
    UINT8 v6;
} CSIM_LAYER;

#define L4(n, f, la, lp, ra, rp, pr, di, fl, cnt) \
    { FWPS_LAYER_##n##_V4, #n "_V4", &FWPM_LAYER_##n##_V4, la, lp, ra, rp, pr, di, fl, cnt, 0 }, \
    { FWPS_LAYER_##n##_V6, #n "_V6", &FWPM_LAYER_##n##_V6, la, lp, ra, rp, pr, di, fl, cnt, 1 }

static const CSIM_LAYER g_layers[] = {
    L4(ALE_RESOURCE_ASSIGNMENT, 0, FWPS_FIELD_ALE_RESOURCE_ASSIGNMENT_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_ALE_RESOURCE_ASSIGNMENT_V4_IP_LOCAL_PORT, -1, -1,
       FWPS_FIELD_ALE_RESOURCE_ASSIGNMENT_V4_IP_PROTOCOL, -1,
       FWPS_FIELD_ALE_RESOURCE_ASSIGNMENT_V4_FLAGS, FWPS_FIELD_ALE_RESOURCE_ASSIGNMENT_V4_MAX),
    L4(ALE_RESOURCE_RELEASE, 0, FWPS_FIELD_ALE_RESOURCE_RELEASE_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_ALE_RESOURCE_RELEASE_V4_IP_LOCAL_PORT, -1, -1,
       FWPS_FIELD_ALE_RESOURCE_RELEASE_V4_IP_PROTOCOL, -1,
       FWPS_FIELD_ALE_RESOURCE_RELEASE_V4_FLAGS, FWPS_FIELD_ALE_RESOURCE_RELEASE_V4_MAX),
    L4(ALE_AUTH_LISTEN, 0, FWPS_FIELD_ALE_AUTH_LISTEN_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_ALE_AUTH_LISTEN_V4_IP_LOCAL_PORT, -1, -1, -1, -1,
       FWPS_FIELD_ALE_AUTH_LISTEN_V4_FLAGS, FWPS_FIELD_ALE_AUTH_LISTEN_V4_MAX),
    L4(ALE_AUTH_CONNECT, 0, FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_LOCAL_PORT,
       FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_REMOTE_ADDRESS,
       FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_REMOTE_PORT,
       FWPS_FIELD_ALE_AUTH_CONNECT_V4_IP_PROTOCOL, -1, FWPS_FIELD_ALE_AUTH_CONNECT_V4_FLAGS, 32),
    L4(ALE_AUTH_RECV_ACCEPT, 0, FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_LOCAL_PORT,
       FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_REMOTE_ADDRESS,
       FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_REMOTE_PORT,
       FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_IP_PROTOCOL, -1,
       FWPS_FIELD_ALE_AUTH_RECV_ACCEPT_V4_FLAGS, 32),
    L4(ALE_FLOW_ESTABLISHED, 0, FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_LOCAL_PORT,
       FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_REMOTE_ADDRESS,
       FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_REMOTE_PORT,
       FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_IP_PROTOCOL,
       FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_DIRECTION,
       FWPS_FIELD_ALE_FLOW_ESTABLISHED_V4_FLAGS, 32),
    L4(ALE_ENDPOINT_CLOSURE, 0, FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_LOCAL_PORT,
       FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_REMOTE_ADDRESS,
       FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_REMOTE_PORT,
       FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_IP_PROTOCOL, -1,
       FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_FLAGS, FWPS_FIELD_ALE_ENDPOINT_CLOSURE_V4_MAX),
    L4(INBOUND_TRANSPORT, 0, FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_LOCAL_PORT,
       FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
       FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_REMOTE_PORT,
       FWPS_FIELD_INBOUND_TRANSPORT_V4_IP_PROTOCOL, -1,
       FWPS_FIELD_INBOUND_TRANSPORT_V4_FLAGS, FWPS_FIELD_INBOUND_TRANSPORT_V4_MAX),
    L4(OUTBOUND_TRANSPORT, 0, FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_LOCAL_ADDRESS,
       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_LOCAL_PORT,
       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT,
       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL, -1,
       FWPS_FIELD_OUTBOUND_TRANSPORT_V4_FLAGS, FWPS_FIELD_OUTBOUND_TRANSPORT_V4_MAX),
    L4(STREAM, 0, FWPS_FIELD_STREAM_V4_IP_LOCAL_ADDRESS, FWPS_FIELD_STREAM_V4_IP_LOCAL_PORT,
       FWPS_FIELD_STREAM_V4_IP_REMOTE_ADDRESS, FWPS_FIELD_STREAM_V4_IP_REMOTE_PORT, -1,
       FWPS_FIELD_STREAM_V4_DIRECTION, FWPS_FIELD_STREAM_V4_FLAGS, FWPS_FIELD_STREAM_V4_MAX),
};
#define CSIM_LAYER_COUNT (sizeof(g_layers) / sizeof(g_layers[0]))

static const CSIM_LAYER *csim_layer(UINT16 id)
{
    UINT32 i;
    for (i = 0; i < CSIM_LAYER_COUNT; i++) {
        if (g_layers[i].id == id) {
            return &g_layers[i];
        }
    }
    return NULL;
}

static const CSIM_LAYER *csim_layer_by_key(const GUID *key)
{
    UINT32 i;
    for (i = 0; key != NULL && i < CSIM_LAYER_COUNT; i++) {
        if (IsEqualGUID(g_layers[i].key, key)) {
            return &g_layers[i];
        }
    }
    return NULL;
}

/* -- callouts ---------------------------------------------------------------------------------- */

typedef struct CSIM_CALLOUT {
    UINT32 id;
    UINT32 version;
    UINT32 registered;
    GUID key;
    FWPS_CALLOUT_CLASSIFY_FN0 classify0;
    FWPS_CALLOUT_CLASSIFY_FN1 classify1;
    FWPS_CALLOUT_NOTIFY_FN0 notify0;
    FWPS_CALLOUT_NOTIFY_FN1 notify1;
    FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0 flowDelete;
} CSIM_CALLOUT;

static CSIM_CALLOUT g_callouts[CSIM_MAX_CALLOUTS];
static UINT32 g_callout_count;

static CSIM_CALLOUT *csim_callout(UINT32 id)
{
    if (id == 0 || id > g_callout_count) {
        return NULL;
    }
    return &g_callouts[id - 1];
}

static NTSTATUS csim_register(UINT32 version, const GUID *key, FWPS_CALLOUT_CLASSIFY_FN0 c0,
                              FWPS_CALLOUT_CLASSIFY_FN1 c1, FWPS_CALLOUT_NOTIFY_FN0 n0,
                              FWPS_CALLOUT_NOTIFY_FN1 n1, FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0 fd,
                              UINT32 *calloutId)
{
    UINT32 i;
    CSIM_CALLOUT *c;
    NTSTATUS status;
    csim_irql_at_most(PASSIVE_LEVEL, "FwpsCalloutRegister");
    if (key == NULL || (c0 == NULL && c1 == NULL)) {
        return STATUS_INVALID_PARAMETER;
    }
    for (i = 0; i < g_callout_count; i++) {
        if (g_callouts[i].registered && IsEqualGUID(&g_callouts[i].key, key)) {
            return STATUS_FWP_ALREADY_EXISTS;
        }
    }
    if (g_callout_count == CSIM_MAX_CALLOUTS) {
        csim_fatal("more than %d callout registrations", CSIM_MAX_CALLOUTS);
    }
    c = &g_callouts[g_callout_count];
    memset(c, 0, sizeof(*c));
    c->id = g_callout_count + 1;
    c->version = version;
    c->key = *key;
    c->classify0 = c0;
    c->classify1 = c1;
    c->notify0 = n0;
    c->notify1 = n1;
    c->flowDelete = fd;
    status = g_host.callout_register(c->id, key);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    c->registered = 1;
    g_callout_count++;
    if (calloutId != NULL) {
        *calloutId = c->id;
    }
    return STATUS_SUCCESS;
}

NTSTATUS FwpsCalloutRegister0(void *deviceObject, const FWPS_CALLOUT0 *callout, UINT32 *calloutId)
{
    UNREFERENCED_PARAMETER(deviceObject);
    return csim_register(0, &callout->calloutKey, callout->classifyFn, NULL, callout->notifyFn,
                         NULL, callout->flowDeleteFn, calloutId);
}

NTSTATUS FwpsCalloutRegister1(void *deviceObject, const FWPS_CALLOUT1 *callout, UINT32 *calloutId)
{
    UNREFERENCED_PARAMETER(deviceObject);
    return csim_register(1, &callout->calloutKey, NULL, callout->classifyFn, NULL,
                         callout->notifyFn, callout->flowDeleteFn, calloutId);
}

NTSTATUS FwpsCalloutRegister2(void *deviceObject, const FWPS_CALLOUT2 *callout, UINT32 *calloutId)
{
    return FwpsCalloutRegister1(deviceObject, callout, calloutId);
}

NTSTATUS FwpsCalloutRegister3(void *deviceObject, const FWPS_CALLOUT3 *callout, UINT32 *calloutId)
{
    return FwpsCalloutRegister1(deviceObject, callout, calloutId);
}

NTSTATUS FwpsCalloutUnregisterById0(const UINT32 calloutId)
{
    CSIM_CALLOUT *c = csim_callout(calloutId);
    NTSTATUS status;
    csim_irql_at_most(PASSIVE_LEVEL, "FwpsCalloutUnregisterById0");
    if (c == NULL || !c->registered) {
        return STATUS_FWP_CALLOUT_NOT_FOUND;
    }
    status = g_host.callout_unregister(calloutId);
    if (NT_SUCCESS(status)) {
        c->registered = 0;
    }
    return status;
}

NTSTATUS FwpsCalloutUnregisterByKey0(const GUID *calloutKey)
{
    UINT32 i;
    for (i = 0; i < g_callout_count; i++) {
        if (g_callouts[i].registered && IsEqualGUID(&g_callouts[i].key, calloutKey)) {
            return FwpsCalloutUnregisterById0(g_callouts[i].id);
        }
    }
    return STATUS_FWP_CALLOUT_NOT_FOUND;
}

/* -- packets: one NET_BUFFER_LIST per engine packet id -------------------------------------------- */

static PNET_BUFFER_LIST *g_nbls;
static UINT64 g_nbl_cap;

static void csim_nbl_slot(UINT64 packet)
{
    if (packet >= CSIM_MAX_PACKETS) {
        csim_fatal("packet id %llu beyond %u", (unsigned long long)packet, CSIM_MAX_PACKETS);
    }
    if (packet >= g_nbl_cap) {
        UINT64 cap = g_nbl_cap ? g_nbl_cap : 1024;
        while (cap <= packet) {
            cap *= 2;
        }
        g_nbls = realloc(g_nbls, cap * sizeof(*g_nbls));
        if (g_nbls == NULL) {
            csim_fatal("out of memory for the packet table");
        }
        memset(g_nbls + g_nbl_cap, 0, (cap - g_nbl_cap) * sizeof(*g_nbls));
        g_nbl_cap = cap;
    }
}

static PNET_BUFFER_LIST csim_nbl_new(UINT64 packet, ULONG size, UINT64 endpoint)
{
    PNET_BUFFER_LIST nbl = calloc(1, sizeof(*nbl));
    PNET_BUFFER nb = calloc(1, sizeof(*nb));
    PMDL mdl = calloc(1, sizeof(*mdl));
    void *data = calloc(1, size ? size : 1);
    if (nbl == NULL || nb == NULL || mdl == NULL || data == NULL) {
        csim_fatal("out of memory for a NET_BUFFER_LIST");
    }
    mdl->MappedSystemVa = data;
    mdl->StartVa = data;
    mdl->ByteCount = size;
    mdl->MdlFlags = MDL_MAPPED_TO_SYSTEM_VA;
    nb->MdlChain = nb->CurrentMdl = mdl;
    nb->DataLength = size;
    nbl->FirstNetBuffer = nb;
    nbl->CsimPacket = packet;
    nbl->CsimEndpoint = endpoint;
    nbl->CsimMagic = CSIM_NBL_MAGIC;
    csim_nbl_slot(packet);
    g_nbls[packet] = nbl;
    return nbl;
}

static void csim_nbl_destroy(PNET_BUFFER_LIST nbl)
{
    PNET_BUFFER nb = nbl->FirstNetBuffer;
    if (nbl->CsimPacket < g_nbl_cap && g_nbls[nbl->CsimPacket] == nbl) {
        g_nbls[nbl->CsimPacket] = NULL;
    }
    nbl->CsimMagic = 0;
    if (nb != NULL) {
        if (nb->MdlChain != NULL) {
            free(nb->MdlChain->MappedSystemVa);
            free(nb->MdlChain);
        }
        free(nb);
    }
    free(nbl);
}

static PNET_BUFFER_LIST csim_nbl_indicated(UINT64 packet, ULONG size, UINT64 endpoint)
{
    csim_nbl_slot(packet);
    if (g_nbls[packet] != NULL) {
        return g_nbls[packet];
    }
    return csim_nbl_new(packet, size, endpoint);
}

static void csim_check_nbl(const NET_BUFFER_LIST *nbl, const char *call)
{
    if (nbl == NULL) {
        csim_fatal("%s(NULL net buffer list)", call);
    }
    if (nbl->CsimMagic != CSIM_NBL_MAGIC) {
        csim_fatal("%s: not a live NET_BUFFER_LIST (freed already?)", call);
    }
}

NTSTATUS FwpsAllocateCloneNetBufferList0(PNET_BUFFER_LIST originalNetBufferList,
    NDIS_HANDLE netBufferListPoolHandle, NDIS_HANDLE netBufferPoolHandle,
    ULONG allocateCloneFlags, PNET_BUFFER_LIST *netBufferList)
{
    UINT64 id = 0;
    NTSTATUS status;
    PNET_BUFFER_LIST clone;
    UNREFERENCED_PARAMETER(netBufferListPoolHandle);
    UNREFERENCED_PARAMETER(netBufferPoolHandle);
    UNREFERENCED_PARAMETER(allocateCloneFlags);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsAllocateCloneNetBufferList0");
    csim_check_nbl(originalNetBufferList, "FwpsAllocateCloneNetBufferList0");
    status = g_host.clone(originalNetBufferList->CsimPacket, &id);
    if (!NT_SUCCESS(status)) {
        *netBufferList = NULL;
        return status;
    }
    clone = csim_nbl_new(id, originalNetBufferList->FirstNetBuffer->DataLength,
                         originalNetBufferList->CsimEndpoint);
    clone->ParentNetBufferList = originalNetBufferList;
    *netBufferList = clone;
    return STATUS_SUCCESS;
}

void FwpsFreeCloneNetBufferList0(PNET_BUFFER_LIST netBufferList, ULONG freeCloneFlags)
{
    UNREFERENCED_PARAMETER(freeCloneFlags);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsFreeCloneNetBufferList0");
    csim_check_nbl(netBufferList, "FwpsFreeCloneNetBufferList0");
    if (netBufferList->ParentNetBufferList == NULL) {
        csim_fatal("FwpsFreeCloneNetBufferList0: the net buffer list is not a clone");
    }
    g_host.free_clone(netBufferList->CsimPacket);
    csim_nbl_destroy(netBufferList);
}

void FwpsReferenceNetBufferList0(PNET_BUFFER_LIST netBufferList, BOOLEAN intendToModify)
{
    UNREFERENCED_PARAMETER(intendToModify);
    csim_check_nbl(netBufferList, "FwpsReferenceNetBufferList0");
    netBufferList->ChildRefCount++;
    g_host.reference(netBufferList->CsimPacket);
}

void FwpsDereferenceNetBufferList0(PNET_BUFFER_LIST netBufferList, BOOLEAN dispatchLevel)
{
    UNREFERENCED_PARAMETER(dispatchLevel);
    csim_check_nbl(netBufferList, "FwpsDereferenceNetBufferList0");
    if (netBufferList->ChildRefCount <= 0) {
        csim_fatal("FwpsDereferenceNetBufferList0: dereferenced more often than referenced");
    }
    netBufferList->ChildRefCount--;
    g_host.dereference(netBufferList->CsimPacket);
}

/* The engine's packet id of a NET_BUFFER_LIST the driver logged (0 if it is not one). */
UINT64 csim_packet_of(const void *netBufferList)
{
    const NET_BUFFER_LIST *nbl = netBufferList;
    UINT64 id;
    if (nbl == NULL) {
        return 0;
    }
    for (id = 0; id < g_nbl_cap; id++) {
        if (g_nbls[id] == nbl) {
            return id;
        }
    }
    return 0;
}

/* -- classify -------------------------------------------------------------------------------------- */

static void csim_set_address(FWPS_INCOMING_VALUE0 *v, const CSIM_ADDR *a, FWP_BYTE_ARRAY16 *store)
{
    if (a->family == 6) {
        memcpy(store->byteArray16, a->bytes, 16);
        v->value.type = FWP_BYTE_ARRAY16_TYPE;
        v->value.byteArray16 = store;
    } else {
        v->value.type = FWP_UINT32;
        v->value.uint32 = ((UINT32)a->bytes[0] << 24) | ((UINT32)a->bytes[1] << 16) |
                          ((UINT32)a->bytes[2] << 8) | a->bytes[3];
    }
}

INT32 csim_classify(const CSIM_CLASSIFY *c, CSIM_CLASSIFY_RESULT *result)
{
    CSIM_CALLOUT *callout = csim_callout(c->calloutId);
    const CSIM_LAYER *layer = csim_layer(c->layerId);
    FWPS_INCOMING_VALUE0 values[40];
    FWPS_INCOMING_VALUES0 in;
    FWPS_INCOMING_METADATA_VALUES0 meta;
    FWPS_CLASSIFY_OUT0 out;
    FWPS_FILTER3 filter;
    FWP_BYTE_ARRAY16 local6, remote6;
    FWPS_STREAM_DATA0 stream;
    FWPS_STREAM_CALLOUT_IO_PACKET0 io;
    PNET_BUFFER_LIST nbl = NULL;
    void *layerData = NULL;

    if (callout == NULL || !callout->registered || layer == NULL) {
        return STATUS_FWP_CALLOUT_NOT_FOUND;
    }
    memset(values, 0, sizeof(values));
    if (layer->localAddress >= 0 && c->local.family) {
        csim_set_address(&values[layer->localAddress], &c->local, &local6);
    }
    if (layer->localPort >= 0 && c->local.family) {
        values[layer->localPort].value.type = FWP_UINT16;
        values[layer->localPort].value.uint16 = c->local.port;
    }
    if (layer->remoteAddress >= 0 && c->remote.family) {
        csim_set_address(&values[layer->remoteAddress], &c->remote, &remote6);
    }
    if (layer->remotePort >= 0 && c->remote.family) {
        values[layer->remotePort].value.type = FWP_UINT16;
        values[layer->remotePort].value.uint16 = c->remote.port;
    }
    if (layer->protocol >= 0) {
        values[layer->protocol].value.type = FWP_UINT8;
        values[layer->protocol].value.uint8 = c->protocol;
    }
    if (layer->direction >= 0) {
        values[layer->direction].value.type = FWP_UINT32;
        values[layer->direction].value.uint32 = c->direction;
    }
    values[layer->flags].value.type = FWP_UINT32;
    values[layer->flags].value.uint32 = c->conditionFlags;
    in.layerId = c->layerId;
    in.valueCount = layer->count;
    in.incomingValue = values;

    memset(&meta, 0, sizeof(meta));
    if (c->present & CSIM_HAS_ENDPOINT) {
        meta.currentMetadataValues |= FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE;
        meta.transportEndpointHandle = c->endpoint;
    }
    if (c->present & CSIM_HAS_PARENT) {
        meta.currentMetadataValues |= FWPS_METADATA_FIELD_PARENT_ENDPOINT_HANDLE;
        meta.parentEndpointHandle = c->parent;
    }
    if (c->present & CSIM_HAS_FLOW) {
        meta.currentMetadataValues |= FWPS_METADATA_FIELD_FLOW_HANDLE;
        meta.flowHandle = c->flow;
    }
    /* The handle names the classify even where the engine grants no pend (the field is
     * then not present): a driver that pends there anyway is refused by the engine. */
    meta.completionHandle = (HANDLE)(ULONG_PTR)c->id;
    if (c->present & CSIM_HAS_COMPLETION) {
        meta.currentMetadataValues |= FWPS_METADATA_FIELD_COMPLETION_HANDLE;
    }
    if (c->present & CSIM_HAS_ALE_REQUIRED) {
        meta.currentMetadataValues |= FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED;
    }
    meta.currentMetadataValues |= FWPS_METADATA_FIELD_PACKET_DIRECTION;
    meta.packetDirection = (FWP_DIRECTION)c->direction;

    if (c->present & CSIM_HAS_PACKET) {
        nbl = csim_nbl_indicated(c->packet, c->packetSize, c->endpoint);
        nbl->CsimInjection = c->injection;
        if (c->present & CSIM_HAS_ENDPOINT) {
            nbl->CsimEndpoint = c->endpoint;  /* a packet seen before its endpoint existed */
        }
        if (c->layerId == FWPS_LAYER_STREAM_V4 || c->layerId == FWPS_LAYER_STREAM_V6) {
            memset(&stream, 0, sizeof(stream));
            memset(&io, 0, sizeof(io));
            stream.flags = c->direction == FWP_DIRECTION_INBOUND ? FWPS_STREAM_FLAG_RECEIVE
                                                                 : FWPS_STREAM_FLAG_SEND;
            stream.dataLength = c->packetSize;
            stream.netBufferListChain = nbl;
            stream.dataOffset.netBufferList = nbl;
            stream.dataOffset.netBuffer = nbl->FirstNetBuffer;
            stream.dataOffset.mdl = nbl->FirstNetBuffer->MdlChain;
            io.streamData = &stream;
            layerData = &io;
        } else {
            layerData = nbl;
        }
    }

    memset(&out, 0, sizeof(out));
    out.actionType = FWP_ACTION_CONTINUE;
    out.rights = c->rights;
    out.filterId = c->filterId;
    memset(&filter, 0, sizeof(filter));
    filter.filterId = c->filterId;
    filter.action.type = FWP_ACTION_CALLOUT_TERMINATING;
    filter.action.calloutId = c->calloutId;
    filter.context = c->filterContext;

    if (callout->classify1 != NULL) {
        CSIM_AT_IRQL(DISPATCH_LEVEL, "classifyFn",
                     callout->classify1(&in, &meta, layerData, (const void *)(ULONG_PTR)c->id,
                                        &filter, c->flowContext, &out));
    } else {
        CSIM_AT_IRQL(DISPATCH_LEVEL, "classifyFn",
                     callout->classify0(&in, &meta, layerData, &filter, c->flowContext, &out));
    }
    result->actionType = out.actionType;
    result->flags = out.flags;
    result->rights = out.rights;
    return STATUS_SUCCESS;
}

INT32 csim_notify(UINT32 calloutId, UINT32 type, UINT64 filterId, UINT64 filterContext,
                  UINT16 layerId)
{
    CSIM_CALLOUT *callout = csim_callout(calloutId);
    FWPS_FILTER3 filter;
    GUID key;
    NTSTATUS status = STATUS_SUCCESS;
    UNREFERENCED_PARAMETER(layerId);
    if (callout == NULL || !callout->registered) {
        return STATUS_FWP_CALLOUT_NOT_FOUND;
    }
    memset(&filter, 0, sizeof(filter));
    memset(&key, 0, sizeof(key));
    memcpy(key.Data4, &filterId, sizeof(key.Data4));
    filter.filterId = filterId;
    filter.action.type = FWP_ACTION_CALLOUT_TERMINATING;
    filter.action.calloutId = calloutId;
    filter.context = filterContext;
    if (callout->notify1 != NULL) {
        CSIM_AT_IRQL(PASSIVE_LEVEL, "notifyFn",
                     status = callout->notify1((FWPS_CALLOUT_NOTIFY_TYPE)type, &key, &filter));
    } else if (callout->notify0 != NULL) {
        CSIM_AT_IRQL(PASSIVE_LEVEL, "notifyFn",
                     status = callout->notify0((FWPS_CALLOUT_NOTIFY_TYPE)type, &key, &filter));
    }
    return status;
}

void csim_flow_delete(UINT16 layerId, UINT32 calloutId, UINT64 flowContext)
{
    CSIM_CALLOUT *callout = csim_callout(calloutId);
    if (callout == NULL || callout->flowDelete == NULL) {
        return;
    }
    CSIM_AT_IRQL(DISPATCH_LEVEL, "flowDeleteFn", callout->flowDelete(layerId, calloutId, flowContext));
}

/* -- pend / complete, classify handles ---------------------------------------------------------- */

NTSTATUS FwpsPendOperation0(HANDLE completionHandle, HANDLE *completionContext)
{
    UINT64 ctx = 0;
    NTSTATUS status;
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsPendOperation0");
    if (completionContext == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    status = g_host.pend_operation((UINT64)(ULONG_PTR)completionHandle, &ctx);
    *completionContext = NT_SUCCESS(status) ? (HANDLE)(ULONG_PTR)ctx : NULL;
    return status;
}

void FwpsCompleteOperation0(HANDLE completionContext, PNET_BUFFER_LIST netBufferList)
{
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsCompleteOperation0");
    if (netBufferList != NULL) {
        csim_check_nbl(netBufferList, "FwpsCompleteOperation0");
    }
    g_host.complete_operation((UINT64)(ULONG_PTR)completionContext,
                              netBufferList != NULL ? netBufferList->CsimPacket : 0);
}

NTSTATUS FwpsAcquireClassifyHandle0(void *classifyContext, UINT32 reserved, UINT64 *classifyHandle)
{
    UNREFERENCED_PARAMETER(reserved);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsAcquireClassifyHandle0");
    if (classifyHandle == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    return g_host.acquire_classify_handle((UINT64)(ULONG_PTR)classifyContext, classifyHandle);
}

void FwpsReleaseClassifyHandle0(UINT64 classifyHandle)
{
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsReleaseClassifyHandle0");
    g_host.release_classify_handle(classifyHandle);
}

NTSTATUS FwpsPendClassify0(UINT64 classifyHandle, UINT64 filterId, UINT32 flags,
                           FWPS_CLASSIFY_OUT0 *classifyOut)
{
    UNREFERENCED_PARAMETER(filterId);
    UNREFERENCED_PARAMETER(flags);
    UNREFERENCED_PARAMETER(classifyOut);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsPendClassify0");
    return g_host.pend_classify(classifyHandle);
}

void FwpsCompleteClassify0(UINT64 classifyHandle, UINT32 flags, const FWPS_CLASSIFY_OUT0 *classifyOut)
{
    UNREFERENCED_PARAMETER(flags);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsCompleteClassify0");
    g_host.complete_classify(classifyHandle, classifyOut != NULL ? classifyOut->actionType : 0);
}

/* -- injection ---------------------------------------------------------------------------------- */

typedef struct CSIM_INJECTION_HANDLE { ULONG magic; ADDRESS_FAMILY family; UINT32 flags; }
    CSIM_INJECTION_HANDLE;

NTSTATUS FwpsInjectionHandleCreate0(ADDRESS_FAMILY addressFamily, UINT32 flags,
                                    HANDLE *injectionHandle)
{
    CSIM_INJECTION_HANDLE *h;
    csim_irql_at_most(PASSIVE_LEVEL, "FwpsInjectionHandleCreate0");
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    h->magic = CSIM_INJECT_MAGIC;
    h->family = addressFamily;
    h->flags = flags;
    *injectionHandle = h;
    return STATUS_SUCCESS;
}

NTSTATUS FwpsInjectionHandleDestroy0(HANDLE injectionHandle)
{
    CSIM_INJECTION_HANDLE *h = injectionHandle;
    csim_irql_at_most(PASSIVE_LEVEL, "FwpsInjectionHandleDestroy0");
    if (h == NULL || h->magic != CSIM_INJECT_MAGIC) {
        csim_fatal("FwpsInjectionHandleDestroy0: not an injection handle (destroyed twice?)");
    }
    h->magic = 0;
    free(h);
    return STATUS_SUCCESS;
}

static void csim_check_injection_handle(HANDLE injectionHandle, UINT32 type, const char *call)
{
    CSIM_INJECTION_HANDLE *h = injectionHandle;
    if (h == NULL || h->magic != CSIM_INJECT_MAGIC) {
        csim_fatal("%s: not an injection handle", call);
    }
    if (type != 0 && !(h->flags & type)) {
        csim_fatal("%s: the injection handle was not created for this injection type", call);
    }
}

FWPS_PACKET_INJECTION_STATE FwpsQueryPacketInjectionState0(HANDLE injectionHandle,
    const NET_BUFFER_LIST *netBufferList, HANDLE *injectionContext)
{
    csim_check_injection_handle(injectionHandle, 0, "FwpsQueryPacketInjectionState0");
    csim_check_nbl(netBufferList, "FwpsQueryPacketInjectionState0");
    if (injectionContext != NULL) {
        *injectionContext = NULL;
    }
    return (FWPS_PACKET_INJECTION_STATE)netBufferList->CsimInjection;
}

static NTSTATUS csim_inject(UINT32 kind, PNET_BUFFER_LIST nbl, UINT64 endpoint, UINT64 flow,
                            FWPS_INJECT_COMPLETE0 completionFn, HANDLE completionContext)
{
    UINT64 cookie = csim_schedule(CSIM_WORK_INJECTION, nbl, (void *)completionFn,
                                  completionContext, NULL);
    NTSTATUS status = g_host.inject(kind, nbl->CsimPacket, endpoint, flow,
                                    completionFn != NULL ? cookie : 0);
    if (!NT_SUCCESS(status) || completionFn == NULL) {
        csim_unschedule(cookie);  /* a failed injection never completes */
    }
    return status;
}

NTSTATUS FwpsInjectTransportSendAsync0(HANDLE injectionHandle, HANDLE injectionContext,
    UINT64 endpointHandle, UINT32 flags, FWPS_TRANSPORT_SEND_PARAMS0 *sendArgs,
    ADDRESS_FAMILY addressFamily, COMPARTMENT_ID compartmentId,
    PNET_BUFFER_LIST netBufferList, FWPS_INJECT_COMPLETE0 completionFn,
    HANDLE completionContext)
{
    UNREFERENCED_PARAMETER(injectionContext);
    UNREFERENCED_PARAMETER(flags);
    UNREFERENCED_PARAMETER(sendArgs);
    UNREFERENCED_PARAMETER(addressFamily);
    UNREFERENCED_PARAMETER(compartmentId);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsInjectTransportSendAsync0");
    csim_check_injection_handle(injectionHandle, FWPS_INJECTION_TYPE_TRANSPORT,
                                "FwpsInjectTransportSendAsync0");
    csim_check_nbl(netBufferList, "FwpsInjectTransportSendAsync0");
    return csim_inject(CSIM_INJECT_TRANSPORT_SEND, netBufferList, endpointHandle, 0,
                       completionFn, completionContext);
}

NTSTATUS FwpsInjectTransportReceiveAsync0(HANDLE injectionHandle, HANDLE injectionContext,
    PVOID reserved, UINT32 flags, ADDRESS_FAMILY addressFamily, COMPARTMENT_ID compartmentId,
    IF_INDEX interfaceIndex, IF_INDEX subInterfaceIndex, PNET_BUFFER_LIST netBufferList,
    FWPS_INJECT_COMPLETE0 completionFn, HANDLE completionContext)
{
    UNREFERENCED_PARAMETER(injectionContext);
    UNREFERENCED_PARAMETER(reserved);
    UNREFERENCED_PARAMETER(flags);
    UNREFERENCED_PARAMETER(addressFamily);
    UNREFERENCED_PARAMETER(compartmentId);
    UNREFERENCED_PARAMETER(interfaceIndex);
    UNREFERENCED_PARAMETER(subInterfaceIndex);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsInjectTransportReceiveAsync0");
    csim_check_injection_handle(injectionHandle, FWPS_INJECTION_TYPE_TRANSPORT,
                                "FwpsInjectTransportReceiveAsync0");
    csim_check_nbl(netBufferList, "FwpsInjectTransportReceiveAsync0");
    return csim_inject(CSIM_INJECT_TRANSPORT_RECV, netBufferList, netBufferList->CsimEndpoint, 0,
                       completionFn, completionContext);
}

NTSTATUS FwpsStreamInjectAsync0(HANDLE injectionHandle, HANDLE injectionContext, UINT32 flags,
    UINT64 flowId, UINT32 calloutId, UINT16 layerId, UINT32 streamFlags,
    PNET_BUFFER_LIST netBufferList, SIZE_T dataLength, FWPS_INJECT_COMPLETE0 completionFn,
    HANDLE completionContext)
{
    UNREFERENCED_PARAMETER(injectionContext);
    UNREFERENCED_PARAMETER(flags);
    UNREFERENCED_PARAMETER(calloutId);
    UNREFERENCED_PARAMETER(layerId);
    UNREFERENCED_PARAMETER(streamFlags);
    UNREFERENCED_PARAMETER(dataLength);
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsStreamInjectAsync0");
    csim_check_injection_handle(injectionHandle, FWPS_INJECTION_TYPE_STREAM,
                                "FwpsStreamInjectAsync0");
    csim_check_nbl(netBufferList, "FwpsStreamInjectAsync0");
    return csim_inject(CSIM_INJECT_STREAM, netBufferList, 0, flowId, completionFn,
                       completionContext);
}

NTSTATUS FwpsCloneStreamData0(FWPS_STREAM_DATA0 *calloutStreamData,
    NDIS_HANDLE netBufferListPoolHandle, NDIS_HANDLE netBufferPoolHandle,
    ULONG allocateCloneFlags, PNET_BUFFER_LIST *netBufferListChain)
{
    if (calloutStreamData == NULL || calloutStreamData->netBufferListChain == NULL) {
        csim_fatal("FwpsCloneStreamData0: no stream data");
    }
    return FwpsAllocateCloneNetBufferList0(calloutStreamData->netBufferListChain,
                                           netBufferListPoolHandle, netBufferPoolHandle,
                                           allocateCloneFlags, netBufferListChain);
}

void FwpsDiscardClonedStreamData0(PNET_BUFFER_LIST netBufferListChain, UINT32 allocateCloneFlags,
                                  BOOLEAN dispatchLevel)
{
    UNREFERENCED_PARAMETER(dispatchLevel);
    while (netBufferListChain != NULL) {
        PNET_BUFFER_LIST next;
        csim_check_nbl(netBufferListChain, "FwpsDiscardClonedStreamData0");
        next = netBufferListChain->Next;
        FwpsFreeCloneNetBufferList0(netBufferListChain, allocateCloneFlags);
        netBufferListChain = next;
    }
}

/* -- flow contexts -------------------------------------------------------------------------------- */

NTSTATUS FwpsFlowAssociateContext0(UINT64 flowId, UINT16 layerId, UINT32 calloutId,
                                   UINT64 flowContext)
{
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsFlowAssociateContext0");
    if (csim_layer(layerId) == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    return g_host.flow_associate(flowId, layerId, calloutId, flowContext);
}

NTSTATUS FwpsFlowRemoveContext0(UINT64 flowId, UINT16 layerId, UINT32 calloutId)
{
    csim_irql_at_most(DISPATCH_LEVEL, "FwpsFlowRemoveContext0");
    if (csim_layer(layerId) == NULL) {
        return STATUS_INVALID_PARAMETER;
    }
    return g_host.flow_remove(flowId, layerId, calloutId);
}

/* -- the kernel-mode management API: a kernel session on the model's BFE ------------------------ */

typedef struct CSIM_ENGINE { ULONG magic; UINT64 session; } CSIM_ENGINE;

static CSIM_ENGINE *csim_engine(HANDLE engineHandle, const char *call)
{
    CSIM_ENGINE *e = engineHandle;
    if (e == NULL || e->magic != CSIM_ENGINE_MAGIC) {
        csim_fatal("%s: not an engine handle (closed already?)", call);
    }
    return e;
}

NTSTATUS FwpmEngineOpen0(const wchar_t *serverName, UINT32 authnService,
                         SEC_WINNT_AUTH_IDENTITY_W *authIdentity, const FWPM_SESSION0 *session,
                         HANDLE *engineHandle)
{
    CSIM_BFE_ARGS args;
    CSIM_ENGINE *e;
    UINT64 id = 0;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(authnService);
    UNREFERENCED_PARAMETER(authIdentity);
    csim_irql_at_most(PASSIVE_LEVEL, "FwpmEngineOpen0");
    if (serverName != NULL) {
        return STATUS_INVALID_PARAMETER;  /* kernel clients talk to the local BFE only */
    }
    memset(&args, 0, sizeof(args));
    if (session != NULL) {
        args.flags = session->flags;
        args.txnWaitMs = session->txnWaitTimeoutInMSec;
    }
    status = g_host.bfe(CSIM_BFE_OPEN, 0, &args, &id);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    e->magic = CSIM_ENGINE_MAGIC;
    e->session = id;
    *engineHandle = e;
    return STATUS_SUCCESS;
}

NTSTATUS FwpmEngineClose0(HANDLE engineHandle)
{
    CSIM_ENGINE *e = csim_engine(engineHandle, "FwpmEngineClose0");
    NTSTATUS status = g_host.bfe(CSIM_BFE_CLOSE, e->session, NULL, NULL);
    e->magic = 0;
    free(e);
    return status;
}

static NTSTATUS csim_bfe_out(HANDLE engineHandle, UINT32 op, const CSIM_BFE_ARGS *args,
                             UINT64 *out, const char *call)
{
    CSIM_ENGINE *e = csim_engine(engineHandle, call);
    csim_irql_at_most(PASSIVE_LEVEL, call);
    return g_host.bfe(op, e->session, args, out);
}

static NTSTATUS csim_bfe(HANDLE engineHandle, UINT32 op, const CSIM_BFE_ARGS *args,
                         const char *call)
{
    return csim_bfe_out(engineHandle, op, args, NULL, call);
}

NTSTATUS FwpmTransactionBegin0(HANDLE engineHandle, UINT32 flags)
{
    CSIM_BFE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = flags;
    return csim_bfe(engineHandle, CSIM_BFE_BEGIN, &args, "FwpmTransactionBegin0");
}

NTSTATUS FwpmTransactionCommit0(HANDLE engineHandle)
{
    return csim_bfe(engineHandle, CSIM_BFE_COMMIT, NULL, "FwpmTransactionCommit0");
}

NTSTATUS FwpmTransactionAbort0(HANDLE engineHandle)
{
    return csim_bfe(engineHandle, CSIM_BFE_ABORT, NULL, "FwpmTransactionAbort0");
}

NTSTATUS FwpmProviderAdd0(HANDLE engineHandle, const FWPM_PROVIDER0 *provider,
                          PSECURITY_DESCRIPTOR sd)
{
    CSIM_BFE_ARGS args;
    UNREFERENCED_PARAMETER(sd);
    if (provider == NULL) {
        return STATUS_FWP_NULL_POINTER;
    }
    memset(&args, 0, sizeof(args));
    args.objectType = "provider";
    args.key = &provider->providerKey;
    args.flags = provider->flags;
    return csim_bfe(engineHandle, CSIM_BFE_ADD, &args, "FwpmProviderAdd0");
}

NTSTATUS FwpmSubLayerAdd0(HANDLE engineHandle, const FWPM_SUBLAYER0 *subLayer,
                          PSECURITY_DESCRIPTOR sd)
{
    CSIM_BFE_ARGS args;
    UNREFERENCED_PARAMETER(sd);
    if (subLayer == NULL) {
        return STATUS_FWP_NULL_POINTER;
    }
    memset(&args, 0, sizeof(args));
    args.objectType = "sublayer";
    args.key = &subLayer->subLayerKey;
    args.provider = subLayer->providerKey;
    args.weight = subLayer->weight;
    args.flags = subLayer->flags;
    return csim_bfe(engineHandle, CSIM_BFE_ADD, &args, "FwpmSubLayerAdd0");
}

NTSTATUS FwpmCalloutAdd0(HANDLE engineHandle, const FWPM_CALLOUT0 *callout,
                         PSECURITY_DESCRIPTOR sd, UINT32 *id)
{
    CSIM_BFE_ARGS args;
    const CSIM_LAYER *layer;
    UINT64 out = 0;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(sd);
    if (callout == NULL) {
        return STATUS_FWP_NULL_POINTER;
    }
    layer = csim_layer_by_key(&callout->applicableLayer);
    memset(&args, 0, sizeof(args));
    args.objectType = "callout";
    args.key = &callout->calloutKey;
    args.provider = callout->providerKey;
    args.layer = layer != NULL ? layer->name : "";
    args.flags = callout->flags;
    status = csim_bfe_out(engineHandle, CSIM_BFE_ADD, &args, &out, "FwpmCalloutAdd0");
    if (id != NULL) {
        *id = NT_SUCCESS(status) ? (UINT32)out : 0;
    }
    return status;
}

NTSTATUS FwpmFilterAdd0(HANDLE engineHandle, const FWPM_FILTER0 *filter,
                        PSECURITY_DESCRIPTOR sd, UINT64 *id)
{
    CSIM_BFE_ARGS args;
    const CSIM_LAYER *layer;
    UINT64 out = 0;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(sd);
    if (filter == NULL) {
        return STATUS_FWP_NULL_POINTER;
    }
    layer = csim_layer_by_key(&filter->layerKey);
    memset(&args, 0, sizeof(args));
    args.objectType = "filter";
    args.key = &filter->filterKey;
    args.provider = filter->providerKey;
    args.layer = layer != NULL ? layer->name : "";
    args.sublayer = &filter->subLayerKey;
    args.action = filter->action.type;
    if (filter->action.type & FWP_ACTION_FLAG_CALLOUT) {
        args.callout = &filter->action.calloutKey;
    }
    args.weightType = filter->weight.type;
    if (filter->weight.type == FWP_UINT8) {
        args.weightValue = filter->weight.uint8;
    } else if (filter->weight.type == FWP_UINT64) {
        if (filter->weight.uint64 == NULL) {
            return STATUS_FWP_NULL_POINTER;
        }
        args.weightValue = *filter->weight.uint64;
    }
    args.flags = filter->flags;
    if (filter->numFilterConditions != 0 && filter->filterCondition == NULL) {
        return STATUS_FWP_NULL_POINTER;
    }
    args.numConditions = filter->numFilterConditions;
    args.conditions = filter->filterCondition;
    if (filter->flags & FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT) {
        args.providerContext = &filter->providerContextKey;
    }
    status = csim_bfe_out(engineHandle, CSIM_BFE_ADD, &args, &out, "FwpmFilterAdd0");
    if (id != NULL) {
        *id = NT_SUCCESS(status) ? out : 0;
    }
    return status;
}

NTSTATUS FwpmFilterDeleteByKey0(HANDLE engineHandle, const GUID *key)
{
    CSIM_BFE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.objectType = "filter";
    args.key = key;
    return csim_bfe(engineHandle, CSIM_BFE_DELETE, &args, "FwpmFilterDeleteByKey0");
}

NTSTATUS FwpmFilterDeleteById0(HANDLE engineHandle, UINT64 id)
{
    CSIM_BFE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.objectType = "filter";
    args.id = id;
    return csim_bfe(engineHandle, CSIM_BFE_DELETE, &args, "FwpmFilterDeleteById0");
}
