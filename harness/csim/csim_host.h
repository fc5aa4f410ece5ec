/*
 * csim_host.h - the seam between the host runtime (runtime.c) and the harness.
 *
 * The harness fills a CSIM_HOST table with callbacks into the engine model's
 * callout API (harness/csim/adapter.py builds the same layout with ctypes) and
 * drives the driver through the csim_* entry points. Change both sides together.
 */
#ifndef CSIM_HOST_H
#define CSIM_HOST_H
#include <fwpsk.h>
#include <fwpmtypes.h>
#include <TraceLoggingProvider.h>

#define CSIM_ABI_VERSION 2

typedef struct CSIM_ADDR {
    UINT8 family;       /* 0 (absent), 4 or 6 */
    UINT8 reserved;
    UINT16 port;        /* host order */
    UINT8 bytes[16];    /* network order */
} CSIM_ADDR;

#define CSIM_HAS_ENDPOINT     0x0001
#define CSIM_HAS_PARENT       0x0002
#define CSIM_HAS_FLOW         0x0004
#define CSIM_HAS_COMPLETION   0x0008
#define CSIM_HAS_PACKET       0x0010
#define CSIM_HAS_ALE_REQUIRED 0x0020

typedef struct CSIM_CLASSIFY {
    UINT64 id;            /* the engine's classify id: completion handle and classify context */
    UINT64 endpoint;
    UINT64 parent;
    UINT64 flow;
    UINT64 packet;        /* the engine's packet id, 0 = none */
    UINT64 flowContext;
    UINT64 filterId;
    UINT64 filterContext;
    UINT32 present;       /* CSIM_HAS_* */
    UINT32 calloutId;
    UINT32 conditionFlags;/* FWP_CONDITION_FLAG_* */
    UINT32 injection;     /* FWPS_PACKET_INJECTION_STATE of the indicated packet */
    UINT32 rights;        /* FWPS_RIGHT_ACTION_WRITE when granted */
    UINT32 packetSize;
    UINT16 layerId;
    UINT8 protocol;       /* IPPROTO_* */
    UINT8 direction;      /* FWP_DIRECTION_* */
    UINT32 reserved;
    CSIM_ADDR local;
    CSIM_ADDR remote;
} CSIM_CLASSIFY;

typedef struct CSIM_CLASSIFY_RESULT {
    UINT32 actionType;
    UINT32 flags;
    UINT32 rights;
    UINT32 reserved;
} CSIM_CLASSIFY_RESULT;

enum { CSIM_INJECT_TRANSPORT_SEND = 1, CSIM_INJECT_TRANSPORT_RECV, CSIM_INJECT_NETWORK_SEND,
       CSIM_INJECT_NETWORK_RECV, CSIM_INJECT_FORWARD, CSIM_INJECT_STREAM };

enum { CSIM_BFE_OPEN = 1, CSIM_BFE_CLOSE, CSIM_BFE_BEGIN, CSIM_BFE_COMMIT, CSIM_BFE_ABORT,
       CSIM_BFE_ADD, CSIM_BFE_DELETE };
typedef struct CSIM_BFE_ARGS {
    const char *objectType;  /* provider, sublayer, callout, filter */
    const GUID *key;
    const char *layer;       /* run-time layer name, without FWPS_LAYER_ */
    const GUID *sublayer;
    const GUID *callout;
    const GUID *provider;
    UINT64 id;
    UINT32 action;           /* FWP_ACTION_* of a filter */
    UINT32 weight;
    UINT32 flags;
    UINT32 txnWaitMs;
    UINT32 weightType;       /* FWP_DATA_TYPE of a filter's weight: FWP_EMPTY, FWP_UINT8, FWP_UINT64 */
    UINT64 weightValue;
    UINT32 numConditions;    /* a filter's FWPM_FILTER_CONDITION0 array */
    const FWPM_FILTER_CONDITION0 *conditions;
    const GUID *providerContext;  /* with FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT */
} CSIM_BFE_ARGS;
/* bfe(): ADD writes the new filter's id (FwpmFilterAdd0) or callout's id (FwpmCalloutAdd0)
 * to *out; OPEN writes the session handle. */

typedef struct CSIM_HOST {
    UINT32 version;
    UINT32 reserved;
    INT32 (*pend_operation)(UINT64 classifyId, UINT64 *completionContext);
    void (*complete_operation)(UINT64 completionContext, UINT64 packet);
    INT32 (*acquire_classify_handle)(UINT64 classifyId, UINT64 *classifyHandle);
    void (*release_classify_handle)(UINT64 classifyHandle);
    INT32 (*pend_classify)(UINT64 classifyHandle);
    void (*complete_classify)(UINT64 classifyHandle, UINT32 action);  /* 0: reauthorize */
    INT32 (*clone)(UINT64 packet, UINT64 *clone);
    void (*free_clone)(UINT64 packet);
    void (*reference)(UINT64 packet);
    void (*dereference)(UINT64 packet);
    INT32 (*inject)(UINT32 kind, UINT64 packet, UINT64 endpoint, UINT64 flow, UINT64 cookie);
    INT32 (*flow_associate)(UINT64 flow, UINT32 layerId, UINT32 calloutId, UINT64 context);
    INT32 (*flow_remove)(UINT64 flow, UINT32 layerId, UINT32 calloutId);
    INT32 (*callout_register)(UINT32 calloutId, const GUID *calloutKey);
    INT32 (*callout_unregister)(UINT32 calloutId);
    void (*call_later)(UINT64 delay100ns, UINT64 cookie);
    void (*trace)(const char *provider, const char *eventName, const CSIM_TLG_FIELD *fields,
                  UINT32 count);
    void (*fatal)(const char *message);
    UINT64 (*now100ns)(void);
    INT32 (*bfe)(UINT32 op, UINT64 session, const CSIM_BFE_ARGS *args, UINT64 *out);
} CSIM_HOST;

/* Entry points the harness calls (all return NTSTATUS unless said otherwise). */
INT32 csim_init(const CSIM_HOST *host);
INT32 csim_driver_entry(void);
INT32 csim_device_control(UINT32 ioControlCode, void *input, UINT32 inputLength);
void csim_driver_unload(void);
INT32 csim_classify(const CSIM_CLASSIFY *classify, CSIM_CLASSIFY_RESULT *result);
INT32 csim_notify(UINT32 calloutId, UINT32 type, UINT64 filterId, UINT64 filterContext,
                  UINT16 layerId);
void csim_flow_delete(UINT16 layerId, UINT32 calloutId, UINT64 flowContext);
void csim_fire(UINT64 cookie);
void csim_inject_complete(UINT64 cookie, INT32 status);
UINT32 csim_pool_report(char *buffer, UINT32 size);
UINT32 csim_abi_version(void);
UINT64 csim_packet_of(const void *netBufferList);
void csim_tlg_select(INT32 all);
#endif
