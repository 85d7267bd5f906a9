/* libFuzzer harness for WebSocket framing (web/websocket.c). The first byte picks a small
 * payload limit; the rest is a client byte stream decoded as the gateway does: parse a
 * header, unmask the payload in pieces at running offsets, go on to the next frame. Each
 * parsed header must be sane and parse back the same from websocket_header(). The whole
 * input is also tried as a Sec-WebSocket-Key and, cut in two, as a token list and token. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/websocket.h"

static const uint64_t limits[] = {0, 125, 1024, 70000};

static bool is_control(unsigned opcode)
{
	return opcode >= WEBSOCKET_OP_CLOSE;
}

static void check_frame(const uint8_t *buf, size_t n, uint64_t max, const struct websocket_frame *f)
{
	struct websocket_frame again;
	uint8_t h[WEBSOCKET_HEADER_MAX];
	size_t hl;

	if (f->wf_header_len > WEBSOCKET_HEADER_MAX || f->wf_header_len > n)
		abort();
	if (f->wf_header_len != 6 && f->wf_header_len != 8 && f->wf_header_len != 14)
		abort();
	if (f->wf_len > max || f->wf_len >> 63)
		abort();
	if (f->wf_opcode > WEBSOCKET_OP_BINARY &&
	    (f->wf_opcode < WEBSOCKET_OP_CLOSE || f->wf_opcode > WEBSOCKET_OP_PONG))
		abort();
	if (is_control(f->wf_opcode) && (f->wf_len > 125 || !f->wf_fin))
		abort();
	if (memcmp(f->wf_mask, buf + f->wf_header_len - 4, 4))
		abort();
	/* the header alone parses the same, one byte less asks for more */
	if (websocket_parse(buf, f->wf_header_len, max, &again) != 1 || again.wf_fin != f->wf_fin ||
	    again.wf_opcode != f->wf_opcode || again.wf_len != f->wf_len ||
	    memcmp(again.wf_mask, f->wf_mask, 4) || again.wf_header_len != f->wf_header_len ||
	    websocket_parse(buf, f->wf_header_len - 1, max, &again) != 0)
		abort();
	/* the server's encoding of the same frame, masked, parses to the same frame */
	hl = websocket_header(h, f->wf_opcode, f->wf_len);
	if (hl + 4 > WEBSOCKET_HEADER_MAX || hl + 4 > f->wf_header_len)
		abort();
	if (!f->wf_fin)
		h[0] &= 0x7f;
	h[1] |= 0x80;
	memcpy(h + hl, f->wf_mask, 4);
	if (websocket_parse(h, hl + 4, max, &again) != 1 || again.wf_fin != f->wf_fin ||
	    again.wf_opcode != f->wf_opcode || again.wf_len != f->wf_len ||
	    again.wf_header_len != hl + 4)
		abort();
}

/* Unmasks n bytes at frame offset off in pieces whose sizes come from the bytes, and
 * checks the result against unmasking a copy byte by byte. */
static void unmask_pieces(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
	uint8_t *want = malloc(n ? n : 1);
	size_t done = 0;

	if (!want)
		abort();
	for (size_t i = 0; i < n; i++)
		want[i] = p[i] ^ mask[(off + i) % 4];
	while (done < n) {
		size_t piece = 1 + p[done] % 7;

		if (piece > n - done)
			piece = n - done;
		websocket_unmask(p + done, piece, mask, off + done);
		done += piece;
	}
	if (memcmp(p, want, n))
		abort();
	/* and masking again gives back the input */
	websocket_unmask(p, n, mask, off);
	websocket_unmask(p, n, mask, off);
	if (memcmp(p, want, n))
		abort();
	free(want);
}

static void decode(uint8_t *buf, size_t n, uint64_t max)
{
	size_t pos = 0;

	for (;;) {
		struct websocket_frame f;
		int r = websocket_parse(buf + pos, n - pos, max, &f);
		size_t take;

		if (r == 0) {
			/* no header is longer than WEBSOCKET_HEADER_MAX */
			if (n - pos >= WEBSOCKET_HEADER_MAX)
				abort();
			return;
		}
		if (r == -EPROTO || r == -EMSGSIZE)
			return;
		if (r != 1)
			abort();
		check_frame(buf + pos, n - pos, max, &f);
		pos += f.wf_header_len;
		take = f.wf_len < n - pos ? (size_t)f.wf_len : n - pos;
		if (is_control(f.wf_opcode) && take < f.wf_len)
			return; /* the gateway waits for a whole control frame */
		/* a data payload arrives in two reads: the second unmasks from where the
		 * first stopped */
		unmask_pieces(buf + pos, take / 2, f.wf_mask, 0);
		unmask_pieces(buf + pos + take / 2, take - take / 2, f.wf_mask, take / 2);
		pos += take;
		if (take < f.wf_len)
			return;
	}
}

static void check_key(const char *key)
{
	char out[29];
	int r = websocket_accept_key(key, out);

	if (r == 0 && (strlen(key) != 24 || strlen(out) != 28 || out[27] != '='))
		abort();
	if (r != 0 && r != -EINVAL)
		abort();
}

static void check_tokens(const char *list, const char *token)
{
	size_t tlen = strlen(token);
	bool found = websocket_has_token(list, token);
	char *upper = strdup(token);

	if (!upper)
		abort();
	for (char *s = upper; *s; s++)
		*s = (char)toupper((unsigned char)*s);
	if (websocket_has_token(list, upper) != found)
		abort();
	free(upper);
	/* a token with no comma and no white space at its ends is found in itself */
	if (tlen && !strchr(token, ',') && !strchr(" \t", token[0]) &&
	    !strchr(" \t", token[tlen - 1]) && !websocket_has_token(token, token))
		abort();
	if (websocket_has_token(NULL, token))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	char *text;

	if (size == 0)
		return 0;
	/* an exact-size copy so that reading past the input is caught */
	buf = malloc(size - 1 ? size - 1 : 1);
	text = malloc(size + 2);
	if (!buf || !text)
		abort();
	memcpy(buf, data + 1, size - 1);
	decode(buf, size - 1, limits[data[0] % 4]);

	memcpy(text, data, size);
	text[size] = '\0';
	check_key(text);
	/* the first half as the list, the second as the token */
	memcpy(text, data, size / 2);
	text[size / 2] = '\0';
	memcpy(text + size / 2 + 1, data + size / 2, size - size / 2);
	text[size + 1] = '\0';
	check_tokens(text, text + size / 2 + 1);
	free(text);
	free(buf);
	return 0;
}
