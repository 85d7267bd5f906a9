/* The VNC server of vdi-hv: serves a framebuffer over RFB 3.8 with libvncserver's
 * encodings to viewers that authenticate with a ticket, and feeds their keyboard and
 * pointer to the guest through an input sink. Runs in a display thread of its own;
 * the control socket sets tickets from the main thread. Not a relay or a recorder. */
#ifndef VDI_DISPLAY_DISPLAY_H
#define VDI_DISPLAY_DISPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "display/source.h"
#include "display/vnc_input.h"

/* Refresh policy: how soon the framebuffer is compared after viewer input (then twice
 * as late each time nothing changed, up to the fast interval), how often while it
 * changes, and how far the interval backs off (doubling once nothing changed for
 * DISPLAY_SETTLE_MS). */
#define DISPLAY_REFRESH_INPUT_MS 5
#define DISPLAY_REFRESH_FAST_MS	 20
#define DISPLAY_REFRESH_IDLE_MS	 1000
#define DISPLAY_SETTLE_MS	 100
#define DISPLAY_MAX_VIEWERS	 16

struct display_config {
	/* "unix:PATH" (mode 0600), "HOST:PORT" or a bare "PORT" (on 127.0.0.1). */
	const char *dc_listen;
	/* No authentication at all: for local debugging only. */
	bool dc_insecure;
	/* The desktop name viewers show. */
	const char *dc_name;
};

struct display_stats {
	unsigned ds_viewers;	   /* connected now, authenticated or not */
	uint64_t ds_bytes_sent;	   /* RFB bytes sent to viewers so far */
	uint64_t ds_updates;	   /* framebuffer updates sent */
	uint64_t ds_auth_failures; /* refused passwords, throttled attempts included */
	unsigned ds_refresh_ms;	   /* the current refresh interval */
	int ds_port;		   /* TCP port listened on, or 0 on a unix socket */
};

/* Checks a listen address as display_create() would take it. Returns 0 or -EINVAL. */
int display_check_listen(const char *spec);

/* Listens on cfg->dc_listen for a display serving src (copied), with input going to
 * sink; display_start() starts serving viewers. Returns NULL with a log line on failure.
 * Free with display_free() before the source's producer and the input devices. */
struct display *display_create(const struct display_config *cfg, const struct display_source *src,
			       const struct vnc_input_sink *sink);
/* Starts the display thread, which accepts and serves viewers. Returns 0 or -errno. */
int display_start(struct display *d);
/* Disconnects every viewer, stops the thread, removes a unix socket. */
void display_free(struct display *d);

/* Sets (or rotates) the full ticket or adds a view-only one: see vnc_tickets_set() in
 * display/vnc_ticket.h for the rules and the errors. Viewers already connected stay. */
int display_set_ticket(struct display *d, const char *password, int64_t expires, bool view_only);
/* Forgets every ticket; with disconnect, also drops every connected viewer. */
void display_clear_tickets(struct display *d, bool disconnect);
void display_get_stats(struct display *d, struct display_stats *st);

#endif
