/*
 * runtime_io.c - the I/O manager side of the host runtime: the driver object,
 * DriverEntry/DriverUnload, the device and its IRP_MJ_DEVICE_CONTROL dispatch,
 * work items, DPCs and timers (on the engine model's scheduler) and
 * TraceLogging (handed to the harness).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csim_runtime.h"

#define CSIM_MAX_SCHEDULED (1u << 22)

typedef struct CSIM_SCHEDULED {
    UINT32 kind;
    UINT32 active;
    void *object;
    void *routine;
    void *context;
    void *extra;
} CSIM_SCHEDULED;

static CSIM_SCHEDULED *g_sched;
static UINT64 g_sched_count, g_sched_cap;
static DRIVER_OBJECT g_driver;
static UNICODE_STRING g_registry_path;
static int g_entered;

struct _IO_WORKITEM {
    ULONG magic;
    PDEVICE_OBJECT device;
    UINT64 queued;
};
#define CSIM_WORKITEM_MAGIC 0x4B524F57u

UINT64 csim_schedule(UINT32 kind, void *object, void *routine, void *context, void *extra)
{
    CSIM_SCHEDULED *s;
    if (g_sched_count == g_sched_cap) {
        UINT64 cap = g_sched_cap ? g_sched_cap * 2 : 1024;
        if (cap > CSIM_MAX_SCHEDULED) {
            csim_fatal("more than %u work items, timers, DPCs and injections in one run",
                       CSIM_MAX_SCHEDULED);
        }
        g_sched = realloc(g_sched, cap * sizeof(*g_sched));
        if (g_sched == NULL) {
            csim_fatal("out of memory for the scheduler table");
        }
        g_sched_cap = cap;
    }
    s = &g_sched[g_sched_count++];
    s->kind = kind;
    s->active = 1;
    s->object = object;
    s->routine = routine;
    s->context = context;
    s->extra = extra;
    return g_sched_count;  /* cookie = index + 1 */
}

void csim_unschedule(UINT64 cookie)
{
    if (cookie >= 1 && cookie <= g_sched_count) {
        g_sched[cookie - 1].active = 0;
    }
}

static CSIM_SCHEDULED *csim_take(UINT64 cookie)
{
    CSIM_SCHEDULED *s;
    if (cookie < 1 || cookie > g_sched_count) {
        csim_fatal("the harness fired an unknown cookie %llu", (unsigned long long)cookie);
    }
    s = &g_sched[cookie - 1];
    if (!s->active) {
        return NULL;  /* cancelled */
    }
    s->active = 0;
    return s;
}

/* -- start-up ------------------------------------------------------------------------------- */

UINT32 csim_abi_version(void) { return CSIM_ABI_VERSION; }

INT32 csim_init(const CSIM_HOST *host)
{
    if (host->version != CSIM_ABI_VERSION) {
        return STATUS_REVISION_MISMATCH;
    }
    g_host = *host;
    g_ready = 1;
#if !defined(__SANITIZE_ADDRESS__)
    signal(SIGSEGV, csim_on_signal);
    signal(SIGBUS, csim_on_signal);
    signal(SIGFPE, csim_on_signal);
    signal(SIGILL, csim_on_signal);
#endif
    return STATUS_SUCCESS;
}

static const WCHAR g_registry_text[] =
    L"\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\csim";

INT32 csim_driver_entry(void)
{
    NTSTATUS status;
    if (g_entered) {
        csim_fatal("DriverEntry called twice without DriverUnload");
    }
    memset(&g_driver, 0, sizeof(g_driver));
    g_driver.Type = 4;
    g_driver.Size = (CSHORT)sizeof(g_driver);
    RtlInitUnicodeString(&g_driver.DriverName, L"\\Driver\\csim");
    RtlInitUnicodeString(&g_registry_path, g_registry_text);
    g_driver.DriverInit = DriverEntry;
    g_entered = 1;
    CSIM_AT_IRQL(PASSIVE_LEVEL, "DriverEntry", status = DriverEntry(&g_driver, &g_registry_path));
    if (!NT_SUCCESS(status)) {
        g_entered = 0;
    }
    return status;
}

void csim_driver_unload(void)
{
    if (!g_entered) {
        return;
    }
    if (g_driver.DriverUnload != NULL) {
        CSIM_AT_IRQL(PASSIVE_LEVEL, "DriverUnload", g_driver.DriverUnload(&g_driver));
    }
    g_entered = 0;
}

/* The harness's configuration path: an IRP_MJ_DEVICE_CONTROL on the driver's first device,
 * built the way the I/O manager builds a METHOD_BUFFERED request. */
INT32 csim_device_control(UINT32 ioControlCode, void *input, UINT32 inputLength)
{
    IRP irp;
    IO_STACK_LOCATION stack;
    PDRIVER_DISPATCH dispatch = g_driver.MajorFunction[IRP_MJ_DEVICE_CONTROL];
    NTSTATUS status;
    void *buffer;
    if (g_driver.DeviceObject == NULL || dispatch == NULL) {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    buffer = malloc(inputLength ? inputLength : 1);
    if (buffer == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    memcpy(buffer, input, inputLength);
    memset(&irp, 0, sizeof(irp));
    memset(&stack, 0, sizeof(stack));
    irp.Type = 6;
    irp.Size = (USHORT)sizeof(irp);
    irp.AssociatedIrp.SystemBuffer = buffer;
    irp.RequestorMode = UserMode;
    irp.Tail.Overlay.CurrentStackLocation = &stack;
    stack.MajorFunction = IRP_MJ_DEVICE_CONTROL;
    stack.Parameters.DeviceIoControl.IoControlCode = ioControlCode;
    stack.Parameters.DeviceIoControl.InputBufferLength = inputLength;
    stack.Parameters.DeviceIoControl.OutputBufferLength = 0;
    stack.DeviceObject = g_driver.DeviceObject;
    CSIM_AT_IRQL(PASSIVE_LEVEL, "IRP_MJ_DEVICE_CONTROL dispatch",
                 status = dispatch(g_driver.DeviceObject, &irp));
    free(buffer);
    if (status != irp.IoStatus.Status && status != STATUS_PENDING) {
        csim_fatal("IRP_MJ_DEVICE_CONTROL returned 0x%08x but completed the IRP with 0x%08x",
                   (unsigned)status, (unsigned)irp.IoStatus.Status);
    }
    return status;
}

void IoCompleteRequest(PIRP irp, CCHAR priorityBoost)
{
    UNREFERENCED_PARAMETER(priorityBoost);
    csim_irql_at_most(DISPATCH_LEVEL, "IoCompleteRequest");
    if (irp->PendingReturned) {
        csim_fatal("IoCompleteRequest: the IRP was completed twice");
    }
    irp->PendingReturned = TRUE;  /* marks it completed for the check above */
}

NTSTATUS IoCreateDevice(PDRIVER_OBJECT driverObject, ULONG deviceExtensionSize,
                        PUNICODE_STRING deviceName, ULONG deviceType, ULONG deviceCharacteristics,
                        BOOLEAN exclusive, PDEVICE_OBJECT *deviceObject)
{
    PDEVICE_OBJECT device;
    UNREFERENCED_PARAMETER(deviceName);
    UNREFERENCED_PARAMETER(exclusive);
    csim_irql_at_most(PASSIVE_LEVEL, "IoCreateDevice");
    device = calloc(1, sizeof(*device) + deviceExtensionSize);
    if (device == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    device->Type = 3;
    device->Size = (USHORT)sizeof(*device);
    device->DriverObject = driverObject;
    device->DeviceType = deviceType;
    device->Characteristics = deviceCharacteristics;
    device->DeviceExtension = deviceExtensionSize ? (void *)(device + 1) : NULL;
    device->Flags = DO_DEVICE_INITIALIZING;
    device->NextDevice = driverObject->DeviceObject;
    driverObject->DeviceObject = device;
    *deviceObject = device;
    return STATUS_SUCCESS;
}

void IoDeleteDevice(PDEVICE_OBJECT deviceObject)
{
    PDEVICE_OBJECT *link = &deviceObject->DriverObject->DeviceObject;
    csim_irql_at_most(PASSIVE_LEVEL, "IoDeleteDevice");
    while (*link != NULL && *link != deviceObject) {
        link = &(*link)->NextDevice;
    }
    if (*link == NULL) {
        csim_fatal("IoDeleteDevice: not a device of this driver (deleted twice?)");
    }
    *link = deviceObject->NextDevice;
    free(deviceObject);
}

NTSTATUS IoCreateSymbolicLink(PUNICODE_STRING symbolicLinkName, PUNICODE_STRING deviceName)
{
    UNREFERENCED_PARAMETER(symbolicLinkName);
    UNREFERENCED_PARAMETER(deviceName);
    csim_irql_at_most(PASSIVE_LEVEL, "IoCreateSymbolicLink");
    return STATUS_SUCCESS;
}

NTSTATUS IoDeleteSymbolicLink(PUNICODE_STRING symbolicLinkName)
{
    UNREFERENCED_PARAMETER(symbolicLinkName);
    csim_irql_at_most(PASSIVE_LEVEL, "IoDeleteSymbolicLink");
    return STATUS_SUCCESS;
}

/* -- work items ---------------------------------------------------------------------------- */

PIO_WORKITEM IoAllocateWorkItem(PDEVICE_OBJECT deviceObject)
{
    PIO_WORKITEM item;
    csim_irql_at_most(DISPATCH_LEVEL, "IoAllocateWorkItem");
    item = calloc(1, sizeof(*item));
    if (item != NULL) {
        item->magic = CSIM_WORKITEM_MAGIC;
        item->device = deviceObject;
    }
    return item;
}

void IoQueueWorkItem(PIO_WORKITEM ioWorkItem, PIO_WORKITEM_ROUTINE workerRoutine,
                     WORK_QUEUE_TYPE queueType, PVOID context)
{
    UNREFERENCED_PARAMETER(queueType);
    csim_irql_at_most(DISPATCH_LEVEL, "IoQueueWorkItem");
    if (ioWorkItem->magic != CSIM_WORKITEM_MAGIC) {
        csim_fatal("IoQueueWorkItem: not a work item (freed?)");
    }
    if (ioWorkItem->queued) {
        csim_fatal("IoQueueWorkItem: the work item is already queued");
    }
    ioWorkItem->queued = csim_schedule(CSIM_WORK_ITEM, ioWorkItem, (void *)workerRoutine,
                                       context, NULL);
    g_host.call_later(0, ioWorkItem->queued);
}

void IoFreeWorkItem(PIO_WORKITEM ioWorkItem)
{
    csim_irql_at_most(DISPATCH_LEVEL, "IoFreeWorkItem");
    if (ioWorkItem->magic != CSIM_WORKITEM_MAGIC) {
        csim_fatal("IoFreeWorkItem: not a work item (freed twice?)");
    }
    if (ioWorkItem->queued) {
        csim_fatal("IoFreeWorkItem: the work item is still queued");
    }
    ioWorkItem->magic = 0;
    free(ioWorkItem);
}

/* -- DPCs and timers --------------------------------------------------------------------------- */

void KeInitializeDpc(PRKDPC dpc, PKDEFERRED_ROUTINE deferredRoutine, PVOID deferredContext)
{
    memset(dpc, 0, sizeof(*dpc));
    dpc->Type = 19;
    dpc->DeferredRoutine = deferredRoutine;
    dpc->DeferredContext = deferredContext;
}

BOOLEAN KeInsertQueueDpc(PRKDPC dpc, PVOID systemArgument1, PVOID systemArgument2)
{
    csim_irql_at_most(HIGH_LEVEL, "KeInsertQueueDpc");
    if (dpc->CsimQueued) {
        return FALSE;
    }
    dpc->SystemArgument1 = systemArgument1;
    dpc->SystemArgument2 = systemArgument2;
    dpc->CsimQueued = csim_schedule(CSIM_WORK_DPC, dpc, NULL, NULL, NULL);
    g_host.call_later(0, dpc->CsimQueued);
    return TRUE;
}

BOOLEAN KeRemoveQueueDpc(PRKDPC dpc)
{
    if (!dpc->CsimQueued) {
        return FALSE;
    }
    csim_unschedule(dpc->CsimQueued);
    dpc->CsimQueued = 0;
    return TRUE;
}

void KeInitializeTimer(PKTIMER timer) { memset(timer, 0, sizeof(*timer)); }
void KeInitializeTimerEx(PKTIMER timer, ULONG type)
{
    UNREFERENCED_PARAMETER(type);
    KeInitializeTimer(timer);
}

BOOLEAN KeSetTimerEx(PKTIMER timer, LARGE_INTEGER dueTime, LONG period, PKDPC dpc)
{
    BOOLEAN wasSet = timer->CsimCookie != 0;
    UINT64 delay;
    csim_irql_at_most(DISPATCH_LEVEL, "KeSetTimer");
    if (period != 0) {
        csim_fatal("KeSetTimerEx: periodic timers are not modelled");
    }
    if (wasSet) {
        csim_unschedule(timer->CsimCookie);
    }
    if (dueTime.QuadPart < 0) {
        delay = (UINT64)(-dueTime.QuadPart);
    } else {
        UINT64 now = g_host.now100ns();
        delay = (UINT64)dueTime.QuadPart > now ? (UINT64)dueTime.QuadPart - now : 0;
    }
    timer->Dpc = dpc;
    timer->Signaled = FALSE;
    timer->CsimCookie = csim_schedule(CSIM_WORK_TIMER, timer, NULL, NULL, dpc);
    g_host.call_later(delay, timer->CsimCookie);
    return wasSet;
}

BOOLEAN KeSetTimer(PKTIMER timer, LARGE_INTEGER dueTime, PKDPC dpc)
{
    return KeSetTimerEx(timer, dueTime, 0, dpc);
}

BOOLEAN KeCancelTimer(PKTIMER timer)
{
    BOOLEAN wasSet = timer->CsimCookie != 0;
    csim_irql_at_most(DISPATCH_LEVEL, "KeCancelTimer");
    if (wasSet) {
        csim_unschedule(timer->CsimCookie);
        timer->CsimCookie = 0;
    }
    return wasSet;
}

BOOLEAN KeReadStateTimer(PKTIMER timer) { return timer->Signaled; }

/* The harness's scheduler reached a cookie: run what it stands for. */
void csim_fire(UINT64 cookie)
{
    CSIM_SCHEDULED *s = csim_take(cookie);
    if (s == NULL) {
        return;
    }
    switch (s->kind) {
    case CSIM_WORK_ITEM: {
        PIO_WORKITEM item = (PIO_WORKITEM)s->object;
        PIO_WORKITEM_ROUTINE routine = (PIO_WORKITEM_ROUTINE)s->routine;
        item->queued = 0;
        CSIM_AT_IRQL(PASSIVE_LEVEL, "a work item routine", routine(item->device, s->context));
        break;
    }
    case CSIM_WORK_DPC: {
        PKDPC dpc = (PKDPC)s->object;
        dpc->CsimQueued = 0;
        CSIM_AT_IRQL(DISPATCH_LEVEL, "a DPC routine",
                     dpc->DeferredRoutine(dpc, dpc->DeferredContext, dpc->SystemArgument1,
                                          dpc->SystemArgument2));
        break;
    }
    case CSIM_WORK_TIMER: {
        PKTIMER timer = (PKTIMER)s->object;
        PKDPC dpc = (PKDPC)s->extra;
        timer->CsimCookie = 0;
        timer->Signaled = TRUE;
        if (dpc != NULL) {
            CSIM_AT_IRQL(DISPATCH_LEVEL, "a timer DPC routine",
                         dpc->DeferredRoutine(dpc, dpc->DeferredContext, NULL, NULL));
        }
        break;
    }
    default:
        csim_fatal("cookie %llu is not a work item, DPC or timer", (unsigned long long)cookie);
    }
}

/* An injection the driver asked to be told about has completed. */
void csim_inject_complete(UINT64 cookie, INT32 status)
{
    CSIM_SCHEDULED *s = csim_take(cookie);
    PNET_BUFFER_LIST nbl;
    FWPS_INJECT_COMPLETE0 completion;
    if (s == NULL) {
        return;
    }
    if (s->kind != CSIM_WORK_INJECTION) {
        csim_fatal("cookie %llu is not an injection", (unsigned long long)cookie);
    }
    nbl = (PNET_BUFFER_LIST)s->object;
    completion = (FWPS_INJECT_COMPLETE0)s->routine;
    nbl->Status = status;
    CSIM_AT_IRQL(DISPATCH_LEVEL, "an injection completion function",
                 completion(s->context, nbl, TRUE));
}

/* -- TraceLogging ------------------------------------------------------------------------------- */

NTSTATUS TraceLoggingRegister(TraceLoggingHProvider provider)
{
    CSIM_TLG_PROVIDER *p = (CSIM_TLG_PROVIDER *)provider;
    if (p->registered) {
        csim_fatal("TraceLoggingRegister: provider %s registered twice", p->name);
    }
    p->registered = 1;
    return STATUS_SUCCESS;
}

void TraceLoggingUnregister(TraceLoggingHProvider provider)
{
    ((CSIM_TLG_PROVIDER *)provider)->registered = 0;
}

static INT32 g_tlg_all = 1;

/* 0: hand over only the events that go into the trace (alloc, free, decision, queue);
 * 1: every event (the cross-check needs them all). */
void csim_tlg_select(INT32 all) { g_tlg_all = all; }

static int csim_tlg_wanted(const char *name)
{
    return g_tlg_all || strcmp(name, "alloc") == 0 || strcmp(name, "free") == 0 ||
           strcmp(name, "decision") == 0 || strcmp(name, "queue") == 0;
}

void csim_tlg_write(TraceLoggingHProvider provider, const char *eventName,
                    const CSIM_TLG_FIELD *fields, UINT32 count)
{
    if (!provider->registered || !csim_tlg_wanted(eventName)) {
        return;  /* as ETW: nobody listens to an unregistered provider */
    }
    g_host.trace(provider->name, eventName, fields, count);
}

PVOID NdisGetDataBuffer(PNET_BUFFER netBuffer, ULONG bytesNeeded, PVOID storage,
                        UINT alignMultiple, UINT alignOffset)
{
    PMDL mdl = netBuffer->CurrentMdl;
    UNREFERENCED_PARAMETER(storage);
    UNREFERENCED_PARAMETER(alignMultiple);
    UNREFERENCED_PARAMETER(alignOffset);
    if (mdl == NULL || netBuffer->CurrentMdlOffset + bytesNeeded > mdl->ByteCount) {
        return NULL;
    }
    return (PUCHAR)mdl->MappedSystemVa + netBuffer->CurrentMdlOffset;
}
