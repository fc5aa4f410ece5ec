/*
 * probe_ioctl.h - how a scenario's [callout] settings reach the probe driver.
 *
 * One path on every target: user mode opens the probe's named device and sends
 * IOCTL_PROBE_CONFIGURE with a PROBE_CONFIG. On Windows the harness's step agent
 * does this after the driver started; on the engine model the host runtime
 * builds the IRP and calls the driver's IRP_MJ_DEVICE_CONTROL dispatch right
 * after DriverEntry. The layout is fixed (no pointers, natural alignment, no
 * packing pragmas) so the same bytes mean the same thing to a 64-bit driver, a
 * 32-bit agent and the Python side (harness/csim/config.py packs it).
 *
 * Include after <ntddk.h> (driver) or <windows.h> + <winioctl.h> (agent): both
 * provide UINT8/UINT16/UINT32 and CTL_CODE.
 */
#ifndef PROBE_IOCTL_H
#define PROBE_IOCTL_H

/* Device names: the kernel name, its symbolic link, the path user mode opens. */
#define PROBE_DEVICE_NAME   L"\\Device\\CalloutHarnessProbe"
#define PROBE_SYMLINK_NAME  L"\\DosDevices\\CalloutHarnessProbe"
#define PROBE_USER_PATH     L"\\\\.\\CalloutHarnessProbe"

/* 0x0012A004: FILE_DEVICE_NETWORK (0x12), function 0x801, buffered, write access. */
#define IOCTL_PROBE_CONFIGURE \
    CTL_CODE(FILE_DEVICE_NETWORK, 0x801, METHOD_BUFFERED, FILE_WRITE_ACCESS)

#define PROBE_CONFIG_VERSION 1

/* Bounds of the fixed arrays below. */
#define PROBE_MAX_BLOCKED     64
#define PROBE_MAX_EDIT_PORTS  64

/* pendMask: where the probe pends (scenario [callout] pend = [...]). */
#define PROBE_PEND_CONNECT      0x00000001u  /* "connect": ALE_AUTH_CONNECT */
#define PROBE_PEND_RECV_ACCEPT  0x00000002u  /* "recv_accept": ALE_AUTH_RECV_ACCEPT */
#define PROBE_PEND_CLOSURE      0x00000004u  /* "closure": queue datagrams, pend the closure */

/* decision: the answer to a pended (or any) authorization (decision = "..."). */
#define PROBE_DECISION_PERMIT   0u
#define PROBE_DECISION_BLOCK    1u   /* block every classify that has a remote address */

/* streamMode (stream = "..."). */
#define PROBE_STREAM_INLINE       0u
#define PROBE_STREAM_OUT_OF_BAND  1u  /* edit the streams whose remote port is in editPorts */

/* flags */
#define PROBE_FLAG_ENDPOINT_CONTEXTS  0x00000001u  /* endpoint_contexts = true */
#define PROBE_FLAG_FLOW_CONTEXTS      0x00000002u  /* flow_contexts = true */
#define PROBE_FLAG_PEND_ON_REAUTH     0x00000004u  /* pend_on_reauth = true */
#define PROBE_FLAG_ADD_POLICY         0x00000008u  /* add provider, sublayer, callouts and
                                                      filters in a dynamic kernel session
                                                      (a guest; the model installs its own) */

/* One remote endpoint: an entry of the block set (block = ["step", ...], resolved
 * by the harness to the remote addresses of those steps). */
typedef struct _PROBE_REMOTE {
    UINT8  family;        /* 4 or 6 */
    UINT8  reserved;      /* 0 */
    UINT16 port;          /* host byte order */
    UINT8  address[16];   /* network byte order; IPv4 uses the first 4 bytes */
} PROBE_REMOTE;           /* 20 bytes */

typedef struct _PROBE_CONFIG {
    UINT32 size;              /* sizeof(PROBE_CONFIG): 1452 for version 1 */
    UINT32 version;           /* PROBE_CONFIG_VERSION */
    UINT32 pendMask;          /* PROBE_PEND_* */
    UINT32 delayUs;           /* delay_ms * 1000: how long a pended decision takes */
    UINT32 decision;          /* PROBE_DECISION_* */
    UINT32 streamMode;        /* PROBE_STREAM_* */
    UINT32 flags;             /* PROBE_FLAG_* */
    UINT32 transportDelayUs;  /* how long a queued datagram is held (default 20000) */
    UINT32 streamDelayUs;     /* how long absorbed stream data is held (default 10000) */
    UINT32 blockedCount;      /* entries used in blocked, <= PROBE_MAX_BLOCKED */
    UINT32 editPortCount;     /* entries used in editPorts, <= PROBE_MAX_EDIT_PORTS */
    PROBE_REMOTE blocked[PROBE_MAX_BLOCKED];
    UINT16 editPorts[PROBE_MAX_EDIT_PORTS];
} PROBE_CONFIG;

#endif /* PROBE_IOCTL_H */
