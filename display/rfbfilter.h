/* The relay's view of what an RFB client sends a VNC server that is QEMU's: parses it
 * (RFB 3.3/3.7/3.8 handshake with None or VNC authentication, then the client
 * messages) and, in one of two modes, changes it. View only, for a server without a
 * view-only password: drops key, pointer, clipboard and power (xvp) messages, passing
 * the rest; anything it cannot parse ends the session. Keys: passes everything, each
 * KeyEvent as display/rfbkeys.h says (Shift synthesised for keysyms that need it,
 * which QEMU does not do), QEMU extended key events unchanged; anything it cannot
 * parse is passed on unchanged from there, without synthesis (a client extension it
 * does not know must not cost the user the session). What the client sends after its
 * version depends on the security type the server chose (3.3: a 32-bit word, 0
 * failure, 1 None, 2 VNC authentication) or offered (3.7/3.8: a list the client picks
 * from), so the server's handshake is watched too (rfb_filter_server()), never
 * changed; past the security types, server bytes are not looked at. Not a VNC
 * implementation. */
#ifndef VDI_DISPLAY_RFBFILTER_H
#define VDI_DISPLAY_RFBFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "display/rfbkeys.h"

/* Bytes an output buffer needs beyond the input's length (a held-back header).
 */
#define RFB_FILTER_SLACK 24
/* The most bytes rfb_filter_client() writes for len bytes in, in either mode (a
 * KeyEvent may become three). */
#define RFB_FILTER_OUT_MAX(len) (3 * ((size_t)(len) + RFB_FILTER_SLACK))

enum rfb_filter_mode { RFB_FILTER_VIEW_ONLY, RFB_FILTER_KEYS };

struct rfb_filter {
	enum rfb_filter_mode rf_mode;
	bool rf_passthrough; /* keys: the stream was lost, bytes pass unchanged */
	struct rfb_keys rf_keys;
	uint8_t rf_emit[48]; /* keys: what a completed key message becomes */
	size_t rf_elen;
	int rf_state;
	uint8_t rf_hdr[RFB_FILTER_SLACK];
	size_t rf_hlen;
	uint64_t rf_remaining; /* body bytes of the current message still to pass or
				  drop */
	int rf_forward;	       /* whether they pass */
	uint64_t rf_dropped;   /* messages dropped, for the log */
	/* the server's side of the handshake */
	int rf_sstate;
	uint8_t rf_shdr[12];
	size_t rf_shlen;
	int rf_client_version, rf_server_version; /* major * 1000 + minor; 0: not yet */
	unsigned rf_stypes_left;		  /* 3.7/3.8: types still to come */
	uint32_t rf_offered;			  /* 3.7/3.8: bit t, type t offered */
	uint32_t rf_chosen;			  /* 3.3: the type the server chose */
};

/* A filter for view-only sessions. */
void rfb_filter_init(struct rfb_filter *f);
void rfb_filter_init_mode(struct rfb_filter *f, enum rfb_filter_mode mode);
/* Filters len bytes from the client into out (room for RFB_FILTER_OUT_MAX(len)
 * bytes; in view-only mode len + RFB_FILTER_SLACK suffice). Returns the number of
 * bytes to send on, or -EPROTO for a stream it cannot follow (view only). */
ssize_t rfb_filter_client(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t *out);
/* Watches len bytes the server sent, before they go on to the client (so the filter
 * knows the security type before the client can answer it). Returns 0, or -EPROTO for
 * a handshake it cannot follow (the session ends). A client that says anything past
 * its version before the server's security types were seen, after the server refused
 * the connection, or that picks a type the server did not offer, is refused (view
 * only; in keys mode the rest passes unchanged). */
int rfb_filter_server(struct rfb_filter *f, const uint8_t *in, size_t len);

#endif
