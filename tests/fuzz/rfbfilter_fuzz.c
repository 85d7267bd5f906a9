/* libFuzzer harness for the view-only RFB filter (display/rfbfilter.c). The input is a
 * script of chunks, each a byte (bit 7: from the server, else from the client; low six
 * bits: length) and that many bytes, run twice on fresh filters: once chunk by chunk
 * and once byte by byte, in the same order of client and server. Checked: each call
 * writes no more than len + RFB_FILTER_SLACK bytes (exact-size heap buffers, so ASan
 * sees more) and never more in all than the client sent; both runs forward the same
 * bytes and fail at the same chunk; and an independent parser of what was forwarded
 * (handshake, then client messages) never sees a KeyEvent, PointerEvent,
 * ClientCutText, xvp or QEMU extended key event, nor a message it cannot parse. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "display/rfbfilter.h"
#include "tests/fuzz/rfbfilter_feed.h"

/* The parser of the forwarded stream, which a view-only server would see. */
enum { C_VERSION, C_SECURITY, C_AUTH, C_INIT, C_MSG };

struct checker {
	int state;
	uint8_t hdr[12];
	size_t hlen;
	uint64_t skip; /* body bytes of the current message */
};

static bool modern(const struct rfb_filter *f)
{
	int v = f->rf_client_version < f->rf_server_version ? f->rf_client_version
							    : f->rf_server_version;

	return v >= 3007;
}

/* Length of the body after a complete header of an allowed message; -1 while the
 * header is incomplete. Aborts on a message view-only must never let through. */
static int64_t allowed_body(const uint8_t *h, size_t n)
{
	switch (h[0]) {
	case 0: return 19;
	case 2: return n < 4 ? -1 : 4 * (int64_t)(h[2] << 8 | h[3]);
	case 3: return 9;
	case 150: return 9;
	case 255:
		if (n < 2)
			return -1;
		if (h[1] != 1) /* 0: QEMU extended key event */
			abort();
		if (n < 4)
			return -1;
		if (h[3] == 0 || h[3] == 1)
			return 0;
		if (h[3] == 2)
			return 6;
		abort();
	default: abort(); /* 4 key, 5 pointer, 6 cut text, 248 xvp, or garbage */
	}
}

static void check_byte(struct checker *c, const struct rfb_filter *f, uint8_t b)
{
	int64_t body;

	if (c->skip) {
		c->skip--;
		return;
	}
	switch (c->state) {
	case C_VERSION:
		c->hdr[c->hlen++] = b;
		if (c->hlen < 12)
			return;
		if (memcmp(c->hdr, "RFB ", 4) || c->hdr[7] != '.' || c->hdr[11] != '\n' ||
		    f->rf_client_version < 3000 || f->rf_client_version >= 4000)
			abort();
		c->hlen = 0;
		c->state = C_SECURITY;
		return;
	case C_SECURITY:
		/* the server's security types were seen before the client's answer passed */
		if (!f->rf_server_version)
			abort();
		if (!modern(f)) {
			if (f->rf_chosen != 1 && f->rf_chosen != 2)
				abort();
			c->state = f->rf_chosen == 2 ? C_AUTH : C_INIT;
			check_byte(c, f, b);
			return;
		}
		if ((b != 1 && b != 2) || !(f->rf_offered & 1u << b))
			abort();
		c->state = b == 2 ? C_AUTH : C_INIT;
		return;
	case C_AUTH:
		c->skip = 15; /* this byte and 15 more of the DES response */
		c->state = C_INIT;
		return;
	case C_INIT: c->state = C_MSG; return;
	default:
		c->hdr[c->hlen++] = b;
		body = allowed_body(c->hdr, c->hlen);
		if (body < 0) {
			if (c->hlen == sizeof(c->hdr))
				abort();
			return;
		}
		c->skip = (uint64_t)body;
		c->hlen = 0;
		return;
	}
}

/* View-only mode promises its caller that len + RFB_FILTER_SLACK bytes of output suffice. */
static ssize_t client(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t **collected,
		      size_t *clen)
{
	return feed_client(f, in, len, len + RFB_FILTER_SLACK, collected, clen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfb_filter whole, bytes;
	struct checker chk = {0};
	uint8_t *out_whole = NULL, *out_bytes = NULL;
	size_t len_whole = 0, len_bytes = 0, sent = 0, checked = 0, i = 0;

	rfb_filter_init(&whole);
	rfb_filter_init(&bytes);
	while (i < size) {
		bool from_server = data[i] & 0x80;
		size_t n = data[i] & 0x3f;
		bool fail_whole, fail_bytes = false;

		i++;
		if (n > size - i)
			n = size - i;
		if (from_server) {
			fail_whole = feed_server(&whole, data + i, n) < 0;
			for (size_t k = 0; k < n && !fail_bytes; k++)
				fail_bytes = feed_server(&bytes, data + i + k, 1) < 0;
		} else {
			fail_whole = client(&whole, data + i, n, &out_whole, &len_whole) < 0;
			for (size_t k = 0; k < n && !fail_bytes; k++)
				fail_bytes =
				    client(&bytes, data + i + k, 1, &out_bytes, &len_bytes) < 0;
			sent += n;
		}
		i += n;
		if (fail_whole != fail_bytes)
			abort();
		if (fail_whole)
			break; /* the session ends */
		/* the same bytes passed, and never more than the client sent */
		if (len_whole != len_bytes || len_whole > sent ||
		    (len_whole && memcmp(out_whole, out_bytes, len_whole)))
			abort();
		for (; checked < len_whole; checked++)
			check_byte(&chk, &whole, out_whole[checked]);
	}
	free(out_whole);
	free(out_bytes);
	return 0;
}
