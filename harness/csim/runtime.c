/*
 * runtime.c - the host runtime: the fwpsk/fwpmk/wdm/ndis calls a callout driver
 * makes, implemented on top of the callout-harness engine model.
 *
 * The driver's own C code is compiled with gcc against the clean-room headers in
 * include/ and linked with this file into one shared object. Every WFP call goes
 * to the engine model through the CSIM_HOST table (csim_host.h); work items,
 * timers and DPCs run on the model's deterministic scheduler; packets are real
 * NET_BUFFER_LISTs whose memory is freed when the driver frees a clone; pool
 * allocations are real, counted per tag. The kernel's rules that a driver can
 * break on its own (IRQL, spin locks, pool) are checked here: a violation is
 * fatal, as a bug check would be, and the harness reports it as a driver crash.
 */
#define INITGUID
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ntddk.h>
#include <fwpsk.h>
#include <fwpmk.h>
#include <ip2string.h>
#include "csim_runtime.h"

CSIM_HOST g_host;
int g_ready;
KIRQL g_irql = PASSIVE_LEVEL;

/* -- fatal errors: what a bug check would be ---------------------------------------- */

void csim_backtrace(void)
{
    void *frames[64];
    int n = backtrace(frames, 64);
    static const char head[] = "csim: C stack:\n";
    if (write(2, head, sizeof(head) - 1) < 0) {
        return;
    }
    backtrace_symbols_fd(frames, n, 2);
}

void csim_fatal(const char *fmt, ...)
{
    char message[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    fprintf(stderr, "csim: driver bug: %s\n", message);
    fflush(stderr);
    csim_backtrace();
    if (g_ready && g_host.fatal != NULL) {
        g_host.fatal(message);
    }
    abort();
}

void csim_assert_failed(const char *expression, const char *file, int line)
{
    csim_fatal("ASSERT(%s) failed at %s:%d", expression, file, line);
}

void KeBugCheckEx(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4)
{
    csim_fatal("KeBugCheckEx(0x%x, 0x%lx, 0x%lx, 0x%lx, 0x%lx)", code, (unsigned long)p1,
               (unsigned long)p2, (unsigned long)p3, (unsigned long)p4);
}

#if !defined(__SANITIZE_ADDRESS__)
void csim_on_signal(int sig)
{
    char line[96];
    int n = snprintf(line, sizeof(line), "csim: driver crashed: signal %d (%s)\n", sig,
                     strsignal(sig));
    if (n > 0 && write(2, line, (size_t)n) < 0) {
        _exit(128 + sig);
    }
    csim_backtrace();
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

void csim_require(int ok, const char *call, const char *what)
{
    if (!ok) {
        csim_fatal("%s: %s", call, what);
    }
}

void csim_irql_at_most(KIRQL limit, const char *call)
{
    if (g_irql > limit) {
        csim_fatal("%s called at IRQL %u (it requires IRQL <= %u)", call, g_irql, limit);
    }
}

/* -- IRQL -------------------------------------------------------------------------------- */

KIRQL KeGetCurrentIrql(void) { return g_irql; }

void KeRaiseIrql(KIRQL newIrql, PKIRQL oldIrql)
{
    if (newIrql < g_irql) {
        csim_fatal("KeRaiseIrql to %u from the higher IRQL %u", newIrql, g_irql);
    }
    *oldIrql = g_irql;
    g_irql = newIrql;
}

void KeLowerIrql(KIRQL newIrql)
{
    if (newIrql > g_irql) {
        csim_fatal("KeLowerIrql to %u from the lower IRQL %u", newIrql, g_irql);
    }
    g_irql = newIrql;
}

KIRQL KeRaiseIrqlToDpcLevel(void)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    return old;
}

/* -- spin locks: single CPU, so acquiring a held lock is a deadlock ------------------------- */

#define CSIM_LOCK_HELD ((KSPIN_LOCK)0x4C4F434BUL)

void KeInitializeSpinLock(PKSPIN_LOCK lock) { *lock = 0; }

static void csim_lock(PKSPIN_LOCK lock, const char *call)
{
    if (*lock == CSIM_LOCK_HELD) {
        csim_fatal("%s: the spin lock is already held (a deadlock on a real machine)", call);
    }
    *lock = CSIM_LOCK_HELD;
}

static void csim_unlock(PKSPIN_LOCK lock, const char *call)
{
    if (*lock != CSIM_LOCK_HELD) {
        csim_fatal("%s: the spin lock is not held", call);
    }
    *lock = 0;
}

void KeAcquireSpinLock(PKSPIN_LOCK lock, PKIRQL oldIrql)
{
    csim_irql_at_most(DISPATCH_LEVEL, "KeAcquireSpinLock");
    csim_lock(lock, "KeAcquireSpinLock");
    *oldIrql = g_irql;
    g_irql = DISPATCH_LEVEL;
}

void KeReleaseSpinLock(PKSPIN_LOCK lock, KIRQL newIrql)
{
    csim_unlock(lock, "KeReleaseSpinLock");
    g_irql = newIrql;
}

void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK lock)
{
    csim_require(g_irql == DISPATCH_LEVEL, "KeAcquireSpinLockAtDpcLevel",
                 "called below DISPATCH_LEVEL");
    csim_lock(lock, "KeAcquireSpinLockAtDpcLevel");
}

void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK lock)
{
    csim_unlock(lock, "KeReleaseSpinLockFromDpcLevel");
}

void KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK lock, PKLOCK_QUEUE_HANDLE handle)
{
    csim_irql_at_most(DISPATCH_LEVEL, "KeAcquireInStackQueuedSpinLock");
    csim_lock(lock, "KeAcquireInStackQueuedSpinLock");
    handle->LockQueue.Lock = lock;
    handle->LockQueue.Next = NULL;
    handle->OldIrql = g_irql;
    g_irql = DISPATCH_LEVEL;
}

void KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE handle)
{
    csim_unlock(handle->LockQueue.Lock, "KeReleaseInStackQueuedSpinLock");
    g_irql = handle->OldIrql;
}

void KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK lock, PKLOCK_QUEUE_HANDLE handle)
{
    csim_require(g_irql == DISPATCH_LEVEL, "KeAcquireInStackQueuedSpinLockAtDpcLevel",
                 "called below DISPATCH_LEVEL");
    csim_lock(lock, "KeAcquireInStackQueuedSpinLockAtDpcLevel");
    handle->LockQueue.Lock = lock;
    handle->OldIrql = g_irql;
}

void KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE handle)
{
    csim_unlock(handle->LockQueue.Lock, "KeReleaseInStackQueuedSpinLockFromDpcLevel");
}

/* -- events: one thread of control, so a wait can only succeed on a signalled event --------- */

void KeInitializeEvent(PRKEVENT event, EVENT_TYPE type, BOOLEAN state)
{
    event->Type = type;
    event->Signaled = state ? 1 : 0;
}

LONG KeSetEvent(PRKEVENT event, LONG increment, BOOLEAN wait)
{
    LONG previous = event->Signaled;
    UNREFERENCED_PARAMETER(increment);
    UNREFERENCED_PARAMETER(wait);
    event->Signaled = 1;
    return previous;
}

void KeClearEvent(PRKEVENT event) { event->Signaled = 0; }

NTSTATUS KeWaitForSingleObject(PVOID object, KWAIT_REASON reason, KPROCESSOR_MODE mode,
                               BOOLEAN alertable, PLARGE_INTEGER timeout)
{
    PRKEVENT event = (PRKEVENT)object;
    UNREFERENCED_PARAMETER(reason);
    UNREFERENCED_PARAMETER(mode);
    UNREFERENCED_PARAMETER(alertable);
    if (timeout == NULL || timeout->QuadPart != 0) {
        csim_irql_at_most(APC_LEVEL, "KeWaitForSingleObject (a wait)");
    }
    if (event->Signaled) {
        if (event->Type == SynchronizationEvent) {
            event->Signaled = 0;
        }
        return STATUS_SUCCESS;
    }
    if (timeout != NULL) {
        return 0x00000102L; /* STATUS_TIMEOUT */
    }
    csim_fatal("KeWaitForSingleObject: waits forever on an event nobody can signal "
               "(the model runs the driver on one thread)");
}

NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE mode, BOOLEAN alertable, PLARGE_INTEGER interval)
{
    UNREFERENCED_PARAMETER(mode);
    UNREFERENCED_PARAMETER(alertable);
    UNREFERENCED_PARAMETER(interval);
    csim_irql_at_most(APC_LEVEL, "KeDelayExecutionThread");
    return STATUS_SUCCESS;
}

/* -- pool: real memory, counted per tag ---------------------------------------------------- */

#define CSIM_POOL_MAGIC 0x504F4F4C50524F42ULL
#define CSIM_POOL_FREED 0x4652454544424C4BULL
#define CSIM_MAX_TAGS 128

typedef struct CSIM_POOL_HEADER {
    ULONG64 magic;
    ULONG tag;
    ULONG reserved;
    SIZE_T size;
    ULONG64 align;
} CSIM_POOL_HEADER;

typedef struct CSIM_TAG_STATS {
    ULONG tag;
    ULONG64 live;
    ULONG64 bytes;
    ULONG64 total;
} CSIM_TAG_STATS;

#define CSIM_QUARANTINE 4096
static CSIM_POOL_HEADER *g_quarantine[CSIM_QUARANTINE];
static UINT32 g_quarantine_next;
static CSIM_TAG_STATS g_tags[CSIM_MAX_TAGS];
static UINT32 g_tag_count;

static CSIM_TAG_STATS *csim_tag(ULONG tag)
{
    UINT32 i;
    for (i = 0; i < g_tag_count; i++) {
        if (g_tags[i].tag == tag) {
            return &g_tags[i];
        }
    }
    if (g_tag_count == CSIM_MAX_TAGS) {
        csim_fatal("more than %d distinct pool tags", CSIM_MAX_TAGS);
    }
    g_tags[g_tag_count].tag = tag;
    return &g_tags[g_tag_count++];
}

PVOID ExAllocatePool2(POOL_FLAGS flags, SIZE_T numberOfBytes, ULONG tag)
{
    CSIM_POOL_HEADER *h;
    CSIM_TAG_STATS *stats;
    if (flags & POOL_FLAG_PAGED) {
        csim_irql_at_most(APC_LEVEL, "ExAllocatePool2(POOL_FLAG_PAGED)");
    } else {
        csim_irql_at_most(DISPATCH_LEVEL, "ExAllocatePool2");
    }
    if (tag == 0) {
        csim_fatal("ExAllocatePool2: a pool tag of 0");
    }
    h = malloc(sizeof(*h) + (numberOfBytes ? numberOfBytes : 1));
    if (h == NULL) {
        return NULL;
    }
    h->magic = CSIM_POOL_MAGIC;
    h->tag = tag;
    h->size = numberOfBytes;
    if (!(flags & POOL_FLAG_UNINITIALIZED)) {
        memset(h + 1, 0, numberOfBytes);
    }
    stats = csim_tag(tag);
    stats->live++;
    stats->bytes += numberOfBytes;
    stats->total++;
    return h + 1;
}

PVOID ExAllocatePoolWithTag(POOL_TYPE type, SIZE_T numberOfBytes, ULONG tag)
{
    return ExAllocatePool2(type == PagedPool ? POOL_FLAG_PAGED : POOL_FLAG_NON_PAGED,
                           numberOfBytes, tag);
}

static void csim_pool_free(PVOID p, ULONG tag, int checkTag, const char *call)
{
    CSIM_POOL_HEADER *h;
    CSIM_TAG_STATS *stats;
    csim_irql_at_most(DISPATCH_LEVEL, call);
    if (p == NULL) {
        csim_fatal("%s(NULL)", call);
    }
    h = (CSIM_POOL_HEADER *)p - 1;
    if (h->magic == CSIM_POOL_FREED) {
        csim_fatal("%s: the block at %p was freed before (a double free)", call, p);
    }
    if (h->magic != CSIM_POOL_MAGIC) {
        csim_fatal("%s: %p is not a pool block", call, p);
    }
    if (checkTag && h->tag != tag) {
        csim_fatal("%s: the block was allocated with another tag (0x%08x, freed with 0x%08x)",
                   call, h->tag, tag);
    }
    stats = csim_tag(h->tag);
    stats->live--;
    stats->bytes -= h->size;
    h->magic = CSIM_POOL_FREED;
#if defined(__SANITIZE_ADDRESS__)
    free(h);  /* AddressSanitizer keeps its own quarantine and reports misuse itself */
#else
    /* Keep the most recent frees in quarantine, filled with a pattern, so that a second
     * free (or a use) of them is recognised instead of landing in reused memory. */
    memset(h + 1, 0xDD, h->size);
    if (g_quarantine[g_quarantine_next] != NULL) {
        free(g_quarantine[g_quarantine_next]);
    }
    g_quarantine[g_quarantine_next] = h;
    g_quarantine_next = (g_quarantine_next + 1) % CSIM_QUARANTINE;
#endif
}

void ExFreePoolWithTag(PVOID p, ULONG tag) { csim_pool_free(p, tag, 1, "ExFreePoolWithTag"); }
void ExFreePool(PVOID p) { csim_pool_free(p, 0, 0, "ExFreePool"); }

UINT32 csim_pool_report(char *buffer, UINT32 size)
{
    UINT32 i, used = 0;
    if (size == 0) {
        return 0;
    }
    buffer[0] = '\0';
    for (i = 0; i < g_tag_count && used + 1 < size; i++) {
        ULONG t = g_tags[i].tag;
        int n = snprintf(buffer + used, size - used, "%c%c%c%c %llu %llu %llu\n",
                         (char)(t & 0xff), (char)((t >> 8) & 0xff), (char)((t >> 16) & 0xff),
                         (char)((t >> 24) & 0xff), (unsigned long long)g_tags[i].live,
                         (unsigned long long)g_tags[i].bytes,
                         (unsigned long long)g_tags[i].total);
        if (n < 0 || (UINT32)n >= size - used) {
            break;
        }
        used += (UINT32)n;
    }
    return used;
}

NTSTATUS ExUuidCreate(GUID *uuid)
{
    static ULONG64 next = 1;
    memset(uuid, 0, sizeof(*uuid));
    uuid->Data1 = 0x6373696d;  /* deterministic: the same run makes the same keys */
    uuid->Data2 = 0x4000;
    uuid->Data3 = 0x4000;
    memcpy(uuid->Data4, &next, sizeof(uuid->Data4));
    next++;
    return STATUS_SUCCESS;
}

/* -- strings, debug output, time ------------------------------------------------------------ */

void RtlInitUnicodeString(PUNICODE_STRING destination, PCWSTR source)
{
    SIZE_T n = 0;
    if (source != NULL) {
        while (source[n] != 0) {
            n++;
        }
    }
    destination->Buffer = (PWSTR)source;
    destination->Length = (USHORT)(n * sizeof(WCHAR));
    destination->MaximumLength = (USHORT)(source != NULL ? (n + 1) * sizeof(WCHAR) : 0);
}

ULONG DbgPrint(PCSTR format, ...)
{
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    return 0;
}

ULONG DbgPrintEx(ULONG componentId, ULONG level, PCSTR format, ...)
{
    va_list args;
    UNREFERENCED_PARAMETER(componentId);
    UNREFERENCED_PARAMETER(level);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    return 0;
}

void KeQuerySystemTime(PLARGE_INTEGER currentTime)
{
    currentTime->QuadPart = (LONGLONG)(g_ready ? g_host.now100ns() : 0);
}

ULONGLONG KeQueryInterruptTime(void) { return g_ready ? g_host.now100ns() : 0; }

PSTR RtlIpv4AddressToStringA(const IN_ADDR *addr, PSTR s)
{
    const UCHAR *b = (const UCHAR *)&addr->S_un.S_addr;
    int n = sprintf(s, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    return s + n;
}

NTSTATUS RtlIpv4AddressToStringExA(const IN_ADDR *address, USHORT port, PSTR addressString,
                                   PULONG addressStringLength)
{
    char text[32];
    ULONG need;
    RtlIpv4AddressToStringA(address, text);
    if (port != 0) {
        snprintf(text + strlen(text), sizeof(text) - strlen(text), ":%u",
                 (unsigned)RtlUshortByteSwap(port));
    }
    need = (ULONG)strlen(text) + 1;
    if (addressString == NULL || *addressStringLength < need) {
        *addressStringLength = need;
        return STATUS_INVALID_PARAMETER;
    }
    memcpy(addressString, text, need);
    *addressStringLength = need;
    return STATUS_SUCCESS;
}

/* RFC 5952 text: lower case, the longest run of two or more zero words as "::". */
PSTR RtlIpv6AddressToStringA(const IN6_ADDR *addr, PSTR s)
{
    USHORT w[8];
    int i, best = -1, bestLen = 0, run = -1, runLen = 0;
    char *p = s;
    for (i = 0; i < 8; i++) {
        w[i] = (USHORT)((addr->u.Byte[2 * i] << 8) | addr->u.Byte[2 * i + 1]);
    }
    for (i = 0; i < 8; i++) {
        if (w[i] == 0) {
            if (run < 0) {
                run = i;
                runLen = 0;
            }
            runLen++;
            if (runLen > bestLen) {
                best = run;
                bestLen = runLen;
            }
        } else {
            run = -1;
        }
    }
    if (bestLen < 2) {
        best = -1;
    }
    for (i = 0; i < 8; i++) {
        if (i == best) {
            p += sprintf(p, "::");
            i += bestLen - 1;
            continue;
        }
        if (i > 0 && !(best >= 0 && i == best + bestLen)) {
            *p++ = ':';
        }
        p += sprintf(p, "%x", w[i]);
    }
    *p = '\0';
    return p;
}

NTSTATUS RtlIpv6AddressToStringExA(const IN6_ADDR *address, ULONG scopeId, USHORT port,
                                   PSTR addressString, PULONG addressStringLength)
{
    char text[128], body[64];
    ULONG need;
    RtlIpv6AddressToStringA(address, body);
    if (scopeId != 0 && port != 0) {
        snprintf(text, sizeof(text), "[%s%%%u]:%u", body, scopeId, (unsigned)RtlUshortByteSwap(port));
    } else if (port != 0) {
        snprintf(text, sizeof(text), "[%s]:%u", body, (unsigned)RtlUshortByteSwap(port));
    } else if (scopeId != 0) {
        snprintf(text, sizeof(text), "%s%%%u", body, scopeId);
    } else {
        snprintf(text, sizeof(text), "%s", body);
    }
    need = (ULONG)strlen(text) + 1;
    if (addressString == NULL || *addressStringLength < need) {
        *addressStringLength = need;
        return STATUS_INVALID_PARAMETER;
    }
    memcpy(addressString, text, need);
    *addressStringLength = need;
    return STATUS_SUCCESS;
}

