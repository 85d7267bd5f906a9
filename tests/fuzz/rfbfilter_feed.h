/* Shared by the rfbfilter fuzz targets: one call into the filter as the gateway and the
 * relay make it, on a copy of the input of its own size (so that ASan sees a read past
 * it) and an output buffer of exactly the room the caller promises. Aborts on a result
 * the filter's contract rules out; the target decides what else is a failure. */
#ifndef VDI_FUZZ_RFBFILTER_FEED_H
#define VDI_FUZZ_RFBFILTER_FEED_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "display/rfbfilter.h"

/* Client bytes through f into an output of room bytes; what comes out is appended to
 * *collected (*clen bytes). Returns rfb_filter_client()'s result: a count or -EPROTO. */
static ssize_t feed_client(struct rfb_filter *f, const uint8_t *in, size_t len, size_t room,
			   uint8_t **collected, size_t *clen)
{
	uint8_t *out = malloc(room);
	uint8_t *copy = malloc(len ? len : 1);
	ssize_t r;

	if (!out || !copy)
		abort();
	memcpy(copy, in, len);
	r = rfb_filter_client(f, copy, len, out);
	if (r != -EPROTO && (r < 0 || (size_t)r > room))
		abort();
	if (r > 0) {
		uint8_t *p = realloc(*collected, *clen + (size_t)r);

		if (!p)
			abort();
		memcpy(p + *clen, out, (size_t)r);
		*collected = p;
		*clen += (size_t)r;
	}
	free(copy);
	free(out);
	return r;
}

/* Server bytes through f. Returns 0 or -EPROTO. */
static int feed_server(struct rfb_filter *f, const uint8_t *in, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	if (!copy)
		abort();
	memcpy(copy, in, len);
	r = rfb_filter_server(f, copy, len);
	if (r != 0 && r != -EPROTO)
		abort();
	free(copy);
	return r;
}

#endif
