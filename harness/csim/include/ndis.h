/*
 * ndis.h - NET_BUFFER_LIST, NET_BUFFER and MDL basics for the host build.
 * Clean-room for callout-harness (harness/csim): the members a callout driver
 * reads, from the public NDIS documentation. The host runtime builds one
 * NET_BUFFER_LIST (one NET_BUFFER, one MDL over real memory) per packet the
 * engine model indicates, and frees a clone's memory when the driver frees it,
 * so a use after free is a real one (and the sanitizer build reports it).
 */
#ifndef CSIM_NDIS_H
#define CSIM_NDIS_H
#include <wdm.h>
#include <ws2def.h>

typedef PVOID NDIS_HANDLE, *PNDIS_HANDLE;
typedef LONG NDIS_STATUS, *PNDIS_STATUS;
#define NDIS_STATUS_SUCCESS ((NDIS_STATUS)STATUS_SUCCESS)
#define NDIS_STATUS_FAILURE ((NDIS_STATUS)STATUS_UNSUCCESSFUL)

typedef struct _MDL {
    struct _MDL *Next;
    CSHORT Size;
    CSHORT MdlFlags;
    PVOID Process;
    PVOID MappedSystemVa;
    PVOID StartVa;
    ULONG ByteCount;
    ULONG ByteOffset;
} MDL, *PMDL;
#define MDL_MAPPED_TO_SYSTEM_VA 0x0001
#define MmGetMdlByteCount(mdl) ((mdl)->ByteCount)
#define MmGetSystemAddressForMdlSafe(mdl, priority) ((mdl)->MappedSystemVa)
#define NormalPagePriority 16

typedef struct _NET_BUFFER {
    struct _NET_BUFFER *Next;
    PMDL CurrentMdl;
    ULONG CurrentMdlOffset;
    ULONG DataLength;
    PMDL MdlChain;
    ULONG DataOffset;
} NET_BUFFER, *PNET_BUFFER;

typedef struct _NET_BUFFER_LIST {
    struct _NET_BUFFER_LIST *Next;
    PNET_BUFFER FirstNetBuffer;
    PVOID Context;
    struct _NET_BUFFER_LIST *ParentNetBufferList;
    NDIS_HANDLE NdisPoolHandle;
    PVOID ProtocolReserved[4];
    PVOID MiniportReserved[2];
    PVOID Scratch;
    NDIS_HANDLE SourceHandle;
    ULONG NblFlags;
    LONG ChildRefCount;
    ULONG Flags;
    NDIS_STATUS Status;
    /* host runtime bookkeeping: the engine model's packet id and state */
    ULONG64 CsimPacket;
    ULONG64 CsimEndpoint;
    ULONG CsimInjection;
    ULONG CsimMagic;
} NET_BUFFER_LIST, *PNET_BUFFER_LIST;

#define NET_BUFFER_LIST_NEXT_NBL(nbl) ((nbl)->Next)
#define NET_BUFFER_LIST_FIRST_NB(nbl) ((nbl)->FirstNetBuffer)
#define NET_BUFFER_LIST_STATUS(nbl) ((nbl)->Status)
#define NET_BUFFER_NEXT_NB(nb) ((nb)->Next)
#define NET_BUFFER_DATA_LENGTH(nb) ((nb)->DataLength)
#define NET_BUFFER_DATA_OFFSET(nb) ((nb)->DataOffset)
#define NET_BUFFER_CURRENT_MDL(nb) ((nb)->CurrentMdl)
#define NET_BUFFER_CURRENT_MDL_OFFSET(nb) ((nb)->CurrentMdlOffset)
#define NET_BUFFER_FIRST_MDL(nb) ((nb)->MdlChain)

/* NdisGetDataBuffer: the data at the current offset, contiguous in the host runtime. */
PVOID NdisGetDataBuffer(PNET_BUFFER netBuffer, ULONG bytesNeeded, PVOID storage,
                        UINT alignMultiple, UINT alignOffset);
#endif
