/* RFB's VNC authentication (RFC 6143 7.2.2) on both sides, without libvncserver: the DES
 * challenge-response (on OpenSSL) that the VNC server's ticket check and the broker's
 * gateway use, and the client side of an RFB 3.8 handshake up to a successful
 * SecurityResult, for a gateway that logs in to a desktop with its stored password. */
#ifndef VDI_DISPLAY_VNC_AUTH_H
#define VDI_DISPLAY_VNC_AUTH_H

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

#endif
