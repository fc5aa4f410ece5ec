/*
 * bfe.c - the BFE steps, with fwpuclnt: sessions, transactions, objects, filters.
 *
 * Every call's event is logged after the call returned, with the status it
 * got (a Win32 error as its HRESULT, so a failure never reads as success),
 * in the trace format's names: session_open, session_close, txn_begin (with
 * waited_ms, the time the call took: the wait for the BFE lock), txn_commit,
 * txn_abort, object_add, object_delete. A step without "session" uses one
 * implicit session, opened (and logged) on first use.
 */
#include "agent.h"

#include <fwpmu.h>
#include <stdio.h>
#include <string.h>

#include "fwp_flags.h"
#include "tlg.h"

#define IMPLICIT_SESSION "(implicit)"

static wchar_t g_display[] = L"callout-harness";
static wchar_t g_display_desc[] = L"added by the callout-harness step agent";

static uint64_t handle_value(HANDLE h)
{
    return (uint64_t)(uintptr_t)h;
}

static agent_entry *open_session(agent_step *s, const char *name, int dynamic,
                                 uint32_t wait_ms, uint32_t *status_out)
{
    FWPM_SESSION0 session;
    HANDLE engine = NULL;
    DWORD rc;
    uint32_t status;
    tlg_event ev;
    agent_entry *e;
    memset(&session, 0, sizeof session);
    session.displayData.name = g_display;
    session.flags = dynamic ? FWPM_SESSION_FLAG_DYNAMIC : 0;
    session.txnWaitTimeoutInMSec = wait_ms;
    rc = FwpmEngineOpen0(NULL, RPC_C_AUTHN_DEFAULT, NULL, &session, &engine);
    status = agent_hresult(rc);
    tlg_begin(&ev, "session_open");
    tlg_hex64(&ev, "session", handle_value(rc == 0 ? engine : NULL));
    tlg_bool(&ev, "dynamic", dynamic);
    tlg_u32(&ev, "txn_wait_ms", wait_ms);
    tlg_bool(&ev, "kernel", 0);
    tlg_status(&ev, "status", status);
    tlg_write(&ev);
    *status_out = status;
    if (rc != 0) {
        if (s)
            step_fail(s, status, "FwpmEngineOpen0 failed with 0x%08lX%s", (unsigned long)status,
                      rc == RPC_S_CANNOT_SUPPORT ? " (RPC_S_CANNOT_SUPPORT: no BFE here)" : "");
        return NULL;
    }
    if (!(e = agent_entry_new(name, ENTRY_SESSION))) {
        FwpmEngineClose0(engine);
        return NULL;
    }
    e->engine = engine;
    return e;
}

/* The session a step names, or the implicit one. */
static agent_entry *session_of(agent_step *s)
{
    const char *ref = json_str(&g_plan, s->args, "session", NULL);
    agent_entry *e;
    uint32_t status = 0;
    if (ref) {
        e = agent_entry_find(ref, ENTRY_SESSION);
        if (!e || !e->engine)
            step_fail(s, 0x80070006u /* E_HANDLE */, "session %s is not open", ref);
        return e && e->engine ? e : NULL;
    }
    agent_lock();
    e = agent_entry_find(IMPLICIT_SESSION, ENTRY_SESSION);
    if (!e)
        e = open_session(s, IMPLICIT_SESSION, 0, 0, &status);
    agent_unlock();
    return e;
}

static void record(agent_step *s, const char *call, DWORD rc)
{
    uint32_t status = agent_hresult(rc);
    s->result->has_status = 1;
    s->result->status = status;
    if (rc != 0)
        step_fail(s, status, "%s failed with 0x%08lX%s", call, (unsigned long)status,
                  rc == RPC_S_CANNOT_SUPPORT ? " (RPC_S_CANNOT_SUPPORT: no BFE here)" : "");
}

static void session_open_step(agent_step *s)
{
    uint32_t status = 0;
    if (json_bool(&g_plan, s->args, "kernel", 0)) {
        s->result->has_status = 1;
        step_fail(s, 0x80070032u /* ERROR_NOT_SUPPORTED */,
                  "a kernel-mode session is the driver's to open, not the agent's");
        return;
    }
    open_session(s, s->name, json_bool(&g_plan, s->args, "dynamic", 0),
                 (uint32_t)json_num(&g_plan, s->args, "txn_wait_ms", 0), &status);
    s->result->has_status = 1;
    s->result->status = status;
}

static void log_session(const char *name, uint64_t session, uint32_t status, int with_status)
{
    tlg_event ev;
    tlg_begin(&ev, name);
    tlg_hex64(&ev, "session", session);
    if (with_status)
        tlg_status(&ev, "status", status);
    tlg_write(&ev);
}

static void session_close_step(agent_step *s)
{
    const char *ref = json_str(&g_plan, s->args, "session", NULL);
    agent_entry *e = agent_entry_find(ref, ENTRY_SESSION);
    DWORD rc;
    if (!e || !e->engine)
        return step_fail(s, 0x80070006u, "session %s is not open", ref ? ref : "?");
    rc = FwpmEngineClose0(e->engine);
    log_session("session_close", handle_value(e->engine), 0, 0);
    e->engine = NULL;
    record(s, "FwpmEngineClose0", rc);
}

static void txn_step(agent_step *s, const char *what)
{
    agent_entry *e = session_of(s);
    LARGE_INTEGER t0, t1, freq;
    DWORD rc;
    uint32_t status;
    tlg_event ev;
    int read_only = json_bool(&g_plan, s->args, "read_only", 0);
    if (!e)
        return;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t0);
    if (strcmp(what, "txn_begin") == 0)
        rc = FwpmTransactionBegin0(e->engine, read_only ? FWPM_TXN_READ_ONLY : 0);
    else if (strcmp(what, "txn_commit") == 0)
        rc = FwpmTransactionCommit0(e->engine);
    else
        rc = FwpmTransactionAbort0(e->engine);
    QueryPerformanceCounter(&t1);
    status = agent_hresult(rc);
    tlg_begin(&ev, what);
    tlg_hex64(&ev, "session", handle_value(e->engine));
    if (strcmp(what, "txn_begin") == 0) {
        tlg_bool(&ev, "read_only", read_only);
        tlg_double(&ev, "waited_ms",
                   (double)(t1.QuadPart - t0.QuadPart) * 1000.0 / (double)freq.QuadPart);
    }
    tlg_status(&ev, "status", status);
    tlg_write(&ev);
    record(s, what, rc);
}

static int guid_arg(agent_step *s, const char *key, GUID *out)
{
    const char *text = json_str(&g_plan, s->args, key, NULL);
    return text && agent_parse_guid(text, out) == 0 ? 0 : -1;
}

static void log_object(const char *event, agent_step *s, agent_entry *e, const char *type,
                       const char *key, uint32_t status)
{
    static const char *refs[] = {"lifetime", "provider", "layer", "sublayer", "callout",
                                 "context", "action"};
    tlg_event ev;
    size_t i;
    tlg_begin(&ev, event);
    tlg_hex64(&ev, "session", handle_value(e->engine));
    tlg_str(&ev, "type", type);
    tlg_str(&ev, "key", key);
    if (strcmp(event, "object_add") == 0) {
        for (i = 0; i < sizeof refs / sizeof refs[0]; i++) {
            const char *v = json_str(&g_plan, s->args, refs[i], NULL);
            if (v)
                tlg_str(&ev, refs[i], v);
        }
        if (json_get(&g_plan, s->args, "weight") &&
            json_get(&g_plan, s->args, "weight")->type == J_NUMBER)
            tlg_u32(&ev, "weight", (uint32_t)json_num(&g_plan, s->args, "weight", 0));
    }
    tlg_status(&ev, "status", status);
    tlg_write(&ev);
}

static DWORD add_filter_object(agent_step *s, agent_entry *e, const GUID *key)
{
    FWPM_FILTER0 f;
    FWPM_FILTER_CONDITION0 cond[2];
    GUID provider, context, sublayer;
    UINT64 weight64;
    UINT32 n = 0;
    UINT64 id = 0;
    const char *lifetime = json_str(&g_plan, s->args, "lifetime", "static");
    double weight = json_num(&g_plan, s->args, "weight", -1);
    double port = json_num(&g_plan, s->args, "remote_port", -1);
    double proto = json_num(&g_plan, s->args, "protocol_number", -1);
    memset(&f, 0, sizeof f);
    memset(cond, 0, sizeof cond);
    f.filterKey = *key;
    f.displayData.name = g_display;
    f.displayData.description = g_display_desc;
    if (guid_arg(s, "layer_guid", &f.layerKey) != 0)
        return ERROR_INVALID_PARAMETER;
    if (guid_arg(s, "sublayer_guid", &sublayer) == 0)
        f.subLayerKey = sublayer;
    if (guid_arg(s, "provider_guid", &provider) == 0)
        f.providerKey = &provider;
    if (guid_arg(s, "context_guid", &context) == 0) {
        f.providerContextKey = context;
        f.flags |= FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT;
    }
    if (strcmp(lifetime, "persistent") == 0)
        f.flags |= FWPM_FILTER_FLAG_PERSISTENT;
    else if (strcmp(lifetime, "boottime") == 0)
        f.flags |= FWPM_FILTER_FLAG_BOOTTIME;
    if (json_bool(&g_plan, s->args, "hard", 0))
        f.flags |= FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT;
    f.action.type = (FWP_ACTION_TYPE)json_num(&g_plan, s->args, "action_type", FWP_ACTION_BLOCK);
    if (f.action.type & FWP_ACTION_FLAG_CALLOUT)
        guid_arg(s, "callout_guid", &f.action.calloutKey);
    if (weight >= 0 && weight <= 15) {
        f.weight.type = FWP_UINT8;
        f.weight.uint8 = (UINT8)weight;
    } else if (weight > 15) {
        weight64 = (UINT64)weight;
        f.weight.type = FWP_UINT64;
        f.weight.uint64 = &weight64;
    }
    if (port >= 0) {
        cond[n].fieldKey = AGENT_CONDITION_IP_REMOTE_PORT;
        cond[n].matchType = FWP_MATCH_EQUAL;
        cond[n].conditionValue.type = FWP_UINT16;
        cond[n].conditionValue.uint16 = (UINT16)port;
        n++;
    }
    if (proto >= 0) {
        cond[n].fieldKey = AGENT_CONDITION_IP_PROTOCOL;
        cond[n].matchType = FWP_MATCH_EQUAL;
        cond[n].conditionValue.type = FWP_UINT8;
        cond[n].conditionValue.uint8 = (UINT8)proto;
        n++;
    }
    f.numFilterConditions = n;
    f.filterCondition = n ? cond : NULL;
    return FwpmFilterAdd0(e->engine, &f, NULL, &id);
}

static void object_add_step(agent_step *s)
{
    agent_entry *e = session_of(s);
    const char *type = json_str(&g_plan, s->args, "type", "");
    const char *key = json_str(&g_plan, s->args, "key", "");
    const char *lifetime = json_str(&g_plan, s->args, "lifetime", "static");
    int persistent = strcmp(lifetime, "persistent") == 0;
    GUID guid, provider, layer;
    GUID *provider_ptr = NULL;
    DWORD rc;
    UINT64 id = 0;
    if (!e)
        return;
    if (guid_arg(s, "key_guid", &guid) != 0)
        return step_fail(s, 0x80070057u, "the plan gives no key_guid");
    if (guid_arg(s, "provider_guid", &provider) == 0)
        provider_ptr = &provider;
    if (strcmp(type, "provider") == 0) {
        FWPM_PROVIDER0 p;
        memset(&p, 0, sizeof p);
        p.providerKey = guid;
        p.displayData.name = g_display;
        p.flags = persistent ? FWPM_PROVIDER_FLAG_PERSISTENT : 0;
        rc = FwpmProviderAdd0(e->engine, &p, NULL);
    } else if (strcmp(type, "sublayer") == 0) {
        FWPM_SUBLAYER0 l;
        memset(&l, 0, sizeof l);
        l.subLayerKey = guid;
        l.displayData.name = g_display;
        l.flags = persistent ? FWPM_SUBLAYER_FLAG_PERSISTENT : 0;
        l.providerKey = provider_ptr;
        l.weight = (UINT16)json_num(&g_plan, s->args, "weight", 0);
        rc = FwpmSubLayerAdd0(e->engine, &l, NULL);
    } else if (strcmp(type, "callout") == 0) {
        FWPM_CALLOUT0 c;
        UINT32 cid = 0;
        memset(&c, 0, sizeof c);
        c.calloutKey = guid;
        c.displayData.name = g_display;
        c.flags = persistent ? FWPM_CALLOUT_FLAG_PERSISTENT : 0;
        c.providerKey = provider_ptr;
        if (guid_arg(s, "layer_guid", &layer) == 0)
            c.applicableLayer = layer;
        rc = FwpmCalloutAdd0(e->engine, &c, NULL, &cid);
    } else if (strcmp(type, "provider_context") == 0) {
        FWPM_PROVIDER_CONTEXT0 pc;
        static UINT8 blob_bytes[4] = {0x63, 0x68, 0x31, 0x00};
        FWP_BYTE_BLOB blob = {sizeof blob_bytes, blob_bytes};
        memset(&pc, 0, sizeof pc);
        pc.providerContextKey = guid;
        pc.displayData.name = g_display;
        pc.flags = persistent ? FWPM_PROVIDER_CONTEXT_FLAG_PERSISTENT : 0;
        pc.providerKey = provider_ptr;
        pc.type = FWPM_GENERAL_CONTEXT;
        pc.dataBuffer = &blob;
        rc = FwpmProviderContextAdd0(e->engine, &pc, NULL, &id);
    } else if (strcmp(type, "filter") == 0) {
        rc = add_filter_object(s, e, &guid);
    } else {
        return step_fail(s, 0x80070057u, "unknown object type %s", type);
    }
    log_object("object_add", s, e, type, key, agent_hresult(rc));
    record(s, type, rc);
}

static DWORD delete_by_key(HANDLE engine, const char *type, const GUID *key)
{
    if (strcmp(type, "provider") == 0) return FwpmProviderDeleteByKey0(engine, key);
    if (strcmp(type, "sublayer") == 0) return FwpmSubLayerDeleteByKey0(engine, key);
    if (strcmp(type, "callout") == 0) return FwpmCalloutDeleteByKey0(engine, key);
    if (strcmp(type, "provider_context") == 0) return FwpmProviderContextDeleteByKey0(engine, key);
    return FwpmFilterDeleteByKey0(engine, key);
}

static void object_delete_step(agent_step *s)
{
    agent_entry *e = session_of(s);
    const char *type = json_str(&g_plan, s->args, "type", "");
    GUID guid;
    DWORD rc;
    if (!e)
        return;
    if (guid_arg(s, "key_guid", &guid) != 0)
        return step_fail(s, 0x80070057u, "the plan gives no key_guid");
    rc = delete_by_key(e->engine, type, &guid);
    log_object("object_delete", s, e, type, json_str(&g_plan, s->args, "key", ""),
               agent_hresult(rc));
    record(s, type, rc);
}

static void add_filter_step(agent_step *s)
{
    agent_entry *e = session_of(s), *f;
    GUID key;
    DWORD rc;
    if (!e)
        return;
    if (guid_arg(s, "key_guid", &key) != 0)
        return step_fail(s, 0x80070057u, "the plan gives no key_guid");
    rc = add_filter_object(s, e, &key);
    log_object("object_add", s, e, "filter", json_str(&g_plan, s->args, "key", s->name),
               agent_hresult(rc));
    record(s, "FwpmFilterAdd0", rc);
    if (rc == 0 && (f = agent_entry_new(s->name, ENTRY_FILTER))) {
        f->filter_key = key;
        snprintf(f->session, sizeof f->session, "%s", e->name);
    }
}

static void delete_filter_step(agent_step *s)
{
    const char *ref = json_str(&g_plan, s->args, "filter", NULL);
    agent_entry *f = agent_entry_find(ref, ENTRY_FILTER), *e = session_of(s);
    DWORD rc;
    if (!e)
        return;
    if (!f)
        return step_fail(s, 0x80320003u /* FWP_E_FILTER_NOT_FOUND */,
                         "filter %s was never added", ref ? ref : "?");
    rc = FwpmFilterDeleteByKey0(e->engine, &f->filter_key);
    log_object("object_delete", s, e, "filter", json_str(&g_plan, s->args, "key", ref),
               agent_hresult(rc));
    record(s, "FwpmFilterDeleteByKey0", rc);
}

void bfe_close_all(void)
{
    agent_entry *e;
    while ((e = agent_entry_find(IMPLICIT_SESSION, ENTRY_SESSION)) && e->engine) {
        FwpmEngineClose0(e->engine);
        log_session("session_close", handle_value(e->engine), 0, 0);
        e->engine = NULL;
    }
}

int bfe_step(agent_step *s)
{
    if (strcmp(s->kind, "session_open") == 0) session_open_step(s);
    else if (strcmp(s->kind, "session_close") == 0) session_close_step(s);
    else if (strncmp(s->kind, "txn_", 4) == 0) txn_step(s, s->kind);
    else if (strcmp(s->kind, "object_add") == 0) object_add_step(s);
    else if (strcmp(s->kind, "object_delete") == 0) object_delete_step(s);
    else if (strcmp(s->kind, "add_filter") == 0) add_filter_step(s);
    else if (strcmp(s->kind, "delete_filter") == 0) delete_filter_step(s);
    else return -1;
    return 0;
}
