/*
 * agent.h - the step agent's shared state: the plan, the named handles the
 * steps create, step results, logging and the clock.
 */
#ifndef AGENT_H
#define AGENT_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <stdint.h>

#include "json.h"

#define AGENT_MAX_STEPS 1024
#define AGENT_MAX_GROUP 64      /* WaitForMultipleObjects' limit */
#define AGENT_MAX_PEERS 64
#define AGENT_NAME 64
#define AGENT_DETAIL 256
#define AGENT_IO_TIMEOUT_MS 5000

typedef enum {
    ENTRY_NONE, ENTRY_TCP, ENTRY_LISTEN, ENTRY_UDP, ENTRY_SESSION, ENTRY_FILTER
} entry_kind;

/* What an earlier step left behind, found by the step's name. */
typedef struct agent_entry {
    char name[AGENT_NAME];
    entry_kind kind;
    int family;                      /* AF_INET or AF_INET6 */
    SOCKET sock;                     /* the agent's socket */
    SOCKET peer;                     /* TCP: the in-guest peer's end */
    SOCKET peers[AGENT_MAX_PEERS];   /* UDP: the in-guest peers */
    int peer_count;
    HANDLE engine;                   /* ENTRY_SESSION */
    GUID filter_key;                 /* ENTRY_FILTER */
    char session[AGENT_NAME];        /* ENTRY_FILTER: the session that added it */
} agent_entry;

/* One step's outcome, as the harness reads it back. */
typedef struct agent_result {
    char name[AGENT_NAME];
    const char *outcome;             /* "allowed" / "blocked" / NULL */
    int has_status;
    uint32_t status;
    char detail[AGENT_DETAIL];
} agent_result;

typedef struct agent_step {
    const json_node *node;           /* the step object of the plan */
    const json_node *args;           /* its "args" object */
    const char *name;
    const char *kind;
    double delay_ms;
    agent_result *result;
} agent_step;

extern json_doc g_plan;

/* The shared table of named handles (locked: concurrent steps use it). */
agent_entry *agent_entry_new(const char *name, entry_kind kind);
agent_entry *agent_entry_find(const char *name, entry_kind kind);
void agent_lock(void);
void agent_unlock(void);

void agent_log(const char *fmt, ...);
double agent_seconds(void);
void step_fail(agent_step *s, uint32_t status, const char *fmt, ...);
/* HRESULT_FROM_WIN32 for a Win32 error, so that a failure never reads as success. */
uint32_t agent_hresult(DWORD code);
int agent_parse_guid(const char *text, GUID *out);

/* net.c: tcp_listen, tcp_connect, tcp_accept, udp_send, udp_receive, send, close */
int net_init(void);
int net_step(agent_step *s);
/* bfe.c: session_open/close, txn_begin/commit/abort, object_add/delete,
 * add_filter/delete_filter */
int bfe_step(agent_step *s);
void bfe_close_all(void);
/* probectl.c: callout_register/unregister and the [callout] knobs */
int probe_step(agent_step *s);
int probe_configure(const json_node *config, agent_result *result);

#endif
