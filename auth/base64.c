/* Base64 without padding for hash strings and tokens: a table-driven encoder and a
 * decoder that accepts exactly one spelling of each byte string. */
#include "auth/base64.h"

#include <errno.h>
#include <stdint.h>

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int base64_encode(const void *in, size_t n, bool url, char *out, size_t outlen)
{
	const char *abc = url ? url_alphabet : std_alphabet;
	const uint8_t *p = in;
	size_t need = BASE64_ENCODED_LEN(n), o = 0, i;

	if (n > (size_t)INT32_MAX / 2 || need + 1 > outlen)
		return -ENOSPC;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
	}
	out[o] = '\0';
	return (int)o;
}

static int sextet(char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t len, bool url, void *out, size_t outlen)
{
	uint8_t *o = out;
	size_t need, w = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1 || len > (size_t)INT32_MAX)
		return -EINVAL;
	need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (need > outlen)
		return -ENOSPC;
	for (size_t i = 0; i < len; i++) {
		int v = sextet(in[i], url);

		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[w++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -EINVAL; /* unused trailing bits must be zero */
	return (int)w;
}
