/* TLS in front of the HTTP layer: accepts TCP connections on a listening socket, does the
 * TLS handshake (OpenSSL, TLS 1.2 or 1.3; a client certificate required and verified
 * when a trust list is given) in a thread per connection, then hands the plain side over
 * as one end of a socketpair and forwards bytes both ways with 64 KiB buffers
 * (net/splice.h). An upgraded connection (WebSocket, vdi-tunnel) is taken over: its TLS
 * stream (net/stream.h) goes to the code that speaks the new protocol, with no thread or
 * copy between. libmicrohttpd 0.9.75 does TLS
 * itself too, but forwards upgraded TLS connections through an 8-byte buffer (its memory
 * pool is spent on the response header by then), which crawls at 1 MB/s. */
#ifndef VDI_WEB_TLS_FRONT_H
#define VDI_WEB_TLS_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "net/stream.h"

struct tls_front;

#define TLS_FRONT_MAX_PER_ADDRESS   64
#define TLS_FRONT_REQUEST_TIMEOUT_S 30

struct tls_front_config {
	int tf_listen_fd; /* bound and listening; the front owns it from now on */
	const char *tf_cert_pem, *tf_key_pem;
	const char *tf_trust_pem; /* non-NULL: clients must present a certificate it signed */
	/* With a trust list, non-NULL: the client certificate's name (its subject CN,
	 * net/tlsname.h) must also be this one; others are refused after the handshake,
	 * with a log line naming the certificate. hostd lets in the broker only. */
	const char *tf_client_name;
	/* Connections in their TLS handshake, and connections past it, each at most this
	 * many; taken streams count among the latter. */
	unsigned tf_max_connections;
	/* Connections (handshaking or forwarding) from one client address; 0: the default.
	 * A taken stream (authenticated by its upgrade) no longer counts for its address. */
	unsigned tf_max_per_address;
	unsigned tf_handshake_timeout; /* seconds */
	/* Seconds a client may go on sending what has no answer yet (a request's headers and
	 * body); 0: the default. */
	unsigned tf_request_timeout;
	const char *tf_name; /* for log lines */
	/* (the strings are copied or used by tls_front_start() only) */
	/* Takes the plain side of a new connection (closes it on failure too). Returns 0, or
	 * -errno to drop the connection. */
	int (*tf_hand_over)(void *arg, int fd, const struct sockaddr *peer, socklen_t len);
	void *tf_arg;
};

/* Starts accepting. Returns the front, or NULL with the reason in err (the listening
 * socket is closed then). */
struct tls_front *tls_front_start(const struct tls_front_config *cfg, char *err, size_t errlen);
/* Stops accepting, ends every connection and waits for their threads and for every taken
 * stream to be closed. NULL is a no-op. */
void tls_front_stop(struct tls_front *f);

/* After the HTTP layer answered an upgrade on http_fd (its end of the socketpair), takes
 * the connection over: the forwarding thread sends the answer, stops and hands over its
 * TLS stream, so that the upgraded protocol runs on the client's socket with no thread
 * or copy between. *early gets what the client sent after its request that the HTTP
 * layer did not read (malloc'd, *n bytes). Returns the stream (stream_close() ends TLS
 * with close_notify and gives the connection's place back), or NULL (the connection is
 * gone or did not hand over within 5 s; then it is closed). */
struct stream *tls_front_take(struct tls_front *f, int http_fd, uint8_t **early, size_t *n);

/* The name (subject CN) of the verified client certificate of the connection whose HTTP
 * layer end is http_fd, into buf. Returns 0, or -ENOENT when the connection is gone or
 * its client presented no verified certificate with a readable name. */
int tls_front_client_name(struct tls_front *f, int http_fd, char *buf, size_t len);

#endif
