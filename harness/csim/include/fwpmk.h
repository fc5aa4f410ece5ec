/*
 * fwpmk.h - the kernel-mode management API (a kernel client of the BFE) for the
 * host build: on the engine model these calls open a kernel-mode session on the
 * model's BFE. Clean-room for callout-harness (harness/csim); layer and sublayer
 * keys carry the documented GUID values.
 */
#ifndef CSIM_FWPMK_H
#define CSIM_FWPMK_H
#include <fwpmtypes.h>

#define RPC_C_AUTHN_NONE 0
#define RPC_C_AUTHN_WINNT 10
#define RPC_C_AUTHN_DEFAULT 0xFFFFFFFFL
typedef struct _SEC_WINNT_AUTH_IDENTITY_W SEC_WINNT_AUTH_IDENTITY_W;

/* What the management calls return to a kernel caller: STATUS_FWP_X (0xC022xxxx), the
 * kernel form of FWP_E_X with the same low word. */
#ifndef STATUS_FWP_CALLOUT_NOT_FOUND
#define STATUS_FWP_CALLOUT_NOT_FOUND          ((NTSTATUS)0xC0220001L)
#define STATUS_FWP_FILTER_NOT_FOUND           ((NTSTATUS)0xC0220003L)
#define STATUS_FWP_LAYER_NOT_FOUND            ((NTSTATUS)0xC0220004L)
#define STATUS_FWP_PROVIDER_NOT_FOUND         ((NTSTATUS)0xC0220005L)
#define STATUS_FWP_PROVIDER_CONTEXT_NOT_FOUND ((NTSTATUS)0xC0220006L)
#define STATUS_FWP_SUBLAYER_NOT_FOUND         ((NTSTATUS)0xC0220007L)
#define STATUS_FWP_ALREADY_EXISTS             ((NTSTATUS)0xC0220009L)
#define STATUS_FWP_IN_USE                     ((NTSTATUS)0xC022000AL)
#define STATUS_FWP_NO_TXN_IN_PROGRESS         ((NTSTATUS)0xC022000DL)
#define STATUS_FWP_TXN_IN_PROGRESS            ((NTSTATUS)0xC022000EL)
#define STATUS_FWP_TXN_ABORTED                ((NTSTATUS)0xC022000FL)
#define STATUS_FWP_TIMEOUT                    ((NTSTATUS)0xC0220012L)
#endif

NTSTATUS FwpmEngineOpen0(const wchar_t *serverName, UINT32 authnService,
                         SEC_WINNT_AUTH_IDENTITY_W *authIdentity, const FWPM_SESSION0 *session,
                         HANDLE *engineHandle);
NTSTATUS FwpmEngineClose0(HANDLE engineHandle);
NTSTATUS FwpmTransactionBegin0(HANDLE engineHandle, UINT32 flags);
NTSTATUS FwpmTransactionCommit0(HANDLE engineHandle);
NTSTATUS FwpmTransactionAbort0(HANDLE engineHandle);
NTSTATUS FwpmProviderAdd0(HANDLE engineHandle, const FWPM_PROVIDER0 *provider,
                          PSECURITY_DESCRIPTOR sd);
NTSTATUS FwpmSubLayerAdd0(HANDLE engineHandle, const FWPM_SUBLAYER0 *subLayer,
                          PSECURITY_DESCRIPTOR sd);
NTSTATUS FwpmCalloutAdd0(HANDLE engineHandle, const FWPM_CALLOUT0 *callout,
                         PSECURITY_DESCRIPTOR sd, UINT32 *id);
NTSTATUS FwpmFilterAdd0(HANDLE engineHandle, const FWPM_FILTER0 *filter,
                        PSECURITY_DESCRIPTOR sd, UINT64 *id);
NTSTATUS FwpmFilterDeleteById0(HANDLE engineHandle, UINT64 id);
NTSTATUS FwpmFilterDeleteByKey0(HANDLE engineHandle, const GUID *key);
#define FWPM_TXN_READ_ONLY 0x00000001

#endif /* CSIM_FWPMK_H */

/* Layer and sublayer keys: instantiated where INITGUID is defined (the host runtime). */
#ifndef CSIM_FWPM_GUIDS
#define CSIM_FWPM_GUIDS
#include <guiddef.h>
DEFINE_GUID(FWPM_LAYER_INBOUND_TRANSPORT_V4, 0x5926dfc8, 0xe3cf, 0x4426, 0xa2, 0x83, 0xdc, 0x39, 0x3f, 0x5d, 0x0f, 0x9d);
DEFINE_GUID(FWPM_LAYER_INBOUND_TRANSPORT_V6, 0x634a869f, 0xfc23, 0x4b90, 0xb0, 0xc1, 0xbf, 0x62, 0x0a, 0x36, 0xae, 0x6f);
DEFINE_GUID(FWPM_LAYER_OUTBOUND_TRANSPORT_V4, 0x09e61aea, 0xd214, 0x46e2, 0x9b, 0x21, 0xb2, 0x6b, 0x0b, 0x2f, 0x28, 0xc8);
DEFINE_GUID(FWPM_LAYER_OUTBOUND_TRANSPORT_V6, 0xe1735bde, 0x013f, 0x4655, 0xb3, 0x51, 0xa4, 0x9e, 0x15, 0x76, 0x2d, 0xf0);
DEFINE_GUID(FWPM_LAYER_STREAM_V4, 0x3b89653c, 0xc170, 0x49e4, 0xb1, 0xcd, 0xe0, 0xee, 0xee, 0xe1, 0x9a, 0x3e);
DEFINE_GUID(FWPM_LAYER_STREAM_V6, 0x47c9137a, 0x7ec4, 0x46b3, 0xb6, 0xe4, 0x48, 0xe9, 0x26, 0xb1, 0xed, 0xa4);
DEFINE_GUID(FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V4, 0x1247d66d, 0x0b60, 0x4a15, 0x8d, 0x44, 0x71, 0x55, 0xd0, 0xf5, 0x3a, 0x0c);
DEFINE_GUID(FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V6, 0x55a650e1, 0x5f0a, 0x4eca, 0xa6, 0x53, 0x88, 0xf5, 0x3b, 0x26, 0xaa, 0x8c);
DEFINE_GUID(FWPM_LAYER_ALE_AUTH_LISTEN_V4, 0x88bb5dad, 0x76d7, 0x4227, 0x9c, 0x71, 0xdf, 0x0a, 0x3e, 0xd7, 0xbe, 0x7e);
DEFINE_GUID(FWPM_LAYER_ALE_AUTH_LISTEN_V6, 0x7ac9de24, 0x17dd, 0x4814, 0xb4, 0xbd, 0xa9, 0xfb, 0xc9, 0x5a, 0x32, 0x1b);
DEFINE_GUID(FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4, 0xe1cd9fe7, 0xf4b5, 0x4273, 0x96, 0xc0, 0x59, 0x2e, 0x48, 0x7b, 0x86, 0x50);
DEFINE_GUID(FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6, 0xa3b42c97, 0x9f04, 0x4672, 0xb8, 0x7e, 0xce, 0xe9, 0xc4, 0x83, 0x25, 0x7f);
DEFINE_GUID(FWPM_LAYER_ALE_AUTH_CONNECT_V4, 0xc38d57d1, 0x05a7, 0x4c33, 0x90, 0x4f, 0x7f, 0xbc, 0xee, 0xe6, 0x0e, 0x82);
DEFINE_GUID(FWPM_LAYER_ALE_AUTH_CONNECT_V6, 0x4a72393b, 0x319f, 0x44bc, 0x84, 0xc3, 0xba, 0x54, 0xdc, 0xb3, 0xb6, 0xb4);
DEFINE_GUID(FWPM_LAYER_ALE_FLOW_ESTABLISHED_V4, 0xaf80470a, 0x5596, 0x4c13, 0x99, 0x92, 0x53, 0x9e, 0x6f, 0xe5, 0x79, 0x67);
DEFINE_GUID(FWPM_LAYER_ALE_FLOW_ESTABLISHED_V6, 0x7021d2b3, 0xdfa4, 0x406e, 0xaf, 0xeb, 0x6a, 0xfa, 0xf7, 0xe7, 0x0e, 0xfd);
DEFINE_GUID(FWPM_LAYER_ALE_RESOURCE_RELEASE_V4, 0x74365cce, 0xccb0, 0x401a, 0xbf, 0xc1, 0xb8, 0x99, 0x34, 0xad, 0x7e, 0x15);
DEFINE_GUID(FWPM_LAYER_ALE_RESOURCE_RELEASE_V6, 0xf4e5ce80, 0xedcc, 0x4e13, 0x8a, 0x2f, 0xb9, 0x14, 0x54, 0xbb, 0x05, 0x7b);
DEFINE_GUID(FWPM_LAYER_ALE_ENDPOINT_CLOSURE_V4, 0xb4766427, 0xe2a2, 0x467a, 0xbd, 0x7e, 0xdb, 0xcd, 0x1b, 0xd8, 0x5a, 0x09);
DEFINE_GUID(FWPM_LAYER_ALE_ENDPOINT_CLOSURE_V6, 0xbb536ccd, 0x4755, 0x4ba9, 0x9f, 0xf7, 0xf9, 0xed, 0xf8, 0x69, 0x9c, 0x7b);
DEFINE_GUID(FWPM_SUBLAYER_UNIVERSAL, 0xeebecc03, 0xced4, 0x4380, 0x81, 0x9a, 0x27, 0x34, 0x39, 0x7b, 0x2b, 0x74);
/* Filtering condition identifiers (FWPM_FILTER_CONDITION0.fieldKey) the engine model matches on. */
DEFINE_GUID(FWPM_CONDITION_IP_PROTOCOL, 0x3971ef2b, 0x623e, 0x4f9a, 0x8c, 0xb1, 0x6e, 0x79, 0xb8, 0x06, 0xb9, 0xa7);
DEFINE_GUID(FWPM_CONDITION_IP_LOCAL_PORT, 0x0c1ba1af, 0x5765, 0x453f, 0xaf, 0x22, 0xa8, 0xf7, 0x91, 0xac, 0x77, 0x5b);
DEFINE_GUID(FWPM_CONDITION_IP_REMOTE_PORT, 0xc35a604d, 0xd22b, 0x4e1a, 0x91, 0xb4, 0x68, 0xf6, 0x74, 0xee, 0x67, 0x4b);
DEFINE_GUID(FWPM_CONDITION_IP_LOCAL_ADDRESS, 0xd9ee00de, 0xc1ef, 0x4617, 0xbf, 0xe3, 0xff, 0xd8, 0xf5, 0xa0, 0x89, 0x57);
DEFINE_GUID(FWPM_CONDITION_IP_REMOTE_ADDRESS, 0xb235ae9a, 0x1d64, 0x49b8, 0xa4, 0x4c, 0x5f, 0xf3, 0xd9, 0x09, 0x50, 0x45);
DEFINE_GUID(FWPM_CONDITION_DIRECTION, 0x8784c146, 0xca97, 0x44d6, 0x9f, 0xd1, 0x19, 0xfb, 0x18, 0x40, 0xcb, 0xf7);
#endif
