/* tlg.c - see tlg.h. */
#include "agent.h"

#include <evntprov.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "tlg.h"

/* The agent's provider: "CalloutHarness.Agent", its id the documented ETW name
 * hash of that name: {25D608EB-8EE4-5DB8-DE6A-770EF87B011A}. */
static const GUID AGENT_PROVIDER = {
    0x25d608eb, 0x8ee4, 0x5db8, {0xde, 0x6a, 0x77, 0x0e, 0xf8, 0x7b, 0x01, 0x1a}};
static const char AGENT_PROVIDER_NAME[] = "CalloutHarness.Agent";

#define EVENT_PROVIDER_SET_TRAITS 2 /* EVENT_INFO_CLASS EventProviderSetTraits */
#define DESCRIPTOR_TYPE_EVENT_METADATA 1
#define DESCRIPTOR_TYPE_PROVIDER_METADATA 2

static REGHANDLE g_handle;
static ULONG g_register_status = 1;
static uint8_t g_traits[64];
static size_t g_traits_len;
static FILE *g_events, *g_dump;
static CRITICAL_SECTION g_lock;

static void hex_line(FILE *f, const char *key, const uint8_t *b, size_t n, int last)
{
    size_t i;
    fprintf(f, "\"%s\": \"", key);
    for (i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
    fprintf(f, "\"%s", last ? "" : ", ");
}

int tlg_open(const char *events_path, const char *dump_path)
{
    size_t name_len = sizeof AGENT_PROVIDER_NAME; /* with its NUL */
    InitializeCriticalSection(&g_lock);
    g_traits_len = 2 + name_len;
    g_traits[0] = (uint8_t)(g_traits_len & 0xFF);
    g_traits[1] = (uint8_t)(g_traits_len >> 8);
    memcpy(g_traits + 2, AGENT_PROVIDER_NAME, name_len);
    g_register_status = EventRegister(&AGENT_PROVIDER, NULL, NULL, &g_handle);
    if (g_register_status == ERROR_SUCCESS)
        EventSetInformation(g_handle, (EVENT_INFO_CLASS)EVENT_PROVIDER_SET_TRAITS, g_traits,
                            (ULONG)g_traits_len);
    if (events_path && !(g_events = fopen(events_path, "wb")))
        return -1;
    if (dump_path) {
        if (!(g_dump = fopen(dump_path, "wb")))
            return -1;
        fprintf(g_dump, "{");
        hex_line(g_dump, "traits", g_traits, g_traits_len, 1);
        fprintf(g_dump, "}\n");
    }
    return 0;
}

void tlg_close(void)
{
    if (g_register_status == ERROR_SUCCESS)
        EventUnregister(g_handle);
    if (g_events)
        fclose(g_events);
    if (g_dump)
        fclose(g_dump);
    g_events = g_dump = NULL;
}

ULONG tlg_register_status(void)
{
    return g_register_status;
}

static void meta_put(tlg_event *ev, const void *p, size_t n)
{
    if (ev->meta_len + n > sizeof ev->meta) {
        ev->overflow = 1;
        return;
    }
    memcpy(ev->meta + ev->meta_len, p, n);
    ev->meta_len += n;
}

static void data_put(tlg_event *ev, const void *p, size_t n)
{
    if (ev->data_len + n > sizeof ev->data) {
        ev->overflow = 1;
        return;
    }
    memcpy(ev->data + ev->data_len, p, n);
    ev->data_len += n;
}

static void json_put(tlg_event *ev, const char *fmt, ...)
{
    va_list ap;
    int n;
    size_t room = sizeof ev->json - ev->json_len;
    va_start(ap, fmt);
    n = vsnprintf(ev->json + ev->json_len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        ev->overflow = 1;
    else
        ev->json_len += (size_t)n;
}

static void json_string(tlg_event *ev, const char *s)
{
    json_put(ev, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            json_put(ev, "\\%c", c);
        else if (c < 0x20)
            json_put(ev, "\\u%04x", c);
        else
            json_put(ev, "%c", c);
    }
    json_put(ev, "\"");
}

static void field(tlg_event *ev, const char *name, uint8_t in_type, uint8_t out_type)
{
    meta_put(ev, name, strlen(name) + 1);
    if (out_type) {
        uint8_t b[2] = {(uint8_t)(in_type | 0x80), out_type};
        meta_put(ev, b, 2);
    } else {
        meta_put(ev, &in_type, 1);
    }
    json_put(ev, ", ");
    json_string(ev, name);
    json_put(ev, ": ");
}

void tlg_begin(tlg_event *ev, const char *name)
{
    uint8_t head[3] = {0, 0, 0}; /* size (patched in tlg_write), tag byte 0 */
    memset(ev, 0, offsetof(tlg_event, json));
    ev->overflow = 0;
    ev->json_len = 0;
    ev->json[0] = 0;
    meta_put(ev, head, 3);
    meta_put(ev, name, strlen(name) + 1);
    json_put(ev, "{\"ev\": ");
    json_string(ev, name);
}

void tlg_str(tlg_event *ev, const char *name, const char *value)
{
    field(ev, name, TLG_IN_ANSISTRING, TLG_OUT_UTF8);
    data_put(ev, value, strlen(value) + 1);
    json_string(ev, value);
}

void tlg_u32(tlg_event *ev, const char *name, uint32_t value)
{
    field(ev, name, TLG_IN_UINT32, 0);
    data_put(ev, &value, 4);
    json_put(ev, "%lu", (unsigned long)value);
}

void tlg_double(tlg_event *ev, const char *name, double value)
{
    field(ev, name, TLG_IN_DOUBLE, 0);
    data_put(ev, &value, 8);
    json_put(ev, "%.17g", value);
}

void tlg_bool(tlg_event *ev, const char *name, int value)
{
    int32_t v = value ? 1 : 0;
    field(ev, name, TLG_IN_BOOL32, 0);
    data_put(ev, &v, 4);
    json_put(ev, v ? "true" : "false");
}

void tlg_hex64(tlg_event *ev, const char *name, uint64_t value)
{
    field(ev, name, TLG_IN_HEXINT64, 0);
    data_put(ev, &value, 8);
    json_put(ev, "\"0x%llx\"", (unsigned long long)value);
}

void tlg_status(tlg_event *ev, const char *name, uint32_t value)
{
    field(ev, name, TLG_IN_HEXINT32, 0);
    data_put(ev, &value, 4);
    json_put(ev, "\"0x%08lX\"", (unsigned long)value);
}

void tlg_guid(tlg_event *ev, const char *name, const GUID *g)
{
    field(ev, name, TLG_IN_GUID, 0);
    data_put(ev, g, 16);
    json_put(ev, "\"{%08lX-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}\"",
             (unsigned long)g->Data1, g->Data2, g->Data3, g->Data4[0], g->Data4[1],
             g->Data4[2], g->Data4[3], g->Data4[4], g->Data4[5], g->Data4[6], g->Data4[7]);
}

void tlg_write(tlg_event *ev)
{
    EVENT_DESCRIPTOR desc;
    EVENT_DATA_DESCRIPTOR dd[3];
    if (ev->overflow) {
        agent_log("event too large for the agent's buffers: dropped");
        return;
    }
    ev->meta[0] = (uint8_t)(ev->meta_len & 0xFF);
    ev->meta[1] = (uint8_t)(ev->meta_len >> 8);
    json_put(ev, ", \"t\": %.7f}\n", agent_seconds());
    EnterCriticalSection(&g_lock);
    if (g_register_status == ERROR_SUCCESS) {
        memset(&desc, 0, sizeof desc);
        desc.Channel = 11; /* the TraceLogging channel */
        desc.Level = 5;
        desc.Keyword = 1;
        EventDataDescCreate(&dd[0], g_traits, (ULONG)g_traits_len);
        dd[0].Reserved = DESCRIPTOR_TYPE_PROVIDER_METADATA;
        EventDataDescCreate(&dd[1], ev->meta, (ULONG)ev->meta_len);
        dd[1].Reserved = DESCRIPTOR_TYPE_EVENT_METADATA;
        EventDataDescCreate(&dd[2], ev->data, (ULONG)ev->data_len);
        EventWriteTransfer(g_handle, &desc, NULL, NULL, 3, dd);
    }
    if (g_events) {
        fwrite(ev->json, 1, ev->json_len, g_events);
        fflush(g_events);
    }
    if (g_dump) {
        fprintf(g_dump, "{");
        hex_line(g_dump, "meta", ev->meta, ev->meta_len, 0);
        hex_line(g_dump, "data", ev->data, ev->data_len, 1);
        fprintf(g_dump, "}\n");
        fflush(g_dump);
    }
    LeaveCriticalSection(&g_lock);
}
