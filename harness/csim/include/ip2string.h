/* ip2string.h - IPv4/IPv6 address to text, for the host build (provided by the runtime).
 * Clean-room for callout-harness (harness/csim). */
#ifndef CSIM_IP2STRING_H
#define CSIM_IP2STRING_H
#include <ws2def.h>

PSTR RtlIpv4AddressToStringA(const IN_ADDR *addr, PSTR s);
NTSTATUS RtlIpv4AddressToStringExA(const IN_ADDR *address, USHORT port, PSTR addressString,
                                   PULONG addressStringLength);
PSTR RtlIpv6AddressToStringA(const IN6_ADDR *addr, PSTR s);
NTSTATUS RtlIpv6AddressToStringExA(const IN6_ADDR *address, ULONG scopeId, USHORT port,
                                   PSTR addressString, PULONG addressStringLength);
#endif
