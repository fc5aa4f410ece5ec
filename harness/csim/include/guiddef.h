/* guiddef.h - GUID, DEFINE_GUID (with INITGUID) and comparison, for the host build.
 * Clean-room for callout-harness (harness/csim). */
#ifndef CSIM_GUIDDEF_H
#define CSIM_GUIDDEF_H
#include <string.h>

#ifndef CSIM_GUID_DEFINED
#define CSIM_GUID_DEFINED
typedef struct _GUID {
    unsigned int   Data1;
    unsigned short Data2;
    unsigned short Data3;
    unsigned char  Data4[8];
} GUID;
#endif
typedef GUID *LPGUID;
typedef const GUID *LPCGUID;
typedef GUID IID;
typedef GUID CLSID;
#define REFGUID const GUID *

#endif /* CSIM_GUIDDEF_H */

/* DEFINE_GUID follows INITGUID wherever this header is included again. */
#undef DEFINE_GUID
#ifdef INITGUID
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
    const GUID name = { l, w1, w2, { b1, b2, b3, b4, b5, b6, b7, b8 } }
#else
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
    extern const GUID name
#endif

#ifndef CSIM_GUID_HELPERS
#define CSIM_GUID_HELPERS
#define IsEqualGUID(a, b) (memcmp((a), (b), sizeof(GUID)) == 0)
#define InlineIsEqualGUID(a, b) IsEqualGUID(a, b)
#endif
