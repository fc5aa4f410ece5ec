/* Adds a filter with a condition on the application id, which the engine model does not
 * match on: FwpmFilterAdd0 answers STATUS_NOT_SUPPORTED and DriverEntry fails with it. */
#include <ntddk.h>
#include <fwpsk.h>
#include <fwpmk.h>

static UINT32 g_Id;

static const GUID ALE_APP_ID = { 0xd78e1e87, 0x8644, 0x4ea5,
                                 { 0x94, 0x37, 0xd8, 0x09, 0xec, 0xef, 0xc9, 0x71 } };
static const GUID FILTER = { 0xb0000001, 0x1, 0x1, { 1, 2, 3, 4, 5, 6, 7, 8 } };

static void NTAPI TestClassify(const FWPS_INCOMING_VALUES0 *in,
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
    UNREFERENCED_PARAMETER(out);
}

static NTSTATUS AddPolicy(void)
{
    HANDLE engine;
    FWPM_FILTER0 filter;
    FWPM_FILTER_CONDITION0 cond;
    FWP_BYTE_BLOB app = { 4, (UINT8 *)"app" };
    NTSTATUS status = FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, NULL, &engine);
    if (!NT_SUCCESS(status)) {
        return status;
    }
    RtlZeroMemory(&filter, sizeof(filter));
    RtlZeroMemory(&cond, sizeof(cond));
    filter.filterKey = FILTER;
    filter.layerKey = FWPM_LAYER_ALE_AUTH_CONNECT_V4;
    filter.action.type = FWP_ACTION_BLOCK;
    cond.fieldKey = ALE_APP_ID;
    cond.matchType = FWP_MATCH_EQUAL;
    cond.conditionValue.type = FWP_BYTE_BLOB_TYPE;
    cond.conditionValue.byteBlob = &app;
    filter.numFilterConditions = 1;
    filter.filterCondition = &cond;
    status = FwpmFilterAdd0(engine, &filter, NULL, NULL);
    FwpmEngineClose0(engine);
    return status;
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
    RtlZeroMemory(&callout, sizeof(callout));
    callout.calloutKey = (GUID){ 0x11111111, 0x2222, 0x3333, { 1, 2, 3, 4, 5, 6, 7, 8 } };
    callout.classifyFn = TestClassify;
    status = FwpsCalloutRegister3(device, &callout, &g_Id);
    return NT_SUCCESS(status) ? AddPolicy() : status;
}
