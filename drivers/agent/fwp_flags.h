/*
 * fwp_flags.h - the WFP management flag values the agent uses that mingw-w64's
 * fwpmtypes.h does not define (values as documented for fwpmtypes.h). The
 * Windows SDK defines them all; each is guarded so either header set works.
 */
#ifndef AGENT_FWP_FLAGS_H
#define AGENT_FWP_FLAGS_H

#include <windows.h>

#ifndef FWPM_SESSION_FLAG_DYNAMIC
#define FWPM_SESSION_FLAG_DYNAMIC 0x00000001
#endif
#ifndef FWPM_TXN_READ_ONLY
#define FWPM_TXN_READ_ONLY 0x00000001
#endif
#ifndef FWPM_PROVIDER_FLAG_PERSISTENT
#define FWPM_PROVIDER_FLAG_PERSISTENT 0x00000001
#endif
#ifndef FWPM_SUBLAYER_FLAG_PERSISTENT
#define FWPM_SUBLAYER_FLAG_PERSISTENT 0x00000001
#endif
#ifndef FWPM_PROVIDER_CONTEXT_FLAG_PERSISTENT
#define FWPM_PROVIDER_CONTEXT_FLAG_PERSISTENT 0x00000001
#endif
#ifndef FWPM_CALLOUT_FLAG_PERSISTENT
#define FWPM_CALLOUT_FLAG_PERSISTENT 0x00010000
#endif
#ifndef FWPM_FILTER_FLAG_PERSISTENT
#define FWPM_FILTER_FLAG_PERSISTENT 0x00000001
#endif
#ifndef FWPM_FILTER_FLAG_BOOTTIME
#define FWPM_FILTER_FLAG_BOOTTIME 0x00000002
#endif
#ifndef FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT
#define FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT 0x00000004
#endif
#ifndef FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT
#define FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT 0x00000008
#endif

/* Filter condition keys (fwpmu.h's FWPM_CONDITION_IP_REMOTE_PORT and
 * FWPM_CONDITION_IP_PROTOCOL), under the agent's own names so that they never
 * clash with the SDK's definitions. Layer keys come in the plan, as GUIDs. */
static const GUID AGENT_CONDITION_IP_REMOTE_PORT = {
    0xc35a604d, 0xd22b, 0x4e1a, {0x91, 0xb4, 0x68, 0xf6, 0x74, 0xee, 0x67, 0x4b}};
static const GUID AGENT_CONDITION_IP_PROTOCOL = {
    0x3971ef2b, 0x623e, 0x4f9a, {0x8c, 0xb1, 0x6e, 0x79, 0xb8, 0x06, 0xb9, 0xa7}};

#endif
