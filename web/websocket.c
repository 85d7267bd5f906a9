/* WebSocket framing (RFC 6455 section 5) and the handshake key (section 4.2.2). The
 * gateway owns the connection; this file only reads and writes frame headers. */
#include "web/websocket.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int websocket_accept_key(const char *key, char out[29])
{
	unsigned char raw[20], digest[SHA_DIGEST_LENGTH];
	char joined[24 + sizeof(GUID)];

	/* EVP_DecodeBlock reads '=' as 'A' wherever it is: padding only at the end */
	if (!key || strlen(key) != 24 || strcspn(key, "=") != 22 || key[23] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
		return -EINVAL;
	memcpy(joined, key, 24);
	memcpy(joined + 24, GUID, sizeof(GUID));
	SHA1((const unsigned char *)joined, strlen(joined), digest);
	EVP_EncodeBlock((unsigned char *)out, digest, sizeof(digest));
	return 0;
}

int websocket_parse(const uint8_t *buf, size_t n, uint64_t max, struct websocket_frame *f)
{
	size_t need = 2;
	uint64_t len;

	if (n < 2)
		return 0;
	f->wf_fin = buf[0] & 0x80;
	f->wf_opcode = buf[0] & 0x0f;
	if (buf[0] & 0x70)
		return -EPROTO;
	if (f->wf_opcode > WEBSOCKET_OP_BINARY &&
	    (f->wf_opcode < WEBSOCKET_OP_CLOSE || f->wf_opcode > WEBSOCKET_OP_PONG))
		return -EPROTO;
	if (!(buf[1] & 0x80))
		return -EPROTO;
	len = buf[1] & 0x7f;
	if (len == 126)
		need += 2;
	else if (len == 127)
		need += 8;
	if (n < need + 4)
		return 0;
	if (len == 126) {
		len = (uint64_t)buf[2] << 8 | buf[3];
	} else if (len == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | buf[2 + i];
		if (len >> 63)
			return -EPROTO;
	}
	if (f->wf_opcode >= WEBSOCKET_OP_CLOSE && (len > 125 || !f->wf_fin))
		return -EPROTO;
	if (len > max)
		return -EMSGSIZE;
	f->wf_len = len;
	memcpy(f->wf_mask, buf + need, 4);
	f->wf_header_len = need + 4;
	return 1;
}

void websocket_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] ^= mask[(off + i) & 3];
}

size_t websocket_header(uint8_t out[WEBSOCKET_HEADER_MAX], unsigned opcode, uint64_t len)
{
	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

bool websocket_has_token(const char *list, const char *token)
{
	size_t tlen = strlen(token);

	while (list && *list) {
		size_t n;

		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		n = strcspn(list, ",");
		while (n && (list[n - 1] == ' ' || list[n - 1] == '\t'))
			n--;
		if (n == tlen && !strncasecmp(list, token, n))
			return true;
		list += strcspn(list, ",");
	}
	return false;
}
