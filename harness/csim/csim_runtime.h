/* csim_runtime.h - what the parts of the host runtime share (not for drivers). */
#ifndef CSIM_RUNTIME_H
#define CSIM_RUNTIME_H
#include <ntddk.h>
#include <fwpsk.h>
#include <fwpmk.h>
#include "csim_host.h"

extern DRIVER_INITIALIZE DriverEntry;  /* the driver's */
extern CSIM_HOST g_host;
extern int g_ready;
extern KIRQL g_irql;

void csim_backtrace(void);
void csim_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void csim_require(int ok, const char *call, const char *what);
void csim_irql_at_most(KIRQL limit, const char *call);
void csim_on_signal(int sig);

/* Run a driver callback at an IRQL and check that it comes back there (no lock left held). */
#define CSIM_AT_IRQL(level, what, call) \
    do { \
        KIRQL csimSaved_ = g_irql; \
        g_irql = (level); \
        call; \
        if (g_irql != (level)) { \
            csim_fatal("%s returned at IRQL %u, entered at %u (a spin lock still held?)", \
                       (what), g_irql, (unsigned)(level)); \
        } \
        g_irql = csimSaved_; \
    } while (0)

/* scheduled work: one cookie per queued work item, timer, DPC or injection */
enum { CSIM_WORK_ITEM = 1, CSIM_WORK_TIMER, CSIM_WORK_DPC, CSIM_WORK_INJECTION };
UINT64 csim_schedule(UINT32 kind, void *object, void *routine, void *context, void *extra);
void csim_unschedule(UINT64 cookie);
#endif
