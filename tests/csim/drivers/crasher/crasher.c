/* Dereferences a NULL pointer in classifyFn: a SIGSEGV in driver code. */
#include "common.h"

static void NTAPI TestClassify(const FWPS_INCOMING_VALUES0 *in,
                               const FWPS_INCOMING_METADATA_VALUES0 *meta, void *layerData,
                               const void *classifyContext, const FWPS_FILTER3 *filter,
                               UINT64 flowContext, FWPS_CLASSIFY_OUT0 *out)
{
    volatile UINT32 *nowhere = (volatile UINT32 *)(ULONG_PTR)flowContext;
    UNREFERENCED_PARAMETER(in);
    UNREFERENCED_PARAMETER(meta);
    UNREFERENCED_PARAMETER(layerData);
    UNREFERENCED_PARAMETER(classifyContext);
    UNREFERENCED_PARAMETER(filter);
    out->actionType = *nowhere;  /* flowContext is 0 at AUTH_CONNECT */
}
