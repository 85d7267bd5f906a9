/* TLS in front of the HTTP layer: accepts TCP connections on a listening socket, does the
 * TLS handshake (GnuTLS; a client certificate required and verified when a trust list is
 * given) in a thread per connection, then hands the plain side over as one end of a
 * socketpair and forwards bytes both ways with 64 KiB buffers. libmicrohttpd 0.9.75 does
 * TLS itself too, but forwards upgraded TLS connections through an 8-byte buffer (its
 * memory pool is spent on the response header by then), which crawls at 1 MB/s. */
#ifndef VDI_WEB_TLS_FRONT_H
#define VDI_WEB_TLS_FRONT_H

#include <stddef.h>
#include <sys/socket.h>

struct tls_front;

struct tls_front_config {
	int tf_listen_fd; /* bound and listening; the front owns it from now on */
	const char *tf_cert_pem, *tf_key_pem;
	const char *tf_trust_pem; /* non-NULL: clients must present a certificate it signed */
	const char *tf_priorities;
	unsigned tf_max_connections;
	unsigned tf_handshake_timeout; /* seconds */
	const char *tf_name;	       /* for log lines */
	/* (the strings are copied or used by tls_front_start() only) */
	/* Takes the plain side of a new connection (closes it on failure too). Returns 0, or
	 * -errno to drop the connection. */
	int (*tf_hand_over)(void *arg, int fd, const struct sockaddr *peer, socklen_t len);
	void *tf_arg;
};

/* Starts accepting. Returns the front, or NULL with the reason in err (the listening
 * socket is closed then). */
struct tls_front *tls_front_start(const struct tls_front_config *cfg, char *err, size_t errlen);
/* Stops accepting, ends every connection and waits for their threads. NULL is a no-op. */
void tls_front_stop(struct tls_front *f);

#endif
