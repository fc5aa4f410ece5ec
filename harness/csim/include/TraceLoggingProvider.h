/*
 * TraceLoggingProvider.h - TraceLogging for the host build. The macros keep the
 * documented shape (TRACELOGGING_DEFINE_PROVIDER, TraceLoggingWrite with field
 * macros such as TraceLoggingUInt64(value, "name")); on the host each event is
 * handed to the harness as a name and a typed field array, which it decodes
 * with the same mapping it applies to ETW captures from a Windows guest.
 * Clean-room for callout-harness (harness/csim).
 */
#ifndef CSIM_TRACELOGGINGPROVIDER_H
#define CSIM_TRACELOGGINGPROVIDER_H
#include <wdm.h>

typedef struct _CSIM_TLG_PROVIDER {
    const char *name;
    GUID guid;
    LONG registered;
} CSIM_TLG_PROVIDER;
typedef const CSIM_TLG_PROVIDER *TraceLoggingHProvider;

enum {
    CSIM_TLG_META = 0, CSIM_TLG_UINT32, CSIM_TLG_UINT64, CSIM_TLG_INT32, CSIM_TLG_INT64,
    CSIM_TLG_HEXUINT32, CSIM_TLG_HEXUINT64, CSIM_TLG_BOOLEAN, CSIM_TLG_STRING,
    CSIM_TLG_WSTRING, CSIM_TLG_GUID, CSIM_TLG_POINTER
};
typedef struct _CSIM_TLG_FIELD {
    UINT32 type;
    const char *name;
    union { UINT64 u; INT64 i; const char *s; const wchar_t *w; GUID g; } v;
} CSIM_TLG_FIELD;

#define CSIM_TLG_GUID(l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
    { l, w1, w2, { b1, b2, b3, b4, b5, b6, b7, b8 } }
#define TRACELOGGING_DECLARE_PROVIDER(handle) extern TraceLoggingHProvider const handle
#define TRACELOGGING_DEFINE_PROVIDER(handle, providerName, providerId, ...) \
    static CSIM_TLG_PROVIDER handle##_CsimStorage = { providerName, CSIM_TLG_GUID providerId, 0 }; \
    TraceLoggingHProvider const handle = &handle##_CsimStorage

NTSTATUS TraceLoggingRegister(TraceLoggingHProvider provider);
void TraceLoggingUnregister(TraceLoggingHProvider provider);
void csim_tlg_write(TraceLoggingHProvider provider, const char *eventName,
                    const CSIM_TLG_FIELD *fields, UINT32 count);

#define CSIM_TLG_F(kind, member, value, fieldName) \
    ((CSIM_TLG_FIELD){ .type = (kind), .name = (fieldName), .v = { .member = (value) } })
#define TraceLoggingUInt32(value, name, ...) CSIM_TLG_F(CSIM_TLG_UINT32, u, (UINT64)(UINT32)(value), name)
#define TraceLoggingUInt64(value, name, ...) CSIM_TLG_F(CSIM_TLG_UINT64, u, (UINT64)(value), name)
#define TraceLoggingInt32(value, name, ...) CSIM_TLG_F(CSIM_TLG_INT32, i, (INT64)(INT32)(value), name)
#define TraceLoggingInt64(value, name, ...) CSIM_TLG_F(CSIM_TLG_INT64, i, (INT64)(value), name)
#define TraceLoggingHexUInt32(value, name, ...) CSIM_TLG_F(CSIM_TLG_HEXUINT32, u, (UINT64)(UINT32)(value), name)
#define TraceLoggingHexUInt64(value, name, ...) CSIM_TLG_F(CSIM_TLG_HEXUINT64, u, (UINT64)(value), name)
#define TraceLoggingBoolean(value, name, ...) CSIM_TLG_F(CSIM_TLG_BOOLEAN, u, (UINT64)((value) ? 1 : 0), name)
#define TraceLoggingString(value, name, ...) CSIM_TLG_F(CSIM_TLG_STRING, s, (value), name)
#define TraceLoggingWideString(value, name, ...) CSIM_TLG_F(CSIM_TLG_WSTRING, w, (value), name)
#define TraceLoggingGuid(value, name, ...) CSIM_TLG_F(CSIM_TLG_GUID, g, (value), name)
#define TraceLoggingPointer(value, name, ...) CSIM_TLG_F(CSIM_TLG_POINTER, u, (UINT64)(ULONG_PTR)(value), name)
#define TraceLoggingLevel(level) CSIM_TLG_F(CSIM_TLG_META, u, (UINT64)(level), "level")
#define TraceLoggingKeyword(keyword) CSIM_TLG_F(CSIM_TLG_META, u, (UINT64)(keyword), "keyword")
#define TraceLoggingOpcode(opcode) CSIM_TLG_F(CSIM_TLG_META, u, (UINT64)(opcode), "opcode")

#define TraceLoggingWrite(provider, eventName, ...) \
    do { \
        const CSIM_TLG_FIELD csimFields_[] = { __VA_ARGS__ }; \
        csim_tlg_write((provider), (eventName), csimFields_, \
                       (UINT32)(sizeof(csimFields_) / sizeof(csimFields_[0]))); \
    } while (0)

#define WINEVENT_LEVEL_LOG_ALWAYS 0
#define WINEVENT_LEVEL_CRITICAL 1
#define WINEVENT_LEVEL_ERROR 2
#define WINEVENT_LEVEL_WARNING 3
#define WINEVENT_LEVEL_INFO 4
#define WINEVENT_LEVEL_VERBOSE 5
#endif
