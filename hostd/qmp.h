/* A minimal QMP client: one command per connection (greeting, qmp_capabilities,
 * the command, its reply; events in between are skipped), so it needs no state
 * across calls and works the same on a QEMU this hostd started and on one it
 * re-adopted. */
#ifndef VDI_HOSTD_QMP_H
#define VDI_HOSTD_QMP_H

#include <jansson.h>
#include <stddef.h>

/* Runs cmd with args (borrowed; NULL for none) on the QMP socket at path within
 * timeout_ms. Returns the command's "return" value (a new reference), or NULL
 * with QEMU's error description or the failure in err. */
json_t *qmp_execute(const char *path, const char *cmd, json_t *args, int timeout_ms, char *err,
		    size_t errlen);

#endif
