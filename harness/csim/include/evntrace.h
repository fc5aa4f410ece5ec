/* evntrace.h - host build: nothing a callout driver needs beyond TraceLoggingProvider.h. */
#ifndef CSIM_EVNTRACE_H
#define CSIM_EVNTRACE_H
#include <wdm.h>
#endif
