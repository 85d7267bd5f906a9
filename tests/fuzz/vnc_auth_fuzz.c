/* libFuzzer harness for the server side of VNC authentication (display/vnc_auth.c). The
 * first byte gives the password's length (low four bits), whether the harness puts the
 * right DES response in the client's stream (bit 4) and how to split the stream (the
 * rest); then the password, then what the client sends. The stream is fed three ways to
 * fresh servers with the same challenge: whole, in pieces whose sizes come from the
 * input, and a byte at a time. Checked: every way takes the same bytes, answers the same
 * bytes in order and ends at the same step; no answer exceeds VNC_AUTH_SERVER_OUT
 * (exact-size buffers); the answers are the security types, the challenge, then
 * SecurityResult; OK comes only for "RFB 003.", type 2 and the right response (the
 * harness's own vnc_auth_response(), which only the first 8 password bytes change); the
 * password is wiped once used. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "display/vnc_auth.h"

struct result {
	uint8_t out[256];
	size_t out_len, taken;
	enum vnc_auth_step step;
};

/* Feeds in[0..n) in pieces of sizes from split() until the handshake ends. */
static void run(struct vnc_auth_server *vs, const uint8_t *in, size_t n, int mode,
		const uint8_t *sizes, size_t nsizes, struct result *res)
{
	size_t pos = 0, k = 0;

	memset(res, 0, sizeof(*res));
	res->step = VNC_AUTH_MORE;
	while (pos < n && res->step == VNC_AUTH_MORE) {
		size_t piece = mode == 0   ? n - pos
			       : mode == 1 ? (size_t)1
					   : (size_t)(1 + sizes[k++ % nsizes] % 13);
		uint8_t *copy, *out = malloc(VNC_AUTH_SERVER_OUT);
		size_t out_len = 12345, took;

		if (piece > n - pos)
			piece = n - pos;
		copy = malloc(piece);
		if (!copy || !out)
			abort();
		memcpy(copy, in + pos, piece);
		took = vnc_auth_server_feed(vs, copy, piece, out, &out_len, &res->step);
		if (took > piece || out_len > VNC_AUTH_SERVER_OUT ||
		    res->out_len + out_len > sizeof(res->out))
			abort();
		/* a step that takes nothing must end the handshake, or the caller spins */
		if (took == 0 && res->step == VNC_AUTH_MORE)
			abort();
		memcpy(res->out + res->out_len, out, out_len);
		res->out_len += out_len;
		pos += took;
		free(copy);
		free(out);
	}
	res->taken = pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t refused[] = "\0\0\0\1\0\0\0\x16wrong or expired ticket";
	struct vnc_auth_server vs[3];
	struct result res[3];
	uint8_t want[16], again[16], *stream;
	char password[16] = {0}, first8[9] = {0};
	size_t plen, n;
	bool right;

	if (size < 1)
		return 0;
	plen = data[0] & 15;
	right = data[0] & 16;
	if (plen > size - 1)
		plen = size - 1;
	memcpy(password, data + 1, plen);
	n = size - 1 - plen;
	stream = malloc(n ? n : 1);
	if (!stream)
		abort();
	memcpy(stream, data + 1 + plen, n);

	for (int i = 0; i < 3; i++) {
		if (vnc_auth_server_init(&vs[i], password) != 0)
			abort();
		if (i)
			memcpy(vs[i].vs_challenge, vs[0].vs_challenge, VNC_AUTH_CHALLENGE_SIZE);
	}
	/* the expected response; a password counts for its first 8 bytes only */
	memcpy(first8, password, 8);
	if (vnc_auth_response(want, vs[0].vs_challenge, password) != 0 ||
	    vnc_auth_response(again, vs[0].vs_challenge, first8) != 0 || memcmp(want, again, 16))
		abort();
	if (right && n > 13)
		memcpy(stream + 13, want, n - 13 < 16 ? n - 13 : 16);

	for (int i = 0; i < 3; i++)
		run(&vs[i], stream, n, i, data, size, &res[i]);
	for (int i = 1; i < 3; i++)
		if (res[i].step != res[0].step || res[i].taken != res[0].taken ||
		    res[i].out_len != res[0].out_len ||
		    memcmp(res[i].out, res[0].out, res[0].out_len))
			abort();

	/* what was answered, in order */
	const struct result *r = &res[0];
	size_t expect = r->taken < 12 ? 0 : r->taken < 13 ? 2 : r->taken < 29 ? 18 : 0;
	bool version_ok = n >= 12 && !memcmp(stream, "RFB 003.", 8);
	bool type_ok = n >= 13 && stream[12] == 2;

	if (r->taken > VNC_AUTH_SERVER_IN || r->taken > n)
		abort();
	if (r->taken >= 12 && (r->out_len < 2 || memcmp(r->out, "\x01\x02", 2)))
		abort();
	switch (r->step) {
	case VNC_AUTH_MORE:
		if (r->taken != n || r->out_len != expect)
			abort();
		if (r->out_len == 18 && memcmp(r->out + 2, vs[0].vs_challenge, 16))
			abort();
		break;
	case VNC_AUTH_BROKEN:
		if (r->taken != 13 || r->out_len != 2 || (version_ok && type_ok))
			abort();
		break;
	case VNC_AUTH_OK:
	case VNC_AUTH_REFUSED:
		if (r->taken != 29 || !version_ok || !type_ok ||
		    memcmp(r->out + 2, vs[0].vs_challenge, 16))
			abort();
		if ((r->step == VNC_AUTH_OK) != !memcmp(stream + 13, want, 16))
			abort();
		if (r->step == VNC_AUTH_OK &&
		    (r->out_len != 22 || memcmp(r->out + 18, "\0\0\0\0", 4)))
			abort();
		if (r->step == VNC_AUTH_REFUSED &&
		    (r->out_len != 18 + sizeof(refused) - 1 ||
		     memcmp(r->out + 18, refused, sizeof(refused) - 1)))
			abort();
		for (int i = 0; i < 3; i++)
			for (size_t k = 0; k < sizeof(vs[i].vs_password); k++)
				if (vs[i].vs_password[k])
					abort();
		break;
	default: abort();
	}
	free(stream);
	return 0;
}
