/* View-only enforcement for VNC servers that have no view-only password
 * (QEMU's): parses what an RFB client sends (RFB 3.3/3.7/3.8 handshake with
 * None or VNC authentication, then the client messages) and drops key, pointer,
 * clipboard and power (xvp) messages, passing the rest. Anything it cannot
 * parse ends the session. What the client sends after its version depends on
 * the security type the server chose (3.3: a 32-bit word, 0 failure, 1 None,
 * 2 VNC authentication) or offered (3.7/3.8: a list the client picks from), so
 * the server's handshake is watched too (rfb_filter_server()), never changed;
 * past the security types, server bytes are not looked at. Not a VNC
 * implementation. */
#ifndef VDI_DISPLAY_RFBFILTER_H
#define VDI_DISPLAY_RFBFILTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes an output buffer needs beyond the input's length (a held-back header).
 */
#define RFB_FILTER_SLACK 24

struct rfb_filter {
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

void rfb_filter_init(struct rfb_filter *f);
/* Filters len bytes from the client into out (room for len + RFB_FILTER_SLACK
 * bytes). Returns the number of bytes to send on, or -EPROTO for a stream it
 * cannot follow. */
ssize_t rfb_filter_client(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t *out);
/* Watches len bytes the server sent, before they go on to the client (so the filter
 * knows the security type before the client can answer it). Returns 0, or -EPROTO for
 * a handshake it cannot follow (the session ends). A client that says anything past
 * its version before the server's security types were seen, after the server refused
 * the connection, or that picks a type the server did not offer, is refused. */
int rfb_filter_server(struct rfb_filter *f, const uint8_t *in, size_t len);

#endif
