/*
 * Adds its own policy from DriverEntry, as a driver does on Windows: in one transaction
 * a provider, a sublayer, the FWPM callout for its run-time callout and a callout filter
 * for TCP connects to remote ports 8000-8099; then a plain BLOCK filter it deletes again
 * by id; then, in a second transaction it aborts, a duplicate provider and a filter
 * naming a callout nobody added; last it deletes by key the filter the abort dropped.
 * Its classifyFn blocks. DriverEntry fails with 0xE00000NN naming step NN when a call
 * does not answer the documented status.
 */
#include <ntddk.h>
#include <fwpsk.h>
#include <fwpmk.h>

static const GUID PROVIDER = { 0xa0000001, 0x1, 0x1, { 1, 2, 3, 4, 5, 6, 7, 8 } };
static const GUID SUBLAYER = { 0xa0000002, 0x1, 0x1, { 1, 2, 3, 4, 5, 6, 7, 8 } };
static const GUID CALLOUT = { 0x11111111, 0x2222, 0x3333, { 1, 2, 3, 4, 5, 6, 7, 8 } };
static const GUID NOBODY = { 0xa0000003, 0x1, 0x1, { 1, 2, 3, 4, 5, 6, 7, 8 } };
static const GUID FILTER = { 0xa0000004, 0x1, 0x1, { 1, 2, 3, 4, 5, 6, 7, 8 } };
static const GUID DOOMED = { 0xa0000005, 0x1, 0x1, { 1, 2, 3, 4, 5, 6, 7, 8 } };
static const GUID ORPHAN = { 0xa0000006, 0x1, 0x1, { 1, 2, 3, 4, 5, 6, 7, 8 } };

static HANDLE g_Engine;
static UINT32 g_Id;

#define STEP(n) ((NTSTATUS)(0xE0000000L | (n)))

static void NTAPI PolicyClassify(const FWPS_INCOMING_VALUES0 *in,
                                 const FWPS_INCOMING_METADATA_VALUES0 *meta, void *layerData,
                                 const void *classifyContext, const FWPS_FILTER3 *filter,
                                 UINT64 flowContext, FWPS_CLASSIFY_OUT0 *out)
{
    UNREFERENCED_PARAMETER(in);
    UNREFERENCED_PARAMETER(meta);
    UNREFERENCED_PARAMETER(layerData);
    UNREFERENCED_PARAMETER(classifyContext);
    UNREFERENCED_PARAMETER(filter);
    UNREFERENCED_PARAMETER(flowContext);
    if (out->rights & FWPS_RIGHT_ACTION_WRITE) {
        out->actionType = FWP_ACTION_BLOCK;
        out->rights &= ~FWPS_RIGHT_ACTION_WRITE;
    }
}

static NTSTATUS NTAPI PolicyNotify(FWPS_CALLOUT_NOTIFY_TYPE type, const GUID *key,
                                   FWPS_FILTER3 *filter)
{
    UNREFERENCED_PARAMETER(type);
    UNREFERENCED_PARAMETER(key);
    UNREFERENCED_PARAMETER(filter);
    return STATUS_SUCCESS;
}

static void Filter(FWPM_FILTER0 *f, const GUID *key, FWP_ACTION_TYPE action,
                   const GUID *callout)
{
    RtlZeroMemory(f, sizeof(*f));
    f->filterKey = *key;
    f->providerKey = (GUID *)&PROVIDER;
    f->layerKey = FWPM_LAYER_ALE_AUTH_CONNECT_V4;
    f->subLayerKey = SUBLAYER;
    f->weight.type = FWP_UINT8;
    f->weight.uint8 = 3;
    f->action.type = action;
    if (callout != NULL) {
        f->action.calloutKey = *callout;
    }
}

static NTSTATUS AddPolicy(void)
{
    FWPM_SESSION0 session;
    FWPM_PROVIDER0 provider;
    FWPM_SUBLAYER0 sublayer;
    FWPM_CALLOUT0 callout;
    FWPM_FILTER0 filter;
    FWPM_FILTER_CONDITION0 cond[2];
    FWP_RANGE0 ports;
    UINT32 calloutId = 0;
    UINT64 filterId = 0, doomedId = 0;

    RtlZeroMemory(&session, sizeof(session));
    session.flags = FWPM_SESSION_FLAG_DYNAMIC;
    if (FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, &session, &g_Engine) != STATUS_SUCCESS) {
        return STEP(1);
    }
    if (FwpmTransactionBegin0(g_Engine, 0) != STATUS_SUCCESS) {
        return STEP(2);
    }
    RtlZeroMemory(&provider, sizeof(provider));
    provider.providerKey = PROVIDER;
    if (FwpmProviderAdd0(g_Engine, &provider, NULL) != STATUS_SUCCESS) {
        return STEP(3);
    }
    RtlZeroMemory(&sublayer, sizeof(sublayer));
    sublayer.subLayerKey = SUBLAYER;
    sublayer.providerKey = (GUID *)&PROVIDER;
    sublayer.weight = 0x0900;
    if (FwpmSubLayerAdd0(g_Engine, &sublayer, NULL) != STATUS_SUCCESS) {
        return STEP(4);
    }
    RtlZeroMemory(&callout, sizeof(callout));
    callout.calloutKey = CALLOUT;
    callout.providerKey = (GUID *)&PROVIDER;
    callout.applicableLayer = FWPM_LAYER_ALE_AUTH_CONNECT_V4;
    if (FwpmCalloutAdd0(g_Engine, &callout, NULL, &calloutId) != STATUS_SUCCESS
        || calloutId != g_Id) {
        return STEP(5);
    }
    Filter(&filter, &FILTER, FWP_ACTION_CALLOUT_TERMINATING, &CALLOUT);
    RtlZeroMemory(cond, sizeof(cond));
    cond[0].fieldKey = FWPM_CONDITION_IP_PROTOCOL;
    cond[0].matchType = FWP_MATCH_EQUAL;
    cond[0].conditionValue.type = FWP_UINT8;
    cond[0].conditionValue.uint8 = 6;  /* IPPROTO_TCP */
    RtlZeroMemory(&ports, sizeof(ports));
    ports.valueLow.type = FWP_UINT16;
    ports.valueLow.uint16 = 8000;
    ports.valueHigh.type = FWP_UINT16;
    ports.valueHigh.uint16 = 8099;
    cond[1].fieldKey = FWPM_CONDITION_IP_REMOTE_PORT;
    cond[1].matchType = FWP_MATCH_RANGE;
    cond[1].conditionValue.type = FWP_RANGE_TYPE;
    cond[1].conditionValue.rangeValue = &ports;
    filter.numFilterConditions = 2;
    filter.filterCondition = cond;
    if (FwpmFilterAdd0(g_Engine, &filter, NULL, &filterId) != STATUS_SUCCESS || filterId == 0) {
        return STEP(6);
    }
    if (FwpmTransactionCommit0(g_Engine) != STATUS_SUCCESS) {
        return STEP(7);
    }
    /* an implicit transaction each: add a BLOCK filter, delete it by the id it got */
    Filter(&filter, &DOOMED, FWP_ACTION_BLOCK, NULL);
    if (FwpmFilterAdd0(g_Engine, &filter, NULL, &doomedId) != STATUS_SUCCESS
        || doomedId == 0 || doomedId == filterId) {
        return STEP(8);
    }
    if (FwpmFilterDeleteById0(g_Engine, doomedId) != STATUS_SUCCESS) {
        return STEP(9);
    }
    if (FwpmFilterDeleteById0(g_Engine, doomedId) != STATUS_FWP_FILTER_NOT_FOUND) {
        return STEP(10);
    }
    /* the errors, in a transaction the driver then aborts */
    if (FwpmTransactionBegin0(g_Engine, 0) != STATUS_SUCCESS) {
        return STEP(11);
    }
    if (FwpmProviderAdd0(g_Engine, &provider, NULL) != STATUS_FWP_ALREADY_EXISTS) {
        return STEP(12);
    }
    Filter(&filter, &ORPHAN, FWP_ACTION_CALLOUT_TERMINATING, &NOBODY);
    if (FwpmFilterAdd0(g_Engine, &filter, NULL, NULL) != STATUS_FWP_CALLOUT_NOT_FOUND) {
        return STEP(13);
    }
    Filter(&filter, &ORPHAN, FWP_ACTION_BLOCK, NULL);
    if (FwpmFilterAdd0(g_Engine, &filter, NULL, NULL) != STATUS_SUCCESS) {
        return STEP(14);
    }
    if (FwpmTransactionBegin0(g_Engine, 0) != STATUS_FWP_TXN_IN_PROGRESS) {
        return STEP(15);
    }
    if (FwpmTransactionAbort0(g_Engine) != STATUS_SUCCESS) {
        return STEP(16);
    }
    if (FwpmTransactionCommit0(g_Engine) != STATUS_FWP_NO_TXN_IN_PROGRESS) {
        return STEP(17);
    }
    /* the filter added in the aborted transaction never existed */
    if (FwpmFilterDeleteByKey0(g_Engine, &ORPHAN) != STATUS_FWP_FILTER_NOT_FOUND) {
        return STEP(18);
    }
    return STATUS_SUCCESS;
}

static VOID PolicyUnload(PDRIVER_OBJECT driver)
{
    UNREFERENCED_PARAMETER(driver);
    FwpsCalloutUnregisterById0(g_Id);
    if (g_Engine != NULL) {
        FwpmEngineClose0(g_Engine);  /* dynamic: its objects go with it */
        g_Engine = NULL;
    }
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registryPath)
{
    PDEVICE_OBJECT device;
    FWPS_CALLOUT3 callout;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(registryPath);
    status = IoCreateDevice(driver, 0, NULL, FILE_DEVICE_NETWORK, 0, FALSE, &device);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    driver->DriverUnload = PolicyUnload;
    RtlZeroMemory(&callout, sizeof(callout));
    callout.calloutKey = CALLOUT;
    callout.classifyFn = PolicyClassify;
    callout.notifyFn = PolicyNotify;
    status = FwpsCalloutRegister3(device, &callout, &g_Id);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    return AddPolicy();
}
