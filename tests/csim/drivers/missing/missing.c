/* Calls injection functions the host runtime does not provide. */
#include "common.h"

static void NTAPI TestClassify(const FWPS_INCOMING_VALUES0 *in,
                               const FWPS_INCOMING_METADATA_VALUES0 *meta, void *layerData,
                               const void *classifyContext, const FWPS_FILTER3 *filter,
                               UINT64 flowContext, FWPS_CLASSIFY_OUT0 *out)
{
    UNREFERENCED_PARAMETER(in);
    UNREFERENCED_PARAMETER(meta);
    UNREFERENCED_PARAMETER(classifyContext);
    UNREFERENCED_PARAMETER(filter);
    UNREFERENCED_PARAMETER(flowContext);
    FwpsInjectMacReceiveAsync0(NULL, NULL, 0, 0, 0, 0, layerData, NULL, NULL);
    FwpsInjectNetworkReceiveAsync0(NULL, NULL, 0, 0, 0, 0, layerData, NULL, NULL);
    out->actionType = FWP_ACTION_PERMIT;
}
