/* RFB's VNC authentication (RFC 6143 7.2.2) on both sides, without libvncserver: the DES
 * challenge-response (on OpenSSL) that the VNC server's ticket check and the broker's
 * gateway use; the client side of an RFB 3.8 handshake up to a successful
 * SecurityResult, for a gateway that logs in to a desktop with its stored password; and
 * the server side, fed bytes as they come, for a gateway that asks its own client for a
 * password (the ticket) before splicing it to a desktop it logged in to. */
#ifndef VDI_DISPLAY_VNC_AUTH_H
#define VDI_DISPLAY_VNC_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define VNC_AUTH_CHALLENGE_SIZE 16

/* The response to challenge: each of its two 8-byte blocks DES-encrypted with the first 8
 * bytes of password (zero-padded), whose bits VNC reverses in each byte. Returns 0, or
 * -EIO when OpenSSL fails (out is zeroed then). */
int vnc_auth_response(uint8_t out[VNC_AUTH_CHALLENGE_SIZE],
		      const uint8_t challenge[VNC_AUTH_CHALLENGE_SIZE], const char *password);
/* RFB 3.8 handshake as a client on the blocking socket fd (its timeouts are the caller's)
 * up to a successful SecurityResult: VNC authentication with password when the server
 * offers it and password is not NULL, else security type None. Returns 0, -EPROTO for a
 * broken or unsupported handshake, -EACCES when the server refused the password. */
int vnc_auth_login(int fd, const char *password);

/* ---- the server side ---- */

#define VNC_AUTH_SERVER_IN  29 /* ProtocolVersion (12), security type (1), response (16) */
#define VNC_AUTH_SERVER_OUT 64 /* the most one step answers */

enum vnc_auth_step {
	VNC_AUTH_MORE,	  /* go on feeding */
	VNC_AUTH_OK,	  /* SecurityResult OK sent: RFB goes on with ClientInit */
	VNC_AUTH_REFUSED, /* a wrong password: the failure and its reason sent; close */
	VNC_AUTH_BROKEN	  /* not RFB 3.x asking for VNC authentication: close */
};

struct vnc_auth_server {
	uint8_t vs_in[VNC_AUTH_SERVER_IN];
	size_t vs_got;
	uint8_t vs_challenge[VNC_AUTH_CHALLENGE_SIZE];
	char vs_password[9]; /* the 8 bytes that count */
};

/* Starts the handshake for password: a random challenge. The greeting to send first is
 * VNC_AUTH_GREETING. Returns 0, or -EIO without randomness. */
#define VNC_AUTH_GREETING     "RFB 003.008\n"
#define VNC_AUTH_GREETING_LEN 12
int vnc_auth_server_init(struct vnc_auth_server *vs, const char *password);
/* Takes what the client sent, up to the next step of the handshake: returns how many of
 * the n bytes it took, with *out_len bytes to send the client in out (room for
 * VNC_AUTH_SERVER_OUT) and the step reached. The password is wiped once used. */
size_t vnc_auth_server_feed(struct vnc_auth_server *vs, const uint8_t *in, size_t n, uint8_t *out,
			    size_t *out_len, enum vnc_auth_step *step);

#endif
