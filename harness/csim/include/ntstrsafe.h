/* ntstrsafe.h - the bounded string functions drivers use, for the host build.
 * Clean-room for callout-harness (harness/csim). */
#ifndef CSIM_NTSTRSAFE_H
#define CSIM_NTSTRSAFE_H
#include <stdarg.h>
#include <stdio.h>
#include <wdm.h>

#define STATUS_BUFFER_OVERFLOW ((NTSTATUS)0x80000005L)
#define NTSTRSAFE_MAX_CCH 2147483647

static inline NTSTATUS RtlStringCbVPrintfA(char *dest, size_t cbDest, const char *fmt, va_list args)
{
    int n;
    if (dest == NULL || cbDest == 0 || cbDest > NTSTRSAFE_MAX_CCH) {
        return STATUS_INVALID_PARAMETER;
    }
    n = vsnprintf(dest, cbDest, fmt, args);
    if (n < 0) {
        dest[0] = '\0';
        return STATUS_INVALID_PARAMETER;
    }
    return (size_t)n >= cbDest ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}
static inline NTSTATUS RtlStringCbPrintfA(char *dest, size_t cbDest, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline NTSTATUS RtlStringCbPrintfA(char *dest, size_t cbDest, const char *fmt, ...)
{
    NTSTATUS status;
    va_list args;
    va_start(args, fmt);
    status = RtlStringCbVPrintfA(dest, cbDest, fmt, args);
    va_end(args);
    return status;
}
#define RtlStringCchPrintfA RtlStringCbPrintfA
static inline NTSTATUS RtlStringCbCopyA(char *dest, size_t cbDest, const char *src)
{
    return RtlStringCbPrintfA(dest, cbDest, "%s", src);
}
#define RtlStringCchCopyA RtlStringCbCopyA
static inline NTSTATUS RtlStringCbLengthA(const char *s, size_t cbMax, size_t *length)
{
    size_t n = strnlen(s, cbMax);
    if (n == cbMax) {
        return STATUS_INVALID_PARAMETER;
    }
    if (length != NULL) {
        *length = n;
    }
    return STATUS_SUCCESS;
}
#endif
