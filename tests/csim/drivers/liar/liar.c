/* Permits every connect but tells TraceLogging it blocked it. */
#include "common.h"
#include <TraceLoggingProvider.h>

TRACELOGGING_DEFINE_PROVIDER(g_Liar, "Liar",
    (0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xb));
static UINT64 g_Next;

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
    if (!g_Next++) {
        TraceLoggingRegister(g_Liar);
    }
    out->actionType = FWP_ACTION_PERMIT;
    TraceLoggingWrite(g_Liar, "classify_done", TraceLoggingUInt64(g_Next, "id"),
        TraceLoggingString("BLOCK", "action"));
}
