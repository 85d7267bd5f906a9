/* Running as a configured user when started as root: the daemon takes that user's uid,
 * gid and groups (so /dev/kvm's group counts for vdi-hostd) and keeps one capability,
 * CAP_NET_BIND_SERVICE, so it can still listen on ports below 1024. Nothing else of
 * root is left, and no_new_privs makes sure no program it runs gains any back. */
#ifndef VDI_PRIVDROP_H
#define VDI_PRIVDROP_H

#include <stddef.h>

/* With user empty or NULL, or when not root: nothing (0; a warning when root with no
 * user). Otherwise becomes user. Returns 0 or -errno with the reason in err. */
int privileges_drop(const char *user, const char *program, char *err, size_t errlen);

#endif
