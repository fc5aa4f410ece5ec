/*
 * probectl.c - the probe driver's configuration path: the scenario's [callout]
 * knobs go to the probe's device as IOCTL_PROBE_CONFIGURE with a PROBE_CONFIG
 * (drivers/probe/probe_ioctl.h, the one definition of that layout).
 *
 * callout_register / callout_unregister: version 1 of the probe's IOCTL
 * interface has no request for them, so these steps fail with a detail that
 * says so (they run on the engine model, where the host drives the driver).
 */
#include "agent.h"

#include <winioctl.h>
#include <stdio.h>
#include <string.h>

#include "probe_ioctl.h"

static uint32_t num(const json_node *obj, const char *key, uint32_t dflt)
{
    return (uint32_t)json_num(&g_plan, obj, key, (double)dflt);
}

int probe_configure(const json_node *probe, agent_result *result)
{
    PROBE_CONFIG config;
    const json_node *c = json_get(&g_plan, probe, "config"), *list;
    HANDLE device;
    DWORD returned = 0;
    int i;
    memset(&config, 0, sizeof config);
    config.size = (UINT32)sizeof config;
    config.version = PROBE_CONFIG_VERSION;
    config.pendMask = num(c, "pendMask", 0);
    config.delayUs = num(c, "delayUs", 0);
    config.decision = num(c, "decision", PROBE_DECISION_PERMIT);
    config.streamMode = num(c, "streamMode", PROBE_STREAM_INLINE);
    config.flags = num(c, "flags", 0);
    config.transportDelayUs = num(c, "transportDelayUs", 20000);
    config.streamDelayUs = num(c, "streamDelayUs", 10000);
    list = json_get(&g_plan, c, "blocked");
    for (i = 0; list && list->type == J_ARRAY && i < list->count && i < PROBE_MAX_BLOCKED; i++) {
        const json_node *r = json_at(&g_plan, list, i);
        const char *addr = json_str(&g_plan, r, "address", "127.0.0.1");
        config.blocked[i].family = (UINT8)num(r, "family", 4);
        config.blocked[i].port = (UINT16)num(r, "port", 0);
        inet_pton(config.blocked[i].family == 6 ? AF_INET6 : AF_INET, addr,
                  config.blocked[i].address);
        config.blockedCount = (UINT32)(i + 1);
    }
    list = json_get(&g_plan, c, "editPorts");
    for (i = 0; list && list->type == J_ARRAY && i < list->count && i < PROBE_MAX_EDIT_PORTS;
         i++) {
        const json_node *p = json_at(&g_plan, list, i);
        config.editPorts[i] = (UINT16)(p ? p->number : 0);
        config.editPortCount = (UINT32)(i + 1);
    }
    device = CreateFileW(PROBE_USER_PATH, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, NULL);
    result->has_status = 1;
    if (device == INVALID_HANDLE_VALUE) {
        result->status = agent_hresult(GetLastError());
        snprintf(result->detail, AGENT_DETAIL, "opening the probe's device "
                 "\\\\.\\CalloutHarnessProbe failed with 0x%08lX (is the driver started?)",
                 (unsigned long)result->status);
        agent_log("%s", result->detail);
        return -1;
    }
    if (!DeviceIoControl(device, IOCTL_PROBE_CONFIGURE, &config, sizeof config, NULL, 0,
                         &returned, NULL)) {
        result->status = agent_hresult(GetLastError());
        snprintf(result->detail, AGENT_DETAIL, "IOCTL_PROBE_CONFIGURE failed with 0x%08lX",
                 (unsigned long)result->status);
        agent_log("%s", result->detail);
        CloseHandle(device);
        return -1;
    }
    result->status = 0;
    CloseHandle(device);
    return 0;
}

int probe_step(agent_step *s)
{
    if (strcmp(s->kind, "callout_register") != 0 && strcmp(s->kind, "callout_unregister") != 0)
        return -1;
    step_fail(s, 0x80070032u /* ERROR_NOT_SUPPORTED */,
              "the probe's IOCTL interface (PROBE_CONFIG_VERSION %d) has no request to %s its "
              "callouts", PROBE_CONFIG_VERSION,
              strcmp(s->kind, "callout_register") == 0 ? "register" : "unregister");
    return 0;
}
