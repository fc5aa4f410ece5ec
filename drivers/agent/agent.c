/*
 * agent.c - harness-agent.exe: run one scenario's step plan inside a Windows guest.
 *
 *   harness-agent.exe --plan PLAN.json --results RESULTS.json
 *                     [--events EVENTS.jsonl] [--dump-tlg DUMP.jsonl]
 *
 * The host compiles a scenario into a plan (harness/agent/plan.py): groups of
 * steps, each group run in order; the steps of a concurrent group start
 * together on their own threads after their delay_ms. Every BFE call is
 * logged after it returns, with the status it got, as a TraceLogging event of
 * the agent's provider (tlg.c), so the agent's events and the driver's land in
 * one ETW session on one clock. The results file is written when the plan is
 * done (to a temporary name, then renamed: the harness polls for it), with
 * every step's outcome or status and a detail line naming what failed.
 * Exit 0: the plan ran (steps may have failed); 2: bad usage or plan.
 */
#include "agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlg.h"

json_doc g_plan;
static agent_entry g_entries[AGENT_MAX_STEPS];
static int g_entry_count;
static agent_result g_results[AGENT_MAX_STEPS];
static int g_result_count;
static CRITICAL_SECTION g_state_lock;
static LARGE_INTEGER g_start, g_freq;

void agent_lock(void) { EnterCriticalSection(&g_state_lock); }
void agent_unlock(void) { LeaveCriticalSection(&g_state_lock); }

double agent_seconds(void)
{
    LARGE_INTEGER now;
    QueryPerformanceCounter(&now);
    return (double)(now.QuadPart - g_start.QuadPart) / (double)g_freq.QuadPart;
}

void agent_log(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "harness-agent: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
}

uint32_t agent_hresult(DWORD code)
{
    if (code == 0 || (code & 0x80000000u))
        return (uint32_t)code;
    return 0x80070000u | (code & 0xFFFFu);
}

void step_fail(agent_step *s, uint32_t status, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(s->result->detail, AGENT_DETAIL, "step %s (%s): ", s->name, s->kind);
    va_start(ap, fmt);
    if (n > 0 && n < AGENT_DETAIL)
        vsnprintf(s->result->detail + n, (size_t)(AGENT_DETAIL - n), fmt, ap);
    va_end(ap);
    if (status) {
        s->result->has_status = 1;
        s->result->status = status;
    }
    agent_log("%s", s->result->detail);
}

agent_entry *agent_entry_new(const char *name, entry_kind kind)
{
    agent_entry *e = NULL;
    agent_lock();
    if (g_entry_count < AGENT_MAX_STEPS) {
        e = &g_entries[g_entry_count++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
        e->kind = kind;
        e->sock = e->peer = INVALID_SOCKET;
    }
    agent_unlock();
    return e;
}

agent_entry *agent_entry_find(const char *name, entry_kind kind)
{
    int i;
    agent_entry *found = NULL;
    if (!name)
        return NULL;
    agent_lock();
    for (i = g_entry_count - 1; i >= 0 && !found; i--)
        if (strcmp(g_entries[i].name, name) == 0 &&
            (kind == ENTRY_NONE || g_entries[i].kind == kind))
            found = &g_entries[i];
    agent_unlock();
    return found;
}

int agent_parse_guid(const char *t, GUID *g)
{
    unsigned long d1;
    unsigned int d2, d3, b[8];
    int i;
    if (!t)
        return -1;
    if (*t == '{')
        t++;
    if (sscanf(t, "%8lx-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &d1, &d2, &d3, &b[0], &b[1], &b[2],
               &b[3], &b[4], &b[5], &b[6], &b[7]) != 11)
        return -1;
    g->Data1 = d1;
    g->Data2 = (unsigned short)d2;
    g->Data3 = (unsigned short)d3;
    for (i = 0; i < 8; i++)
        g->Data4[i] = (unsigned char)b[i];
    return 0;
}

static int run_step(agent_step *s)
{
    if (s->delay_ms > 0)
        Sleep((DWORD)s->delay_ms);
    if (strcmp(s->kind, "wait") == 0) {
        double seconds = json_num(&g_plan, s->args, "seconds", 0);
        if (seconds > 0)
            Sleep((DWORD)(seconds * 1000.0));
        return 0;
    }
    if (net_step(s) == 0 || bfe_step(s) == 0 || probe_step(s) == 0)
        return 0;
    step_fail(s, 0x80004001u /* E_NOTIMPL */, "the agent has no step of this kind");
    return -1;
}

static DWORD WINAPI step_thread(LPVOID arg)
{
    run_step((agent_step *)arg);
    return 0;
}

static void json_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int write_results(const char *path, const char *error)
{
    char tmp[MAX_PATH];
    FILE *f;
    int i;
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    if (!(f = fopen(tmp, "wb")))
        return -1;
    fprintf(f, "{\"agent\": 1, \"etw_register_status\": \"0x%08lX\", \"steps\": {",
            (unsigned long)tlg_register_status());
    for (i = 0; i < g_result_count; i++) {
        agent_result *r = &g_results[i];
        fprintf(f, "%s\n ", i ? "," : "");
        json_escape(f, r->name);
        fprintf(f, ": {\"outcome\": ");
        if (r->outcome) json_escape(f, r->outcome); else fprintf(f, "null");
        if (r->has_status)
            fprintf(f, ", \"status\": \"0x%08lX\"", (unsigned long)r->status);
        else
            fprintf(f, ", \"status\": null");
        fprintf(f, ", \"detail\": ");
        json_escape(f, r->detail);
        fprintf(f, "}");
    }
    fprintf(f, "},\n \"error\": ");
    if (error) json_escape(f, error); else fprintf(f, "null");
    fprintf(f, ", \"done\": true}\n");
    fclose(f);
    return MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (16L << 20)) {
        fclose(f);
        return NULL;
    }
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: harness-agent.exe --plan PLAN.json --results RESULTS.json "
                    "[--events EVENTS.jsonl] [--dump-tlg DUMP.jsonl]\n");
    return 2;
}

/* Run every group of the plan; a plan error is returned as text (NULL: ran). */
static const char *run_plan(char *error, size_t error_size)
{
    const json_node *root = json_root(&g_plan), *groups, *probe;
    static agent_step steps[AGENT_MAX_STEPS];
    int gi, nsteps = 0;
    if (!root || root->type != J_OBJECT || json_num(&g_plan, root, "plan", 0) != 1)
        return "the plan: expected an object with \"plan\": 1";
    groups = json_get(&g_plan, root, "groups");
    if (!groups || groups->type != J_ARRAY)
        return "the plan: expected \"groups\", an array";
    probe = json_get(&g_plan, root, "probe");
    if (probe && probe->type == J_OBJECT) {
        agent_result *r = &g_results[g_result_count++];
        snprintf(r->name, sizeof r->name, "(probe configuration)");
        probe_configure(probe, r);
    }
    for (gi = groups->first_child; gi >= 0; gi = g_plan.nodes[gi].next) {
        const json_node *group = &g_plan.nodes[gi], *list = json_get(&g_plan, group, "steps");
        HANDLE threads[AGENT_MAX_GROUP];
        int first = nsteps, si, nthreads = 0, concurrent;
        if (!list || list->type != J_ARRAY || list->count < 1 || list->count > AGENT_MAX_GROUP) {
            snprintf(error, error_size, "the plan: groups[%d]: expected 1..%d steps", gi,
                     AGENT_MAX_GROUP);
            return error;
        }
        concurrent = json_str(&g_plan, group, "concurrent", NULL) != NULL;
        for (si = list->first_child; si >= 0; si = g_plan.nodes[si].next) {
            const json_node *node = &g_plan.nodes[si];
            agent_step *s;
            if (nsteps >= AGENT_MAX_STEPS - 1 || g_result_count >= AGENT_MAX_STEPS) {
                snprintf(error, error_size, "the plan: more than %d steps", AGENT_MAX_STEPS - 1);
                return error;
            }
            s = &steps[nsteps++];
            s->node = node;
            s->args = json_get(&g_plan, node, "args");
            s->name = json_str(&g_plan, node, "name", NULL);
            s->kind = json_str(&g_plan, node, "do", NULL);
            s->delay_ms = json_num(&g_plan, node, "delay_ms", 0);
            if (!s->name || !s->kind || !s->args || s->args->type != J_OBJECT) {
                snprintf(error, error_size, "the plan: a step without \"name\", \"do\" or "
                         "\"args\" (step %d)", nsteps);
                return error;
            }
            s->result = &g_results[g_result_count++];
            snprintf(s->result->name, sizeof s->result->name, "%s", s->name);
        }
        if (!concurrent) {
            for (si = first; si < nsteps; si++)
                run_step(&steps[si]);
            continue;
        }
        for (si = first; si < nsteps; si++) {
            threads[nthreads] = CreateThread(NULL, 0, step_thread, &steps[si], 0, NULL);
            if (!threads[nthreads])
                run_step(&steps[si]);
            else
                nthreads++;
        }
        if (nthreads)
            WaitForMultipleObjects((DWORD)nthreads, threads, TRUE, INFINITE);
        for (si = 0; si < nthreads; si++)
            CloseHandle(threads[si]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *plan_path = NULL, *results_path = NULL, *events_path = NULL, *dump_path = NULL;
    const char *error;
    char error_text[256];
    char *text;
    size_t len = 0;
    int i;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--plan") == 0) plan_path = argv[i + 1];
        else if (strcmp(argv[i], "--results") == 0) results_path = argv[i + 1];
        else if (strcmp(argv[i], "--events") == 0) events_path = argv[i + 1];
        else if (strcmp(argv[i], "--dump-tlg") == 0) dump_path = argv[i + 1];
        else return usage();
    }
    if (i != argc || !plan_path || !results_path)
        return usage();
    InitializeCriticalSection(&g_state_lock);
    QueryPerformanceFrequency(&g_freq);
    QueryPerformanceCounter(&g_start);
    if (tlg_open(events_path, dump_path) != 0) {
        agent_log("cannot open the --events or --dump-tlg file");
        return 2;
    }
    if (net_init() != 0) {
        agent_log("WSAStartup failed");
        return 2;
    }
    text = read_file(plan_path, &len);
    if (!text) {
        agent_log("cannot read the plan %s (missing, or larger than 16 MB)", plan_path);
        return 2;
    }
    if (json_parse(&g_plan, text, len) != 0) {
        snprintf(error_text, sizeof error_text, "%s: %s", plan_path, g_plan.error);
        agent_log("%s", error_text);
        write_results(results_path, error_text);
        return 2;
    }
    error = run_plan(error_text, sizeof error_text);
    bfe_close_all();
    tlg_close();
    if (write_results(results_path, error) != 0) {
        agent_log("cannot write the results %s", results_path);
        return 2;
    }
    if (error)
        agent_log("%s", error);
    WSACleanup();
    return error ? 2 : 0;
}
