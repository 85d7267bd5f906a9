/* View-only enforcement for VNC servers that have no view-only password
 * (QEMU's): parses what an RFB client sends (RFB 3.3/3.7/3.8 handshake with
 * None or VNC authentication, then the client messages) and drops key, pointer,
 * clipboard and power (xvp) messages, passing the rest. Anything it cannot
 * parse ends the session. Not a VNC implementation: server-to-client bytes are
 * never looked at. */
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
};

void rfb_filter_init(struct rfb_filter *f);
/* Filters len bytes from the client into out (room for len + RFB_FILTER_SLACK
 * bytes). Returns the number of bytes to send on, or -EPROTO for a stream it
 * cannot follow. */
ssize_t rfb_filter_client(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t *out);

#endif
