/* ws2def.h - address families, protocols and IP address types for the host build.
 * Clean-room for callout-harness (harness/csim). */
#ifndef CSIM_WS2DEF_H
#define CSIM_WS2DEF_H
#include <wdm.h>

typedef USHORT ADDRESS_FAMILY;
#define AF_UNSPEC 0
#define AF_INET   2
#define AF_INET6  23

typedef enum { IPPROTO_HOPOPTS = 0, IPPROTO_ICMP = 1, IPPROTO_TCP = 6, IPPROTO_UDP = 17,
               IPPROTO_ICMPV6 = 58, IPPROTO_RAW = 255 } IPPROTO;

typedef struct in_addr {
    union {
        struct { UCHAR s_b1, s_b2, s_b3, s_b4; } S_un_b;
        struct { USHORT s_w1, s_w2; } S_un_w;
        ULONG S_addr;
    } S_un;
} IN_ADDR, *PIN_ADDR;

typedef struct in6_addr {
    union { UCHAR Byte[16]; USHORT Word[8]; } u;
} IN6_ADDR, *PIN6_ADDR;

typedef struct { union { struct { ULONG Zone : 28; ULONG Level : 4; }; ULONG Value; }; } SCOPE_ID;
typedef ULONG COMPARTMENT_ID;
typedef ULONG IF_INDEX;
#define UNSPECIFIED_COMPARTMENT_ID 0
#define DEFAULT_COMPARTMENT_ID 1

typedef struct sockaddr { ADDRESS_FAMILY sa_family; CHAR sa_data[14]; } SOCKADDR;
typedef struct _WSACMSGHDR { SIZE_T cmsg_len; INT cmsg_level; INT cmsg_type; } WSACMSGHDR;
#endif
