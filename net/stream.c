/* Streams over plain sockets and OpenSSL (see stream.h). An SSL call's outcome is kept
 * as the direction it waits for, so that the caller's poll() asks for the right event. */
#include "net/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

SSL_CTX *stream_tls_context(bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		return NULL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, STREAM_TLS12_CIPHERS) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	return ctx;
}

struct stream {
	int s_fd;
	SSL *s_ssl;
	bool s_read_wants_write; /* the last SSL_read needs the socket writable */
	bool s_write_wants_read; /* the last SSL_write needs the socket readable */
	bool s_write_again;	 /* the last write returned -EAGAIN */
	void (*s_on_close)(void *arg);
	void *s_on_close_arg;
};

struct stream *stream_new(int fd, SSL *ssl)
{
	struct stream *s = calloc(1, sizeof(*s));
	int fl = fcntl(fd, F_GETFL);

	if (!s)
		return NULL;
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	s->s_fd = fd;
	s->s_ssl = ssl;
	if (ssl)
		SSL_set_mode(ssl,
			     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return s;
}

void stream_on_close(struct stream *s, void (*fn)(void *arg), void *arg)
{
	s->s_on_close = fn;
	s->s_on_close_arg = arg;
}

int stream_fd(const struct stream *s)
{
	return s->s_fd;
}

SSL *stream_ssl(const struct stream *s)
{
	return s->s_ssl;
}

bool stream_pending(const struct stream *s)
{
	return s->s_ssl && SSL_pending(s->s_ssl) > 0;
}

/* An SSL call's result r as bytes, 0 (the end), -EAGAIN (*wants set when it must wait
 * for the other direction) or -EIO. */
static ssize_t ssl_result(struct stream *s, int r, int other, bool *wants)
{
	int e;

	*wants = false;
	if (r > 0)
		return r;
	e = SSL_get_error(s->s_ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*wants = e == other;
		return -EAGAIN;
	}
	ERR_clear_error(); /* this thread's queue: the next call starts clean */
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	return -EIO;
}

ssize_t stream_read(struct stream *s, void *buf, size_t n)
{
	ssize_t r;

	if (s->s_ssl) {
		return ssl_result(s, SSL_read(s->s_ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n),
				  SSL_ERROR_WANT_WRITE, &s->s_read_wants_write);
	}
	r = recv(s->s_fd, buf, n, 0);
	if (r >= 0)
		return r;
	return errno == EAGAIN || errno == EINTR ? -EAGAIN : -EIO;
}

ssize_t stream_write(struct stream *s, const void *buf, size_t n)
{
	ssize_t r;

	if (s->s_ssl) {
		r = ssl_result(s, SSL_write(s->s_ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n),
			       SSL_ERROR_WANT_READ, &s->s_write_wants_read);
		if (r == 0)
			r = -EIO; /* nothing written is the end, not progress */
	} else {
		r = send(s->s_fd, buf, n, MSG_NOSIGNAL);
		if (r < 0)
			r = errno == EAGAIN || errno == EINTR ? -EAGAIN : -EIO;
	}
	s->s_write_again = r == -EAGAIN;
	return r;
}

bool stream_wants_write(const struct stream *s)
{
	return s->s_write_again;
}

short stream_events(const struct stream *s, bool reading, bool writing)
{
	short ev = 0;

	writing |= s->s_write_again;
	if (reading)
		ev |= s->s_read_wants_write ? POLLOUT : POLLIN;
	if (writing)
		ev |= s->s_write_wants_read ? POLLIN : POLLOUT;
	return ev;
}

void stream_shutdown(struct stream *s)
{
	if (s->s_ssl) {
		SSL_shutdown(s->s_ssl);
		ERR_clear_error();
	} else {
		shutdown(s->s_fd, SHUT_WR);
	}
}

void stream_close(struct stream *s)
{
	if (!s)
		return;
	if (s->s_ssl) {
		/* close_notify, unless the connection failed (it would not arrive) */
		if (!(SSL_get_shutdown(s->s_ssl) & SSL_SENT_SHUTDOWN) &&
		    SSL_is_init_finished(s->s_ssl))
			SSL_shutdown(s->s_ssl);
		ERR_clear_error();
		SSL_free(s->s_ssl);
	}
	close(s->s_fd);
	if (s->s_on_close)
		s->s_on_close(s->s_on_close_arg);
	free(s);
}
