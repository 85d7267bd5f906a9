/* libFuzzer harness for the relay's keys mode (display/rfbfilter.c in RFB_FILTER_KEYS
 * with display/rfbkeys.c). The input is a script of chunks as in rfbfilter_fuzz.c (a
 * byte: bit 7 from the server, else from the client, low six bits the length; then that
 * many bytes), run twice on fresh filters: chunk by chunk and byte by byte. Checked:
 * keys mode never fails; each call writes no more than RFB_FILTER_OUT_MAX(len) bytes
 * (exact-size heap buffers, so ASan sees more); both runs send on the same bytes; and
 * when the stream was followed to the end (no pass-through), a parser of what was sent
 * on finds whole messages only, every key that needs Shift on a US layout going down
 * with Shift held, every one typed without Shift going down with none (letters the
 * other way round while the Caps Lock presses sent on leave it on), and the Shift
 * keys held at the end those the filter believes the server holds. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "display/keymap.h"
#include "display/rfbfilter.h"
#include "lib/be.h"
#include "tests/fuzz/rfbfilter_feed.h"

#define XK_SHIFT_L   0xffe1
#define XK_SHIFT_R   0xffe2
#define XK_CAPS_LOCK 0xffe5

static bool modern(const struct rfb_filter *f)
{
	int v = f->rf_client_version < f->rf_server_version ? f->rf_client_version
							    : f->rf_server_version;

	return v >= 3007;
}

/* Length of a whole client message at p (n bytes left), or -1 if it does not fit. */
static int64_t message_len(const uint8_t *p, size_t n)
{
	int32_t cut;

	if (n < 1)
		return -1;
	switch (p[0]) {
	case 0: return 20;
	case 2: return n < 4 ? -1 : 4 + 4 * (int64_t)(p[2] << 8 | p[3]);
	case 3: return 10;
	case 4: return 8;
	case 5: return 6;
	case 6:
		if (n < 8)
			return -1;
		cut = (int32_t)be32_get(p + 4);
		return 8 + (cut < 0 ? -(int64_t)cut : (int64_t)cut);
	case 150: return 10;
	case 250: return 4;
	case 251: return n < 8 ? -1 : 8 + 16 * (int64_t)p[6];
	case 255:
		if (n < 2)
			return -1;
		if (p[1] == 0)
			return 12;
		if (n < 4)
			return -1;
		return p[3] == 2 ? 10 : 4;
	default: abort(); /* the filter passed what it did not know without pass-through */
	}
}

/* What was sent on, the stream having been followed to its end. */
static void check_output(const struct rfb_filter *f, const uint8_t *o, size_t len)
{
	unsigned shift = 0;
	bool caps = false; /* Caps Lock, as the Caps Lock presses sent on tell */
	size_t i = 0;

	if (!f->rf_client_version)
		return;
	i = 12; /* the client's version */
	if (f->rf_state == 1 /* RF_SECURITY */)
		return;
	if (modern(f)) {
		if (i >= len)
			abort();
		if (o[i++] == 2)
			i += 16;
	} else if (f->rf_chosen == 2) {
		i += 16;
	}
	i++; /* ClientInit */
	while (i < len) {
		int64_t m = message_len(o + i, len - i);

		if (m < 0 || (uint64_t)m > len - i) {
			/* a message cut off: only the last one, still coming */
			if (f->rf_hlen == 0 && f->rf_remaining == 0)
				abort();
			return;
		}
		if (o[i] == 4) {
			uint32_t ks = be32_get(o + i + 4);
			unsigned bit = ks == XK_SHIFT_L ? 1 : ks == XK_SHIFT_R ? 2 : 0;
			enum keymap_level level = keymap_keysym_level(ks);

			if (caps && ((ks >= 'A' && ks <= 'Z') || (ks >= 'a' && ks <= 'z')))
				level = level == KEYMAP_LEVEL_SHIFT ? KEYMAP_LEVEL_PLAIN
								    : KEYMAP_LEVEL_SHIFT;
			if (ks == XK_CAPS_LOCK && o[i + 1])
				caps = !caps;
			if (bit && o[i + 1])
				shift |= bit;
			else if (bit)
				shift &= ~bit;
			else if (o[i + 1] && level == KEYMAP_LEVEL_SHIFT && !shift)
				abort();
			else if (o[i + 1] && level == KEYMAP_LEVEL_PLAIN && shift)
				abort();
		} else if (o[i] == 255 && o[i + 1] == 0) {
			uint32_t sc = be32_get(o + i + 8);
			bool down = o[i + 2] | o[i + 3];
			unsigned bit = sc == 0x2a ? 1 : sc == 0x36 ? 2 : 0;

			if (be32_get(o + i + 4) == XK_CAPS_LOCK && down)
				caps = !caps;
			if (bit && down)
				shift |= bit;
			else if (bit)
				shift &= ~bit;
		}
		i += (size_t)m;
	}
	if (f->rf_hlen == 0 && f->rf_remaining == 0 && shift != f->rf_keys.rk_server)
		abort();
}

/* Keys mode passes what it cannot follow: it never refuses a stream. */
static void client(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t **collected,
		   size_t *clen)
{
	if (feed_client(f, in, len, RFB_FILTER_OUT_MAX(len), collected, clen) < 0)
		abort();
}

static void server(struct rfb_filter *f, const uint8_t *in, size_t len)
{
	if (feed_server(f, in, len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfb_filter whole, bytes;
	uint8_t *out_whole = NULL, *out_bytes = NULL;
	size_t len_whole = 0, len_bytes = 0, i = 0;

	rfb_filter_init_mode(&whole, RFB_FILTER_KEYS);
	rfb_filter_init_mode(&bytes, RFB_FILTER_KEYS);
	while (i < size) {
		bool from_server = data[i] & 0x80;
		size_t n = data[i] & 0x3f;

		i++;
		if (n > size - i)
			n = size - i;
		if (from_server) {
			server(&whole, data + i, n);
			for (size_t k = 0; k < n; k++)
				server(&bytes, data + i + k, 1);
		} else if (n) { /* a call without bytes may send on what was held back */
			client(&whole, data + i, n, &out_whole, &len_whole);
			for (size_t k = 0; k < n; k++)
				client(&bytes, data + i + k, 1, &out_bytes, &len_bytes);
		}
		i += n;
		if (len_whole != len_bytes ||
		    (len_whole && memcmp(out_whole, out_bytes, len_whole)))
			abort();
	}
	if (whole.rf_passthrough != bytes.rf_passthrough)
		abort();
	if (!whole.rf_passthrough)
		check_output(&whole, out_whole, len_whole);
	free(out_whole);
	free(out_bytes);
	return 0;
}
