/* WebSocket framing (RFC 6455) for the gateway: the handshake's accept key, parsing the
 * header of a client frame (masked, bounded, control frames small and whole) and writing
 * the header of a server frame. Pure functions on buffers: no sockets, no threads. */
#ifndef VDI_WEB_WEBSOCKET_H
#define VDI_WEB_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBSOCKET_OP_CONT    0x0
#define WEBSOCKET_OP_TEXT    0x1
#define WEBSOCKET_OP_BINARY  0x2
#define WEBSOCKET_OP_CLOSE   0x8
#define WEBSOCKET_OP_PING    0x9
#define WEBSOCKET_OP_PONG    0xa
#define WEBSOCKET_HEADER_MAX 14

struct websocket_frame {
	bool wf_fin;
	unsigned wf_opcode;
	uint64_t wf_len;
	uint8_t wf_mask[4];
	size_t wf_header_len;
};

/* Sec-WebSocket-Accept for key (which must be base64 of 16 bytes). Returns 0, or
 * -EINVAL for a malformed key. */
int websocket_accept_key(const char *key, char out[29]);
/* Parses the header of a client frame from buf (n bytes). Returns 1 with f filled, 0 when
 * more bytes are needed, -EPROTO (unmasked, reserved bits or opcode, a control frame
 * longer than 125 bytes or fragmented) or -EMSGSIZE (payload above max). */
int websocket_parse(const uint8_t *buf, size_t n, uint64_t max, struct websocket_frame *f);
/* Unmasks n payload bytes at payload offset off in place. */
void websocket_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off);
/* Writes an unmasked, final server frame header for len bytes; returns its length. */
size_t websocket_header(uint8_t out[WEBSOCKET_HEADER_MAX], unsigned opcode, uint64_t len);
/* True when the comma-separated header value list holds token (case-insensitive). */
bool websocket_has_token(const char *list, const char *token);

#endif
