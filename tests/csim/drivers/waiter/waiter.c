/* Waits on an event in classifyFn, at DISPATCH_LEVEL: the runtime stops it as a bug check. */
#include "common.h"

static KEVENT g_Event;

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
    KeInitializeEvent(&g_Event, NotificationEvent, FALSE);
    KeWaitForSingleObject(&g_Event, Executive, KernelMode, FALSE, NULL);
    out->actionType = FWP_ACTION_PERMIT;
}
