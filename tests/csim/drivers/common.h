/* One callout at ALE_AUTH_CONNECT_V4 whose classifyFn is TEST_CLASSIFY_BODY. */
#include <ntddk.h>
#include <fwpsk.h>

static UINT32 g_Id;
static void NTAPI TestClassify(const FWPS_INCOMING_VALUES0 *in,
                               const FWPS_INCOMING_METADATA_VALUES0 *meta, void *layerData,
                               const void *classifyContext, const FWPS_FILTER3 *filter,
                               UINT64 flowContext, FWPS_CLASSIFY_OUT0 *out);
static NTSTATUS NTAPI TestNotify(FWPS_CALLOUT_NOTIFY_TYPE type, const GUID *key,
                                 FWPS_FILTER3 *filter)
{
    UNREFERENCED_PARAMETER(type);
    UNREFERENCED_PARAMETER(key);
    UNREFERENCED_PARAMETER(filter);
    return STATUS_SUCCESS;
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
    callout.notifyFn = TestNotify;
    return FwpsCalloutRegister3(device, &callout, &g_Id);
}
