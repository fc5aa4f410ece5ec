/*
 * tlg.h - the agent's small TraceLogging encoder (mingw-w64 has no
 * TraceLoggingProvider.h), written from the documented format:
 *
 *   provider traits  UINT16 size, provider name (NUL-terminated UTF-8)
 *   event metadata   UINT16 size, one tag byte (0), event name, then per field:
 *                    name, UINT8 InType [| 0x80 and UINT8 OutType]
 *   event data       the field values, in order
 *
 * EventRegister, EventSetInformation(EventProviderSetTraits) with the traits,
 * and EventWriteTransfer with three data descriptors: traits (type 2),
 * metadata (type 1), data (type 0). The same event also goes, when asked, to
 * a JSON-lines file (--events) and as hex blobs to a dump file (--dump-tlg),
 * so it can be checked where ETW is a stub.
 */
#ifndef AGENT_TLG_H
#define AGENT_TLG_H

#include <stdint.h>
#include <stdio.h>
#include <winsock2.h>
#include <windows.h>

#define TLG_MAX_META 1024
#define TLG_MAX_DATA 2048
#define TLG_MAX_JSON 4096

/* InType values used by the agent. */
#define TLG_IN_ANSISTRING 2
#define TLG_IN_UINT32 8
#define TLG_IN_DOUBLE 12
#define TLG_IN_BOOL32 13
#define TLG_IN_GUID 15
#define TLG_IN_HEXINT32 20
#define TLG_IN_HEXINT64 21
#define TLG_OUT_UTF8 35
#define TLG_OUT_NTSTATUS 14

typedef struct tlg_event {
    uint8_t meta[TLG_MAX_META];
    size_t meta_len;
    uint8_t data[TLG_MAX_DATA];
    size_t data_len;
    char json[TLG_MAX_JSON];
    size_t json_len;
    int overflow;
} tlg_event;

/* Open the provider and the optional side files; 0 on success. */
int tlg_open(const char *events_path, const char *dump_path);
void tlg_close(void);
/* The status EventRegister got (0: registered; Wine's stubs may differ). */
ULONG tlg_register_status(void);

void tlg_begin(tlg_event *ev, const char *name);
void tlg_str(tlg_event *ev, const char *name, const char *value);
void tlg_u32(tlg_event *ev, const char *name, uint32_t value);
void tlg_double(tlg_event *ev, const char *name, double value);
void tlg_bool(tlg_event *ev, const char *name, int value);
void tlg_hex64(tlg_event *ev, const char *name, uint64_t value);
void tlg_status(tlg_event *ev, const char *name, uint32_t value);
void tlg_guid(tlg_event *ev, const char *name, const GUID *value);
/* Write the event to ETW and the side files (thread-safe). */
void tlg_write(tlg_event *ev);

#endif
