/* RFB client-stream filter: a header is collected byte by byte until the
 * message's length is known, then its body passes or is skipped in bulk, so
 * nothing the client says sizes a buffer. Message lengths from RFC 6143
 * section 7.5 and QEMU's extensions. */
#include "display/rfbfilter.h"

#include <errno.h>
#include <string.h>

enum { RF_VERSION, RF_SECTYPE, RF_AUTH, RF_INIT, RF_MSG };

enum { NEED_MORE = 0, DONE = 1, BROKEN = -1 };

void rfb_filter_init(struct rfb_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->rf_state = RF_VERSION;
}

/* The header so far decides: pass (forward = 1) or drop, with body bytes to
 * follow. */
static int decide(struct rfb_filter *f, int forward, uint64_t body)
{
	f->rf_forward = forward;
	f->rf_remaining = body;
	if (!forward)
		f->rf_dropped++;
	return DONE;
}

static int message(struct rfb_filter *f)
{
	const uint8_t *h = f->rf_hdr;

	switch (h[0]) {
	case 0: return decide(f, 1, 19); /* SetPixelFormat */
	case 2:				 /* SetEncodings: u16 count of s32 */
		if (f->rf_hlen < 4)
			return NEED_MORE;
		return decide(f, 1, 4ull * (uint64_t)(h[2] << 8 | h[3]));
	case 3: return decide(f, 1, 9); /* FramebufferUpdateRequest */
	case 4: return decide(f, 0, 7); /* KeyEvent */
	case 5: return decide(f, 0, 5); /* PointerEvent */
	case 6:				/* ClientCutText: u32 length */
		if (f->rf_hlen < 8)
			return NEED_MORE;
		return decide(
		    f, 0, (uint64_t)h[4] << 24 | (uint64_t)h[5] << 16 | (uint64_t)h[6] << 8 | h[7]);
	case 150: return decide(f, 1, 9); /* EnableContinuousUpdates */
	case 248: return decide(f, 0, 3); /* xvp: shutdown, reboot, reset */
	case 255:			  /* QEMU client message */
		if (f->rf_hlen < 2)
			return NEED_MORE;
		if (h[1] == 0)
			return decide(f, 0, 10); /* extended key event */
		if (h[1] == 1) {		 /* audio: u16 operation */
			if (f->rf_hlen < 4)
				return NEED_MORE;
			if (h[3] == 0 || h[3] == 1)
				return decide(f, 1, 0);
			if (h[3] == 2)
				return decide(f, 1, 6);
		}
		return BROKEN;
	default: return BROKEN;
	}
}

static int header(struct rfb_filter *f)
{
	switch (f->rf_state) {
	case RF_VERSION:
		if (f->rf_hlen < 12)
			return NEED_MORE;
		if (memcmp(f->rf_hdr, "RFB 003.", 8) || f->rf_hdr[11] != '\n')
			return BROKEN;
		/* 3.3 has no security-type byte from the client: the server picked VNC
		 * auth. */
		f->rf_state = f->rf_hdr[10] >= '7' || f->rf_hdr[9] != '0' ? RF_SECTYPE : RF_AUTH;
		return decide(f, 1, 0);
	case RF_SECTYPE:
		if (f->rf_hdr[0] != 1 && f->rf_hdr[0] != 2)
			return BROKEN;
		f->rf_state = f->rf_hdr[0] == 2 ? RF_AUTH : RF_INIT;
		return decide(f, 1, 0);
	case RF_AUTH:
		if (f->rf_hlen < 16)
			return NEED_MORE;
		f->rf_state = RF_INIT;
		return decide(f, 1, 0);
	case RF_INIT: f->rf_state = RF_MSG; return decide(f, 1, 0);
	default: return message(f);
	}
}

ssize_t rfb_filter_client(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t i = 0, o = 0;

	while (i < len) {
		int r;

		if (f->rf_remaining) {
			size_t n = len - i < f->rf_remaining ? len - i : (size_t)f->rf_remaining;

			if (f->rf_forward) {
				memcpy(out + o, in + i, n);
				o += n;
			}
			i += n;
			f->rf_remaining -= n;
			continue;
		}
		f->rf_hdr[f->rf_hlen++] = in[i++];
		r = header(f);
		if (r == BROKEN)
			return -EPROTO;
		if (r == DONE) {
			if (f->rf_forward) {
				memcpy(out + o, f->rf_hdr, f->rf_hlen);
				o += f->rf_hlen;
			}
			f->rf_hlen = 0;
		} else if (f->rf_hlen == sizeof(f->rf_hdr)) {
			return -EPROTO;
		}
	}
	return (ssize_t)o;
}
