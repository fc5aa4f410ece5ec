/* ntddk.h - host build: everything a callout driver gets from ntddk.h is in wdm.h here.
 * Clean-room for callout-harness (harness/csim). */
#ifndef CSIM_NTDDK_H
#define CSIM_NTDDK_H
#include <wdm.h>
#endif
