/* VNC tickets: the passwords that let a viewer in, each with an expiry, one full-access
 * ticket and a few view-only ones, set and rotated through the control socket; and the
 * throttle that slows down password guessing, per source and for the whole server. RFB's
 * VNC authentication is DES keyed with the password's first 8 bytes, so only those count
 * and shorter tickets are refused. Knows nothing of sockets; the display thread checks,
 * the control socket sets (the ticket store locks itself). Tickets are never logged. */
#ifndef VDI_DISPLAY_VNC_TICKET_H
#define VDI_DISPLAY_VNC_TICKET_H

#include <stdbool.h>
#include <stdint.h>

#define VNC_TICKET_LEN		  8  /* bytes of a password RFB's DES scheme uses */
#define VNC_TICKET_VIEW_ONLY_MAX  8  /* view-only tickets held at once */
#define VNC_TICKET_PASSWORD_MAX	  64 /* longest password accepted by vnc_tickets_set() */
#define VNC_TICKET_CHALLENGE_SIZE 16

enum vnc_ticket_access { VNC_TICKET_REFUSED, VNC_TICKET_FULL, VNC_TICKET_VIEW_ONLY };

struct vnc_tickets;

/* Returns an empty store (every check refused); free with vnc_tickets_free(). */
struct vnc_tickets *vnc_tickets_create(void);
void vnc_tickets_free(struct vnc_tickets *t);

/* Sets the full ticket (replacing the previous one) or adds a view-only ticket (one with
 * the same first 8 bytes gets the new expiry). expires and now are UNIX seconds.
 * Returns 0, -EINVAL for a password shorter than 8 or longer than VNC_TICKET_PASSWORD_MAX
 * bytes, -ETIMEDOUT when expires is not in the future, -EEXIST when its first 8 bytes
 * equal those of a ticket of the other kind, -ENOSPC with VNC_TICKET_VIEW_ONLY_MAX unexpired
 * view-only tickets already. */
int vnc_tickets_set(struct vnc_tickets *t, const char *password, int64_t expires, bool view_only,
		    int64_t now);
/* Forgets every ticket: from now on every viewer is refused. */
void vnc_tickets_clear(struct vnc_tickets *t);
/* Whether a viewer could get in: some ticket has not expired. */
bool vnc_tickets_any(struct vnc_tickets *t, int64_t now);
/* Checks a VNC authentication response (the challenge DES-encrypted with the password)
 * against the unexpired tickets, in constant time per ticket. */
enum vnc_ticket_access vnc_tickets_check(struct vnc_tickets *t, const uint8_t *challenge,
					 const uint8_t *response, int64_t now);

/* ---- throttle ---- */

/* Free failures per source before delays start, and for the whole server. */
#define VNC_THROTTLE_SOURCE_FREE   3
#define VNC_THROTTLE_GLOBAL_FREE   20
#define VNC_THROTTLE_BASE_MS	   500
#define VNC_THROTTLE_SOURCE_MAX_MS 60000
#define VNC_THROTTLE_GLOBAL_MAX_MS 30000
#define VNC_THROTTLE_FORGET_MS	   600000 /* a source quiet this long starts over */
#define VNC_THROTTLE_SOURCES	   64	  /* sources remembered (least recent dropped) */
#define VNC_THROTTLE_SOURCE_LEN	   64

struct vnc_throttle_source {
	char ts_name[VNC_THROTTLE_SOURCE_LEN];
	unsigned ts_failures;
	uint64_t ts_last_ms, ts_blocked_until_ms;
};

/* Exponential delays: after VNC_THROTTLE_SOURCE_FREE failures from one source, each further
 * failure blocks it for VNC_THROTTLE_BASE_MS doubled per failure (up to the maximum); the
 * same holds for all sources together after VNC_THROTTLE_GLOBAL_FREE. Zero-initialise. Not
 * locked: one caller. Times are monotonic milliseconds. */
struct vnc_throttle {
	struct vnc_throttle_source th_sources[VNC_THROTTLE_SOURCES];
	unsigned th_failures;
	uint64_t th_last_ms, th_blocked_until_ms;
};

/* Whether source may try a password now; if not, *retry_ms says when it may. */
bool vnc_throttle_allowed(struct vnc_throttle *th, const char *source, uint64_t now_ms,
			  uint64_t *retry_ms);
void vnc_throttle_failure(struct vnc_throttle *th, const char *source, uint64_t now_ms);
/* A good password: the source starts over (the global count does not). */
void vnc_throttle_success(struct vnc_throttle *th, const char *source);

#endif
