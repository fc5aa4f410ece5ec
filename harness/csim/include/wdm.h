/*
 * wdm.h - the subset of the Windows kernel (wdm) interface that callout drivers
 * use, for building a driver on the host against the callout-harness runtime
 * (harness/csim/runtime.c). Written clean-room from the names, members and
 * values in the public documentation; not binary compatible with Windows (it
 * targets LP64 Linux with gcc -fshort-wchar), but source compatible for the
 * calls it declares. A call the runtime does not provide is refused at build
 * time with the list of missing names.
 */
#ifndef CSIM_WDM_H
#define CSIM_WDM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sal.h>
#include <guiddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Pool tags are multi-character constants ('gaTx') in every driver. */
#pragma GCC diagnostic ignored "-Wmultichar"

/* -- basic types (LLP64 sizes: ULONG and LONG are 32 bits) ------------------ */
#define VOID void
#define NTAPI
#define NTSYSAPI
#define NTKERNELAPI
#define FASTCALL
#define DECLSPEC_NOINLINE __attribute__((noinline))
#define FORCEINLINE static inline __attribute__((always_inline))
#define CONST const
#define IN
#define OUT
#define OPTIONAL
#define UNALIGNED
#define ANYSIZE_ARRAY 1
typedef void *PVOID;
typedef const void *PCVOID;
typedef char CHAR, CCHAR, *PCHAR, *PSTR, *LPSTR;
typedef const char *PCSTR, *LPCSTR, *PCSZ;
typedef unsigned char UCHAR, *PUCHAR, BYTE, *PBYTE, BOOLEAN, *PBOOLEAN;
typedef short SHORT, CSHORT, *PSHORT;
typedef unsigned short USHORT, *PUSHORT, WORD;
typedef int LONG, *PLONG, INT, BOOL;
typedef unsigned int ULONG, *PULONG, UINT, DWORD, *PDWORD;
typedef long long LONGLONG, LONG64, *PLONG64, INT64;
typedef unsigned long long ULONGLONG, ULONG64, *PULONG64, DWORD64;
typedef int8_t INT8;
typedef uint8_t UINT8, *PUINT8;
typedef int16_t INT16;
typedef uint16_t UINT16, *PUINT16;
typedef int32_t INT32, *PINT32;
typedef uint32_t UINT32, *PUINT32;
typedef uint64_t UINT64, *PUINT64;
typedef intptr_t LONG_PTR, INT_PTR;
typedef uintptr_t ULONG_PTR, UINT_PTR, SIZE_T, *PSIZE_T, *PULONG_PTR, KAFFINITY;
typedef intptr_t SSIZE_T;
typedef wchar_t WCHAR, *PWCHAR, *PWSTR, *LPWSTR;
typedef const wchar_t *PCWSTR, *LPCWSTR;
typedef void *HANDLE, **PHANDLE;
typedef LONG NTSTATUS, *PNTSTATUS;
typedef UCHAR KIRQL, *PKIRQL;
typedef CCHAR KPROCESSOR_MODE;
typedef ULONG ACCESS_MASK;
typedef ULONG LOGICAL;
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

typedef union _LARGE_INTEGER {
    struct { ULONG LowPart; LONG HighPart; };
    struct { ULONG LowPart; LONG HighPart; } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef union _ULARGE_INTEGER {
    struct { ULONG LowPart; ULONG HighPart; };
    ULONGLONG QuadPart;
} ULARGE_INTEGER, *PULARGE_INTEGER;

#define UNREFERENCED_PARAMETER(p) ((void)(p))
#define C_ASSERT(e) _Static_assert(e, #e)
#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
#define CONTAINING_RECORD(address, type, field) \
    ((type *)((PCHAR)(address) - offsetof(type, field)))
#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RTL_NUMBER_OF(a) ARRAYSIZE(a)
#define min(a, b) (((a) < (b)) ? (a) : (b))
#define max(a, b) (((a) > (b)) ? (a) : (b))

/* -- NTSTATUS ----------------------------------------------------------------- */
#define NT_SUCCESS(s) (((NTSTATUS)(s)) >= 0)
#define STATUS_SUCCESS                 ((NTSTATUS)0x00000000L)
#define STATUS_PENDING                 ((NTSTATUS)0x00000103L)
#define STATUS_OBJECT_NAME_EXISTS      ((NTSTATUS)0x40000000L)
#define STATUS_DEVICE_BUSY             ((NTSTATUS)0x80000011L)
#define STATUS_UNSUCCESSFUL            ((NTSTATUS)0xC0000001L)
#define STATUS_NOT_IMPLEMENTED         ((NTSTATUS)0xC0000002L)
#define STATUS_INVALID_HANDLE          ((NTSTATUS)0xC0000008L)
#define STATUS_INVALID_PARAMETER       ((NTSTATUS)0xC000000DL)
#define STATUS_INVALID_DEVICE_REQUEST  ((NTSTATUS)0xC0000010L)
#define STATUS_NO_MEMORY               ((NTSTATUS)0xC0000017L)
#define STATUS_ACCESS_DENIED           ((NTSTATUS)0xC0000022L)
#define STATUS_BUFFER_TOO_SMALL        ((NTSTATUS)0xC0000023L)
#define STATUS_OBJECT_NAME_COLLISION   ((NTSTATUS)0xC0000035L)
#define STATUS_INSUFFICIENT_RESOURCES  ((NTSTATUS)0xC000009AL)
#define STATUS_NOT_SUPPORTED           ((NTSTATUS)0xC00000BBL)
#define STATUS_INTERNAL_ERROR          ((NTSTATUS)0xC00000E5L)
#define STATUS_CANCELLED               ((NTSTATUS)0xC0000120L)
#define STATUS_NOT_FOUND               ((NTSTATUS)0xC0000225L)
#define STATUS_REVISION_MISMATCH       ((NTSTATUS)0xC0000059L)
#define STATUS_INFO_LENGTH_MISMATCH    ((NTSTATUS)0xC0000004L)

/* -- IRQL ------------------------------------------------------------------------ */
#define PASSIVE_LEVEL  0
#define LOW_LEVEL      0
#define APC_LEVEL      1
#define DISPATCH_LEVEL 2
#define HIGH_LEVEL     15

NTKERNELAPI KIRQL KeGetCurrentIrql(void);
NTKERNELAPI void KeRaiseIrql(KIRQL newIrql, PKIRQL oldIrql);
NTKERNELAPI void KeLowerIrql(KIRQL newIrql);
NTKERNELAPI KIRQL KeRaiseIrqlToDpcLevel(void);

/* -- doubly and singly linked lists ------------------------------------------------ */
typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

typedef struct _SINGLE_LIST_ENTRY {
    struct _SINGLE_LIST_ENTRY *Next;
} SINGLE_LIST_ENTRY, *PSINGLE_LIST_ENTRY;

FORCEINLINE void InitializeListHead(PLIST_ENTRY head) { head->Flink = head->Blink = head; }
FORCEINLINE BOOLEAN IsListEmpty(const LIST_ENTRY *head) { return head->Flink == head; }
FORCEINLINE BOOLEAN RemoveEntryList(PLIST_ENTRY entry)
{
    PLIST_ENTRY next = entry->Flink, prev = entry->Blink;
    prev->Flink = next;
    next->Blink = prev;
    return next == prev;
}
FORCEINLINE PLIST_ENTRY RemoveHeadList(PLIST_ENTRY head)
{
    PLIST_ENTRY entry = head->Flink;
    RemoveEntryList(entry);
    return entry;
}
FORCEINLINE PLIST_ENTRY RemoveTailList(PLIST_ENTRY head)
{
    PLIST_ENTRY entry = head->Blink;
    RemoveEntryList(entry);
    return entry;
}
FORCEINLINE void InsertTailList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
    PLIST_ENTRY last = head->Blink;
    entry->Flink = head;
    entry->Blink = last;
    last->Flink = entry;
    head->Blink = entry;
}
FORCEINLINE void InsertHeadList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
    PLIST_ENTRY first = head->Flink;
    entry->Flink = first;
    entry->Blink = head;
    first->Blink = entry;
    head->Flink = entry;
}
FORCEINLINE void PushEntryList(PSINGLE_LIST_ENTRY head, PSINGLE_LIST_ENTRY entry)
{
    entry->Next = head->Next;
    head->Next = entry;
}
FORCEINLINE PSINGLE_LIST_ENTRY PopEntryList(PSINGLE_LIST_ENTRY head)
{
    PSINGLE_LIST_ENTRY first = head->Next;
    if (first != NULL) {
        head->Next = first->Next;
    }
    return first;
}

/* -- interlocked operations (full barriers) ------------------------------------------ */
#define InterlockedIncrement(p) __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)
#define InterlockedDecrement(p) __atomic_sub_fetch((p), 1, __ATOMIC_SEQ_CST)
#define InterlockedIncrement64(p) __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)
#define InterlockedDecrement64(p) __atomic_sub_fetch((p), 1, __ATOMIC_SEQ_CST)
#define InterlockedExchange(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedExchange64(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedExchangeAdd(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedExchangeAdd64(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedExchangePointer(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedOr(p, v) __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define InterlockedAnd(p, v) __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)
FORCEINLINE LONG InterlockedCompareExchange(volatile LONG *p, LONG exchange, LONG comparand)
{
    __atomic_compare_exchange_n(p, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return comparand;
}
FORCEINLINE LONG64 InterlockedCompareExchange64(volatile LONG64 *p, LONG64 exchange,
                                                LONG64 comparand)
{
    __atomic_compare_exchange_n(p, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return comparand;
}
FORCEINLINE PVOID InterlockedCompareExchangePointer(PVOID volatile *p, PVOID exchange,
                                                    PVOID comparand)
{
    __atomic_compare_exchange_n(p, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return comparand;
}

/* -- spin locks (the runtime tracks IRQL and ownership) ------------------------------ */
typedef ULONG_PTR KSPIN_LOCK, *PKSPIN_LOCK;
typedef struct _KLOCK_QUEUE_HANDLE {
    struct { PVOID Next; PKSPIN_LOCK Lock; } LockQueue;
    KIRQL OldIrql;
} KLOCK_QUEUE_HANDLE, *PKLOCK_QUEUE_HANDLE;

NTKERNELAPI void KeInitializeSpinLock(PKSPIN_LOCK lock);
NTKERNELAPI void KeAcquireSpinLock(PKSPIN_LOCK lock, PKIRQL oldIrql);
NTKERNELAPI void KeReleaseSpinLock(PKSPIN_LOCK lock, KIRQL newIrql);
NTKERNELAPI void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK lock);
NTKERNELAPI void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK lock);
NTKERNELAPI void KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK lock, PKLOCK_QUEUE_HANDLE handle);
NTKERNELAPI void KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE handle);
NTKERNELAPI void KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK lock,
                                                          PKLOCK_QUEUE_HANDLE handle);
NTKERNELAPI void KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE handle);

/* -- dispatcher objects: events (a wait above APC_LEVEL is a bug the runtime reports) -- */
typedef enum _EVENT_TYPE { NotificationEvent, SynchronizationEvent } EVENT_TYPE;
typedef enum _KWAIT_REASON { Executive = 0 } KWAIT_REASON;
typedef struct _KEVENT { LONG Signaled; EVENT_TYPE Type; } KEVENT, *PKEVENT, *PRKEVENT;
#define KernelMode 0
#define UserMode 1
NTKERNELAPI void KeInitializeEvent(PRKEVENT event, EVENT_TYPE type, BOOLEAN state);
NTKERNELAPI LONG KeSetEvent(PRKEVENT event, LONG increment, BOOLEAN wait);
NTKERNELAPI void KeClearEvent(PRKEVENT event);
NTKERNELAPI NTSTATUS KeWaitForSingleObject(PVOID object, KWAIT_REASON reason,
                                           KPROCESSOR_MODE mode, BOOLEAN alertable,
                                           PLARGE_INTEGER timeout);
NTKERNELAPI NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE mode, BOOLEAN alertable,
                                            PLARGE_INTEGER interval);

/* -- pool ------------------------------------------------------------------------------ */
typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_UNINITIALIZED   0x0000000000000002ULL
#define POOL_FLAG_CACHE_ALIGNED   0x0000000000000008ULL
#define POOL_FLAG_RAISE_ON_FAILURE 0x0000000000000020ULL
#define POOL_FLAG_NON_PAGED       0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE 0x0000000000000080ULL
#define POOL_FLAG_PAGED           0x0000000000000100ULL
typedef enum _POOL_TYPE { NonPagedPool = 0, NonPagedPoolExecute = 0, PagedPool = 1,
                          NonPagedPoolNx = 512 } POOL_TYPE;
NTKERNELAPI PVOID ExAllocatePool2(POOL_FLAGS flags, SIZE_T numberOfBytes, ULONG tag);
NTKERNELAPI PVOID ExAllocatePoolWithTag(POOL_TYPE type, SIZE_T numberOfBytes, ULONG tag);
NTKERNELAPI void ExFreePoolWithTag(PVOID p, ULONG tag);
NTKERNELAPI void ExFreePool(PVOID p);
NTKERNELAPI NTSTATUS ExUuidCreate(GUID *uuid);

/* -- strings and memory --------------------------------------------------------------- */
typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    PWSTR Buffer;
} UNICODE_STRING, *PUNICODE_STRING;
typedef const UNICODE_STRING *PCUNICODE_STRING;
typedef struct _STRING { USHORT Length; USHORT MaximumLength; PCHAR Buffer; } ANSI_STRING,
    *PANSI_STRING;
#define RTL_CONSTANT_STRING(s) { sizeof(s) - sizeof((s)[0]), sizeof(s), (PWSTR)(s) }
#define DECLARE_CONST_UNICODE_STRING(name, s) \
    const UNICODE_STRING name = RTL_CONSTANT_STRING(s)
NTSYSAPI void RtlInitUnicodeString(PUNICODE_STRING destination, PCWSTR source);
#define RtlZeroMemory(d, n) memset((d), 0, (n))
#define RtlFillMemory(d, n, v) memset((d), (v), (n))
#define RtlCopyMemory(d, s, n) memcpy((d), (s), (n))
#define RtlMoveMemory(d, s, n) memmove((d), (s), (n))
#define RtlEqualMemory(a, b, n) (memcmp((a), (b), (n)) == 0)
#define RtlCompareMemory(a, b, n) csim_compare_memory((a), (b), (n))
FORCEINLINE SIZE_T csim_compare_memory(const void *a, const void *b, SIZE_T n)
{
    SIZE_T i = 0;
    while (i < n && ((const UCHAR *)a)[i] == ((const UCHAR *)b)[i]) {
        i++;
    }
    return i;
}
#define RtlUshortByteSwap(v) ((USHORT)__builtin_bswap16((USHORT)(v)))
#define RtlUlongByteSwap(v) ((ULONG)__builtin_bswap32((ULONG)(v)))
#define RtlUlonglongByteSwap(v) ((ULONGLONG)__builtin_bswap64((ULONGLONG)(v)))
FORCEINLINE BOOLEAN IsEqualGUIDInline(const GUID *a, const GUID *b) { return IsEqualGUID(a, b); }

NTSYSAPI ULONG DbgPrint(PCSTR format, ...) __attribute__((format(printf, 1, 2)));
NTSYSAPI ULONG DbgPrintEx(ULONG componentId, ULONG level, PCSTR format, ...)
    __attribute__((format(printf, 3, 4)));
#define DPFLTR_IHVNETWORK_ID 0x13
#define DPFLTR_ERROR_LEVEL 0
#define DPFLTR_TRACE_LEVEL 2
#define DPFLTR_INFO_LEVEL 3
#define KdPrint(args) DbgPrint args
#define ASSERT(e) ((void)((e) ? 0 : (csim_assert_failed(#e, __FILE__, __LINE__), 0)))
#define NT_ASSERT(e) ASSERT(e)
NTKERNELAPI void csim_assert_failed(const char *expression, const char *file, int line)
    __attribute__((noreturn));
NTKERNELAPI void KeBugCheckEx(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3,
                              ULONG_PTR p4) __attribute__((noreturn));

/* -- time -------------------------------------------------------------------------------- */
NTKERNELAPI void KeQuerySystemTime(PLARGE_INTEGER currentTime);
NTKERNELAPI ULONGLONG KeQueryInterruptTime(void);
#define KeQuerySystemTimePrecise KeQuerySystemTime

/* -- I/O manager: driver, device, IRP -------------------------------------------------------- */
#define IRP_MJ_CREATE                0x00
#define IRP_MJ_CLOSE                 0x02
#define IRP_MJ_READ                  0x03
#define IRP_MJ_WRITE                 0x04
#define IRP_MJ_DEVICE_CONTROL        0x0e
#define IRP_MJ_INTERNAL_DEVICE_CONTROL 0x0f
#define IRP_MJ_CLEANUP               0x12
#define IRP_MJ_MAXIMUM_FUNCTION      0x1b

#define FILE_DEVICE_NETWORK          0x00000012
#define FILE_DEVICE_UNKNOWN          0x00000022
#define FILE_DEVICE_SECURE_OPEN      0x00000100
#define FILE_AUTOGENERATED_DEVICE_NAME 0x00000080
#define METHOD_BUFFERED              0
#define METHOD_IN_DIRECT             1
#define METHOD_OUT_DIRECT            2
#define METHOD_NEITHER               3
#define FILE_ANY_ACCESS              0
#define FILE_READ_ACCESS             0x0001
#define FILE_WRITE_ACCESS            0x0002
#define CTL_CODE(deviceType, function, method, access) \
    (((deviceType) << 16) | ((access) << 14) | ((function) << 2) | (method))
#define IO_NO_INCREMENT 0
#define DO_BUFFERED_IO 0x00000004
#define DO_DEVICE_INITIALIZING 0x00000080

struct _DEVICE_OBJECT;
struct _DRIVER_OBJECT;
struct _IRP;

typedef NTSTATUS DRIVER_INITIALIZE(struct _DRIVER_OBJECT *driverObject,
                                   PUNICODE_STRING registryPath);
typedef DRIVER_INITIALIZE *PDRIVER_INITIALIZE;
typedef void DRIVER_UNLOAD(struct _DRIVER_OBJECT *driverObject);
typedef DRIVER_UNLOAD *PDRIVER_UNLOAD;
typedef NTSTATUS DRIVER_DISPATCH(struct _DEVICE_OBJECT *deviceObject, struct _IRP *irp);
typedef DRIVER_DISPATCH *PDRIVER_DISPATCH;

typedef struct _DRIVER_OBJECT {
    CSHORT Type;
    CSHORT Size;
    struct _DEVICE_OBJECT *DeviceObject;
    ULONG Flags;
    PVOID DriverStart;
    ULONG DriverSize;
    PVOID DriverSection;
    PVOID DriverExtension;
    UNICODE_STRING DriverName;
    PUNICODE_STRING HardwareDatabase;
    PVOID FastIoDispatch;
    PDRIVER_INITIALIZE DriverInit;
    PVOID DriverStartIo;
    PDRIVER_UNLOAD DriverUnload;
    PDRIVER_DISPATCH MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1];
} DRIVER_OBJECT, *PDRIVER_OBJECT;

typedef struct _DEVICE_OBJECT {
    CSHORT Type;
    USHORT Size;
    LONG ReferenceCount;
    struct _DRIVER_OBJECT *DriverObject;
    struct _DEVICE_OBJECT *NextDevice;
    ULONG Flags;
    ULONG Characteristics;
    PVOID DeviceExtension;
    ULONG DeviceType;
    CCHAR StackSize;
} DEVICE_OBJECT, *PDEVICE_OBJECT;

typedef struct _IO_STATUS_BLOCK {
    union { NTSTATUS Status; PVOID Pointer; };
    ULONG_PTR Information;
} IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;

typedef struct _IO_STACK_LOCATION {
    UCHAR MajorFunction;
    UCHAR MinorFunction;
    UCHAR Flags;
    UCHAR Control;
    union {
        struct {
            ULONG OutputBufferLength;
            ULONG InputBufferLength;
            ULONG IoControlCode;
            PVOID Type3InputBuffer;
        } DeviceIoControl;
        struct { ULONG Length; ULONG Key; LARGE_INTEGER ByteOffset; } Read;
        struct { ULONG Length; ULONG Key; LARGE_INTEGER ByteOffset; } Write;
    } Parameters;
    PDEVICE_OBJECT DeviceObject;
    PVOID FileObject;
} IO_STACK_LOCATION, *PIO_STACK_LOCATION;

typedef struct _IRP {
    CSHORT Type;
    USHORT Size;
    PVOID MdlAddress;
    ULONG Flags;
    union { struct _IRP *MasterIrp; LONG IrpCount; PVOID SystemBuffer; } AssociatedIrp;
    IO_STATUS_BLOCK IoStatus;
    KPROCESSOR_MODE RequestorMode;
    BOOLEAN PendingReturned;
    BOOLEAN Cancel;
    PVOID UserBuffer;
    struct { struct { PIO_STACK_LOCATION CurrentStackLocation; } Overlay; } Tail;
} IRP, *PIRP;

#define IoGetCurrentIrpStackLocation(irp) ((irp)->Tail.Overlay.CurrentStackLocation)
NTKERNELAPI void IoCompleteRequest(PIRP irp, CCHAR priorityBoost);
NTKERNELAPI NTSTATUS IoCreateDevice(PDRIVER_OBJECT driverObject, ULONG deviceExtensionSize,
                                    PUNICODE_STRING deviceName, ULONG deviceType,
                                    ULONG deviceCharacteristics, BOOLEAN exclusive,
                                    PDEVICE_OBJECT *deviceObject);
NTKERNELAPI void IoDeleteDevice(PDEVICE_OBJECT deviceObject);
NTKERNELAPI NTSTATUS IoCreateSymbolicLink(PUNICODE_STRING symbolicLinkName,
                                          PUNICODE_STRING deviceName);
NTKERNELAPI NTSTATUS IoDeleteSymbolicLink(PUNICODE_STRING symbolicLinkName);

/* -- work items (run at PASSIVE_LEVEL on the model's scheduler) ---------------------------- */
typedef struct _IO_WORKITEM IO_WORKITEM, *PIO_WORKITEM;
typedef void IO_WORKITEM_ROUTINE(PDEVICE_OBJECT deviceObject, PVOID context);
typedef IO_WORKITEM_ROUTINE *PIO_WORKITEM_ROUTINE;
typedef enum _WORK_QUEUE_TYPE { CriticalWorkQueue, DelayedWorkQueue,
                                HyperCriticalWorkQueue } WORK_QUEUE_TYPE;
NTKERNELAPI PIO_WORKITEM IoAllocateWorkItem(PDEVICE_OBJECT deviceObject);
NTKERNELAPI void IoQueueWorkItem(PIO_WORKITEM ioWorkItem, PIO_WORKITEM_ROUTINE workerRoutine,
                                 WORK_QUEUE_TYPE queueType, PVOID context);
NTKERNELAPI void IoFreeWorkItem(PIO_WORKITEM ioWorkItem);

/* -- DPCs and timers (DPCs run at DISPATCH_LEVEL on the model's scheduler) --------------- */
struct _KDPC;
typedef void KDEFERRED_ROUTINE(struct _KDPC *dpc, PVOID deferredContext,
                               PVOID systemArgument1, PVOID systemArgument2);
typedef KDEFERRED_ROUTINE *PKDEFERRED_ROUTINE;
typedef struct _KDPC {
    UCHAR Type;
    UCHAR Importance;
    USHORT Number;
    PKDEFERRED_ROUTINE DeferredRoutine;
    PVOID DeferredContext;
    PVOID SystemArgument1;
    PVOID SystemArgument2;
    ULONG64 CsimQueued;   /* host runtime: the scheduled call's cookie, 0 when idle */
} KDPC, *PKDPC, *PRKDPC;
typedef struct _KTIMER {
    ULONG64 CsimCookie;   /* host runtime: the scheduled call's cookie, 0 when idle */
    PKDPC Dpc;
    LONG Period;
    BOOLEAN Signaled;
} KTIMER, *PKTIMER;
NTKERNELAPI void KeInitializeDpc(PRKDPC dpc, PKDEFERRED_ROUTINE deferredRoutine,
                                 PVOID deferredContext);
NTKERNELAPI BOOLEAN KeInsertQueueDpc(PRKDPC dpc, PVOID systemArgument1, PVOID systemArgument2);
NTKERNELAPI BOOLEAN KeRemoveQueueDpc(PRKDPC dpc);
NTKERNELAPI void KeInitializeTimer(PKTIMER timer);
NTKERNELAPI void KeInitializeTimerEx(PKTIMER timer, ULONG type);
NTKERNELAPI BOOLEAN KeSetTimer(PKTIMER timer, LARGE_INTEGER dueTime, PKDPC dpc);
NTKERNELAPI BOOLEAN KeSetTimerEx(PKTIMER timer, LARGE_INTEGER dueTime, LONG period, PKDPC dpc);
NTKERNELAPI BOOLEAN KeCancelTimer(PKTIMER timer);
NTKERNELAPI BOOLEAN KeReadStateTimer(PKTIMER timer);

#ifdef __cplusplus
}
#endif
#endif /* CSIM_WDM_H */
