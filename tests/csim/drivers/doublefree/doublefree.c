/* Frees its per-classify context twice: the runtime stops it as a bug check would. */
#include "common.h"

static void NTAPI TestClassify(const FWPS_INCOMING_VALUES0 *in,
                               const FWPS_INCOMING_METADATA_VALUES0 *meta, void *layerData,
                               const void *classifyContext, const FWPS_FILTER3 *filter,
                               UINT64 flowContext, FWPS_CLASSIFY_OUT0 *out)
{
    void *ctx = ExAllocatePool2(POOL_FLAG_NON_PAGED, 32, 'tseT');
    UNREFERENCED_PARAMETER(in);
    UNREFERENCED_PARAMETER(meta);
    UNREFERENCED_PARAMETER(layerData);
    UNREFERENCED_PARAMETER(classifyContext);
    UNREFERENCED_PARAMETER(filter);
    UNREFERENCED_PARAMETER(flowContext);
    ExFreePoolWithTag(ctx, 'tseT');
    ExFreePoolWithTag(ctx, 'tseT');
    out->actionType = FWP_ACTION_PERMIT;
}
