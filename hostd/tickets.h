/* Display tickets the broker registers through the API and the relay redeems:
 * each opens one connection to one desktop's VNC socket, once, before it
 * expires. Only a SHA-256 of each ticket is kept; a desktop has at most one
 * live ticket (a new one replaces the old, as it replaces the VNC password).
 * Thread-safe. Not persisted: a restarted hostd asks the broker for fresh
 * tickets by refusing the old ones. */
#ifndef VDI_HOSTD_TICKETS_H
#define VDI_HOSTD_TICKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "hostd/desktop.h"

#define TICKET_MIN_LEN 16
#define TICKET_MAX_LEN 128
#define TICKETS_MAX    4096

struct tickets;

struct tickets *tickets_create(void);
void tickets_free(struct tickets *t);

/* Whether ticket is TICKET_MIN_LEN to TICKET_MAX_LEN characters of
 * [A-Za-z0-9_-]. */
bool tickets_valid(const char *ticket);
/* Registers ticket for desktop_id until expires (unix seconds), replacing the
 * desktop's previous ticket. 0, -EINVAL (format), -EEXIST (already registered),
 * -ENOSPC (full). */
int tickets_add(struct tickets *t, const char *ticket, const char *desktop_id, long long expires,
		bool view_only, long long now);
/* Takes ticket out: 0 with the desktop's id and view_only, -ENOENT when unknown
 * or used, -ETIMEDOUT when expired (also removed). */
int tickets_redeem(struct tickets *t, const char *ticket, long long now,
		   char desktop_id[DESKTOP_ID_MAX + 1], bool *view_only);
/* Drops the desktop's ticket (it stopped or was destroyed). */
void tickets_revoke(struct tickets *t, const char *desktop_id);
/* Live tickets (tests). */
size_t tickets_count(struct tickets *t);

#endif
