/*
 * net.c - the socket steps, with Winsock. The peers live in the guest too (on
 * loopback): user-mode networking forwards only declared ports, and a loopback
 * peer is classified at the ALE layers like any other.
 *
 * Outcome: "allowed" when the connection or datagrams went through, "blocked"
 * when a call failed the way a blocking filter makes it fail (connect refused
 * or denied, nothing accepted or received within the I/O timeout); the
 * detail names the call and the Winsock error.
 */
#include "agent.h"

#include <stdio.h>
#include <string.h>

#define SEGMENT 64

int net_init(void)
{
    WSADATA wsa;
    return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 ? 0 : -1;
}

static int family_of(const agent_step *s)
{
    const char *f = json_str(&g_plan, s->args, "family", "v4");
    return strcmp(f, "v6") == 0 ? AF_INET6 : AF_INET;
}

static int loopback(int family, unsigned short port, struct sockaddr_storage *ss, int *len)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        *len = (int)sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = (int)sizeof *a;
    }
    return 0;
}

static int wait_socket(SOCKET s, int for_write, int timeout_ms)
{
    fd_set set, err;
    struct timeval tv;
    FD_ZERO(&set);
    FD_ZERO(&err);
    FD_SET(s, &set);
    FD_SET(s, &err);
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return select(0, for_write ? NULL : &set, for_write ? &set : NULL, &err, &tv) > 0 &&
                   FD_ISSET(s, &set)
               ? 0
               : -1;
}

static SOCKET open_bound(int family, int type, unsigned short port, int *err)
{
    struct sockaddr_storage ss;
    int len;
    SOCKET s = socket(family, type, type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP);
    if (s == INVALID_SOCKET) {
        *err = WSAGetLastError();
        return s;
    }
    loopback(family, port, &ss, &len);
    if (bind(s, (struct sockaddr *)&ss, len) != 0) {
        *err = WSAGetLastError();
        closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

static unsigned short port_of(SOCKET s)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    if (getsockname(s, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Connect s to loopback:port within the timeout; 0 or the Winsock error. */
static int connect_timed(SOCKET s, int family, unsigned short port)
{
    struct sockaddr_storage ss;
    int len, err = 0, elen = (int)sizeof err;
    u_long nb = 1;
    loopback(family, port, &ss, &len);
    ioctlsocket(s, FIONBIO, &nb);
    if (connect(s, (struct sockaddr *)&ss, len) != 0) {
        err = WSAGetLastError();
        if (err != WSAEWOULDBLOCK)
            return err;
        if (wait_socket(s, 1, AGENT_IO_TIMEOUT_MS) != 0) {
            getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &elen);
            return err ? err : WSAETIMEDOUT;
        }
        getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &elen);
        if (err)
            return err;
    }
    nb = 0;
    ioctlsocket(s, FIONBIO, &nb);
    return 0;
}

static int send_segments(SOCKET from, SOCKET to, int count)
{
    char buf[SEGMENT];
    int i;
    for (i = 0; i < count; i++) {
        int got = 0;
        memset(buf, 'a' + (i % 26), sizeof buf);
        if (send(from, buf, sizeof buf, 0) != (int)sizeof buf)
            return WSAGetLastError();
        while (got < (int)sizeof buf) {
            int n;
            if (wait_socket(to, 0, AGENT_IO_TIMEOUT_MS) != 0)
                return WSAETIMEDOUT;
            n = recv(to, buf, (int)sizeof buf - got, 0);
            if (n <= 0)
                return n == 0 ? WSAECONNRESET : WSAGetLastError();
            got += n;
        }
    }
    return 0;
}

static void allowed(agent_step *s)
{
    s->result->outcome = "allowed";
}

static void blocked(agent_step *s, const char *call, int err)
{
    s->result->outcome = "blocked";
    step_fail(s, 0, "%s failed with Winsock error %d", call, err);
}

static void tcp_listen(agent_step *s)
{
    int err = 0, family = family_of(s);
    unsigned short port = (unsigned short)json_num(&g_plan, s->args, "port", 0);
    SOCKET l = open_bound(family, SOCK_STREAM, port, &err);
    agent_entry *e;
    if (l == INVALID_SOCKET)
        return blocked(s, "bind", err);
    if (listen(l, SOMAXCONN) != 0) {
        err = WSAGetLastError();
        closesocket(l);
        return blocked(s, "listen", err);
    }
    if (!(e = agent_entry_new(s->name, ENTRY_LISTEN))) {
        closesocket(l);
        return step_fail(s, 0x8007000Eu, "too many open handles");
    }
    e->family = family;
    e->sock = l;
    allowed(s);
}

static void tcp_connect(agent_step *s)
{
    int err = 0, family = family_of(s);
    int segments = (int)json_num(&g_plan, s->args, "segments", 0);
    int replies = (int)json_num(&g_plan, s->args, "replies", 0);
    unsigned short want = (unsigned short)json_num(&g_plan, s->args, "remote_port", 0);
    SOCKET peer_listen = open_bound(family, SOCK_STREAM, want, &err), c, p;
    agent_entry *e;
    if (peer_listen == INVALID_SOCKET) /* the scenario's port is taken: any port will do */
        peer_listen = open_bound(family, SOCK_STREAM, 0, &err);
    if (peer_listen == INVALID_SOCKET || listen(peer_listen, 4) != 0)
        return step_fail(s, agent_hresult((DWORD)err), "the in-guest peer could not listen");
    c = socket(family, SOCK_STREAM, IPPROTO_TCP);
    err = c == INVALID_SOCKET ? WSAGetLastError() : connect_timed(c, family, port_of(peer_listen));
    if (err) {
        if (c != INVALID_SOCKET)
            closesocket(c);
        closesocket(peer_listen);
        return blocked(s, "connect", err);
    }
    if (wait_socket(peer_listen, 0, AGENT_IO_TIMEOUT_MS) != 0 ||
        (p = accept(peer_listen, NULL, NULL)) == INVALID_SOCKET) {
        closesocket(c);
        closesocket(peer_listen);
        return blocked(s, "the peer's accept", WSAETIMEDOUT);
    }
    closesocket(peer_listen);
    if (!(e = agent_entry_new(s->name, ENTRY_TCP))) {
        closesocket(c);
        closesocket(p);
        return step_fail(s, 0x8007000Eu, "too many open handles");
    }
    e->family = family;
    e->sock = c;
    e->peer = p;
    if ((err = send_segments(c, p, segments)) != 0)
        return blocked(s, "sending data", err);
    if ((err = send_segments(p, c, replies)) != 0)
        return blocked(s, "receiving the peer's reply", err);
    allowed(s);
}

static void tcp_accept(agent_step *s)
{
    const char *ref = json_str(&g_plan, s->args, "listener", NULL);
    agent_entry *l = agent_entry_find(ref, ENTRY_LISTEN), *e;
    int segments = (int)json_num(&g_plan, s->args, "segments", 0);
    int replies = (int)json_num(&g_plan, s->args, "replies", 0);
    int err;
    SOCKET peer, a;
    if (!l || l->sock == INVALID_SOCKET)
        return step_fail(s, 0x80070006u, "listener %s is not open", ref ? ref : "?");
    peer = socket(l->family, SOCK_STREAM, IPPROTO_TCP);
    err = peer == INVALID_SOCKET ? WSAGetLastError()
                                 : connect_timed(peer, l->family, port_of(l->sock));
    if (err) {
        if (peer != INVALID_SOCKET)
            closesocket(peer);
        return blocked(s, "the peer's connect", err);
    }
    if (wait_socket(l->sock, 0, AGENT_IO_TIMEOUT_MS) != 0 ||
        (a = accept(l->sock, NULL, NULL)) == INVALID_SOCKET) {
        closesocket(peer);
        return blocked(s, "accept", WSAETIMEDOUT);
    }
    if (!(e = agent_entry_new(s->name, ENTRY_TCP))) {
        closesocket(a);
        closesocket(peer);
        return step_fail(s, 0x8007000Eu, "too many open handles");
    }
    e->family = l->family;
    e->sock = a;
    e->peer = peer;
    if ((err = send_segments(peer, a, segments)) != 0)
        return blocked(s, "receiving the peer's data", err);
    if ((err = send_segments(a, peer, replies)) != 0)
        return blocked(s, "replying to the peer", err);
    allowed(s);
}

/* n datagrams from `from` to the socket `to` (bound on loopback), each received. */
static int datagrams(SOCKET from, SOCKET to, int family, int count)
{
    struct sockaddr_storage ss;
    int len, i;
    char buf[SEGMENT];
    loopback(family, port_of(to), &ss, &len);
    for (i = 0; i < count; i++) {
        memset(buf, 'A' + (i % 26), sizeof buf);
        if (sendto(from, buf, sizeof buf, 0, (struct sockaddr *)&ss, len) != (int)sizeof buf)
            return WSAGetLastError();
        if (wait_socket(to, 0, AGENT_IO_TIMEOUT_MS) != 0)
            return WSAETIMEDOUT;
        if (recv(to, buf, sizeof buf, 0) <= 0)
            return WSAGetLastError();
    }
    return 0;
}

static void udp_send(agent_step *s)
{
    int err = 0, family = family_of(s), i;
    int peers = (int)json_num(&g_plan, s->args, "peers", 1);
    int packets = (int)json_num(&g_plan, s->args, "packets", 1);
    int replies = (int)json_num(&g_plan, s->args, "replies", 0);
    agent_entry *e;
    SOCKET u;
    if (peers < 1 || peers > AGENT_MAX_PEERS)
        return step_fail(s, 0x80070057u, "peers: expected 1..%d", AGENT_MAX_PEERS);
    if ((u = open_bound(family, SOCK_DGRAM, 0, &err)) == INVALID_SOCKET)
        return blocked(s, "bind", err);
    if (!(e = agent_entry_new(s->name, ENTRY_UDP))) {
        closesocket(u);
        return step_fail(s, 0x8007000Eu, "too many open handles");
    }
    e->family = family;
    e->sock = u;
    for (i = 0; i < peers; i++) {
        SOCKET p = open_bound(family, SOCK_DGRAM, 0, &err);
        if (p == INVALID_SOCKET)
            return step_fail(s, agent_hresult((DWORD)err), "peer %d could not bind", i + 1);
        e->peers[e->peer_count++] = p;
        if ((err = datagrams(u, p, family, packets)) != 0)
            return blocked(s, "sending to a peer", err);
        if ((err = datagrams(p, u, family, replies)) != 0)
            return blocked(s, "receiving a peer's reply", err);
    }
    allowed(s);
}

static void udp_receive(agent_step *s)
{
    const char *ref = json_str(&g_plan, s->args, "on", NULL);
    agent_entry *e = agent_entry_find(ref, ENTRY_UDP);
    int peers = (int)json_num(&g_plan, s->args, "peers", 1);
    int packets = (int)json_num(&g_plan, s->args, "packets", 1);
    int i, err = 0;
    if (!e || e->sock == INVALID_SOCKET)
        return step_fail(s, 0x80070006u, "socket %s is not open", ref ? ref : "?");
    if (peers < 1 || e->peer_count + peers > AGENT_MAX_PEERS)
        return step_fail(s, 0x80070057u, "peers: at most %d in all", AGENT_MAX_PEERS);
    for (i = 0; i < peers; i++) {
        SOCKET p = open_bound(e->family, SOCK_DGRAM, 0, &err);
        if (p == INVALID_SOCKET)
            return step_fail(s, agent_hresult((DWORD)err), "peer %d could not bind", i + 1);
        agent_lock();
        e->peers[e->peer_count++] = p;
        agent_unlock();
        if ((err = datagrams(p, e->sock, e->family, packets)) != 0)
            return blocked(s, "receiving from a new peer", err);
    }
    allowed(s);
}

static void send_more(agent_step *s)
{
    const char *ref = json_str(&g_plan, s->args, "on", NULL);
    const char *dir = json_str(&g_plan, s->args, "direction", "out");
    int segments = (int)json_num(&g_plan, s->args, "segments", 1), err = 0, i;
    int inbound = strcmp(dir, "in") == 0;
    agent_entry *e = agent_entry_find(ref, ENTRY_NONE);
    if (!e || e->sock == INVALID_SOCKET)
        return step_fail(s, 0x80070006u, "connection %s is not open", ref ? ref : "?");
    if (e->kind == ENTRY_TCP) {
        err = inbound ? send_segments(e->peer, e->sock, segments)
                      : send_segments(e->sock, e->peer, segments);
    } else if (e->kind == ENTRY_UDP) {
        for (i = 0; i < e->peer_count && !err; i++)
            err = inbound ? datagrams(e->peers[i], e->sock, e->family, segments)
                          : datagrams(e->sock, e->peers[i], e->family, segments);
    } else {
        return step_fail(s, 0x80070057u, "%s is not a connection", ref);
    }
    if (err)
        return blocked(s, inbound ? "receiving" : "sending", err);
    allowed(s);
}

static void close_entry(agent_step *s)
{
    const char *ref = json_str(&g_plan, s->args, "of", NULL);
    agent_entry *e = agent_entry_find(ref, ENTRY_NONE);
    int i;
    if (!e || e->sock == INVALID_SOCKET)
        return step_fail(s, 0x80070006u, "%s is not open", ref ? ref : "?");
    agent_lock();
    if (e->kind == ENTRY_TCP)
        shutdown(e->sock, SD_BOTH);
    closesocket(e->sock);
    e->sock = INVALID_SOCKET;
    if (e->peer != INVALID_SOCKET)
        closesocket(e->peer);
    e->peer = INVALID_SOCKET;
    for (i = 0; i < e->peer_count; i++)
        closesocket(e->peers[i]);
    e->peer_count = 0;
    agent_unlock();
}

int net_step(agent_step *s)
{
    static const struct { const char *kind; void (*run)(agent_step *); } table[] = {
        {"tcp_listen", tcp_listen}, {"tcp_connect", tcp_connect}, {"tcp_accept", tcp_accept},
        {"udp_send", udp_send}, {"udp_receive", udp_receive}, {"send", send_more},
        {"close", close_entry},
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(s->kind, table[i].kind) == 0) {
            table[i].run(s);
            return 0;
        }
    return -1;
}
