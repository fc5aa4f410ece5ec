/* inaddr.h - IN_ADDR for the host build (see ws2def.h). */
#include <ws2def.h>
