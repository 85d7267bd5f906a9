/* A byte stream over a connected socket, plain or TLS (OpenSSL): what the gateway, the
 * display relay and the TLS front read and write through, so that one copy loop
 * (net/splice.h) serves them all. Non-blocking: a call that cannot go on returns -EAGAIN
 * and stream_events() says what to poll() for. A TLS stream's SSL may be handed from
 * one thread to another (the TLS front's take-over) but is used by one at a time. */
#ifndef VDI_NET_STREAM_H
#define VDI_NET_STREAM_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct stream;

/* The TLS suites every endpoint of the product offers with TLS 1.2: forward-secret
 * (ECDHE) and authenticated encryption (AES-GCM, ChaCha20-Poly1305) only; TLS 1.3's
 * own suites are all AEAD. */
#define STREAM_TLS12_CIPHERS                                                                       \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* A new TLS context for a server or a client with the product's policy: TLS 1.2 or
 * newer, the suites above, no renegotiation, no compression. NULL when OpenSSL fails. */
SSL_CTX *stream_tls_context(bool server);

/* A stream on fd (made non-blocking), over ssl when not NULL (its handshake done, or to
 * be done by the first read or write). The stream owns both. NULL when out of memory
 * (then both are still the caller's). */
struct stream *stream_new(int fd, SSL *ssl);
/* Called by stream_close() after it closed the socket (a counter of open streams). */
void stream_on_close(struct stream *s, void (*fn)(void *arg), void *arg);
int stream_fd(const struct stream *s);
/* The TLS session, NULL for a plain stream. */
SSL *stream_ssl(const struct stream *s);
/* True when bytes are buffered inside TLS: read without waiting for the socket. */
bool stream_pending(const struct stream *s);
/* Returns the bytes read, 0 at the peer's end (close_notify on TLS), -EAGAIN or -EIO (a
 * TLS peer gone without close_notify is one). */
ssize_t stream_read(struct stream *s, void *buf, size_t n);
/* Returns the bytes written (maybe fewer than n), -EAGAIN (then call again, after poll(),
 * with the same bytes at the front and maybe more after them) or -EIO. */
ssize_t stream_write(struct stream *s, const void *buf, size_t n);
/* True after a write returned -EAGAIN and until one goes through. */
bool stream_wants_write(const struct stream *s);
/* The poll() events to wait for before reading (reading) and writing (writing, or a
 * write to repeat): TLS may need to write to read and the other way round. */
short stream_events(const struct stream *s, bool reading, bool writing);
/* Half-close: no more bytes from us (close_notify on TLS, shutdown(SHUT_WR) on a plain
 * socket). */
void stream_shutdown(struct stream *s);
/* Ends TLS (close_notify, best effort, non-blocking), closes the socket, frees. NULL is a
 * no-op. */
void stream_close(struct stream *s);

#endif
