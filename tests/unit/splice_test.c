/* Unit tests for net/splice on plain streams over socketpairs: bytes cross both ways and
 * a side's end ends the splice; a half-closing side's end reaches the other side while
 * the answer still comes back; the filter sees (and may change) what a side sends; the
 * idle deadline ends a silent splice. And net/stream over OpenSSL: 4 MiB each way
 * between a TLS side and a plain one with small socket buffers (partial writes, writes
 * to repeat), then close_notify as the TLS peer's end. */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/splice.h"

struct rig {
	int r_peer[2]; /* the test's ends: the client's, the server's */
	struct splice r_sp;
	uint8_t r_buf[2][4096], r_in[4096];
	pthread_t r_thread;
	int r_end;
};

static void *run(void *arg)
{
	struct rig *r = arg;

	r->r_end = splice_run(&r->r_sp);
	return NULL;
}

static void rig_start(struct rig *r, unsigned flags0)
{
	int a[2], b[2];

	memset(r, 0, sizeof(*r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	r->r_peer[0] = a[0];
	r->r_peer[1] = b[0];
	for (int i = 0; i < 2; i++) {
		r->r_sp.sp_side[i].sd_stream = stream_new(i ? b[1] : a[1], NULL);
		r->r_sp.sp_side[i].sd_out = r->r_buf[i];
		r->r_sp.sp_side[i].sd_out_size = sizeof(r->r_buf[i]);
	}
	r->r_sp.sp_side[0].sd_flags = flags0;
	r->r_sp.sp_stop_fd = -1;
	r->r_sp.sp_tick_ms = -1;
	r->r_sp.sp_arg = r;
}

static void rig_go(struct rig *r)
{
	assert_int_equal(pthread_create(&r->r_thread, NULL, run, r), 0);
}

static int rig_wait(struct rig *r)
{
	pthread_join(r->r_thread, NULL);
	for (int i = 0; i < 2; i++) {
		stream_close(r->r_sp.sp_side[i].sd_stream);
		close(r->r_peer[i]);
	}
	return r->r_end;
}

static void expect(int fd, const char *text)
{
	char buf[64] = "";

	assert_int_equal(recv(fd, buf, strlen(text), MSG_WAITALL), (ssize_t)strlen(text));
	assert_string_equal(buf, text);
}

static void test_both_ways_then_end(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 0);
	rig_go(&r);
	assert_int_equal(write(r.r_peer[0], "hello", 5), 5);
	expect(r.r_peer[1], "hello");
	assert_int_equal(write(r.r_peer[1], "world", 5), 5);
	expect(r.r_peer[0], "world");
	shutdown(r.r_peer[0], SHUT_WR);
	assert_int_equal(rig_wait(&r), SPLICE_EOF);
	assert_int_equal(r.r_sp.sp_end_side, 0);
	assert_int_equal(r.r_sp.sp_side[0].sd_read, 5);
	assert_int_equal(r.r_sp.sp_side[0].sd_written, 5);
}

static void test_half_close(void **state)
{
	struct rig r;
	char c;

	(void)state;
	rig_start(&r, SPLICE_HALF_CLOSE | SPLICE_DRAIN);
	rig_go(&r);
	assert_int_equal(write(r.r_peer[0], "request", 7), 7);
	shutdown(r.r_peer[0], SHUT_WR);
	expect(r.r_peer[1], "request");
	assert_int_equal(read(r.r_peer[1], &c, 1), 0); /* the end, passed on */
	assert_int_equal(write(r.r_peer[1], "answer", 6), 6);
	shutdown(r.r_peer[1], SHUT_WR);
	expect(r.r_peer[0], "answer");
	assert_int_equal(rig_wait(&r), SPLICE_EOF);
	assert_int_equal(r.r_sp.sp_end_side, 1);
}

static ssize_t upper(struct splice *sp, int from, uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		in[i] = (uint8_t)toupper(in[i]);
	if (memchr(in, '!', n))
		return -1;
	return splice_put(sp, 1 - from, in, n) ? (ssize_t)n : 0;
}

static void test_filter(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 0);
	r.r_sp.sp_filter = upper;
	r.r_sp.sp_side[0].sd_in = r.r_in;
	r.r_sp.sp_side[0].sd_in_size = sizeof(r.r_in);
	rig_go(&r);
	assert_int_equal(write(r.r_peer[0], "quiet", 5), 5);
	expect(r.r_peer[1], "QUIET");
	assert_int_equal(write(r.r_peer[0], "loud!", 5), 5);
	assert_int_equal(rig_wait(&r), SPLICE_FILTER);
}

static void test_idle(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 0);
	r.r_sp.sp_idle_ms = 50;
	rig_go(&r);
	assert_int_equal(rig_wait(&r), SPLICE_IDLE);
}

/* A TLS server context with a fresh self-signed P-256 certificate. */
static SSL_CTX *server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	assert_non_null(ctx);
	assert_non_null(key);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

#define BULK (4u << 20)

struct tls_peer {
	SSL *tp_ssl;
	uint8_t *tp_got;
	size_t tp_len;
};

/* The TLS client on the far side, non-blocking: sends BULK bytes while reading what
 * comes back, then sends close_notify. */
static void *tls_client(void *arg)
{
	struct tls_peer *p = arg;
	uint8_t *out = malloc(BULK);
	size_t sent = 0;
	int fd = SSL_get_fd(p->tp_ssl), r;

	assert_non_null(out);
	for (size_t i = 0; i < BULK; i++)
		out[i] = (uint8_t)(i * 7);
	SSL_set_mode(p->tp_ssl,
		     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	while ((r = SSL_connect(p->tp_ssl)) != 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};

		assert_true(SSL_get_error(p->tp_ssl, r) == SSL_ERROR_WANT_READ ||
			    SSL_get_error(p->tp_ssl, r) == SSL_ERROR_WANT_WRITE);
		poll(&pfd, 1, 100);
	}
	while (sent < BULK || p->tp_len < BULK) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		bool moved = false;

		if (sent < BULK) {
			r = SSL_write(p->tp_ssl, out + sent,
				      BULK - sent > 16384 ? 16384 : (int)(BULK - sent));
			if (r > 0) {
				sent += (size_t)r;
				moved = true;
			}
			pfd.events |= POLLOUT;
		}
		r = SSL_read(p->tp_ssl, p->tp_got + p->tp_len, (int)(BULK - p->tp_len));
		if (r > 0) {
			p->tp_len += (size_t)r;
			moved = true;
		}
		if (!moved)
			poll(&pfd, 1, 100);
	}
	for (int i = 0; i < 100 && SSL_shutdown(p->tp_ssl) < 0; i++)
		usleep(1000);
	free(out);
	return NULL;
}

/* The plain peer: echoes what it reads until the splice ends it. */
static void *echo(void *arg)
{
	int fd = *(int *)arg;
	uint8_t buf[8192];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
	return NULL;
}

static void test_tls(void **state)
{
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct tls_peer peer = {.tp_got = malloc(BULK)};
	static uint8_t to_tls[65536], to_plain[65536];
	struct splice sp = {.sp_stop_fd = -1, .sp_tick_ms = -1};
	int a[2], b[2], small = 4096;
	pthread_t tc, te;
	SSL *server;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	setsockopt(a[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	peer.tp_ssl = SSL_new(cctx);
	SSL_set_fd(peer.tp_ssl, a[0]);
	fcntl(a[0], F_SETFL, O_NONBLOCK);
	server = SSL_new(sctx);
	SSL_set_fd(server, a[1]);
	SSL_set_accept_state(server); /* the handshake happens in the first reads and writes */
	sp.sp_side[0] = (struct splice_side){
	    .sd_stream = stream_new(a[1], server), .sd_out = to_tls, .sd_out_size = sizeof(to_tls)};
	sp.sp_side[1] = (struct splice_side){.sd_stream = stream_new(b[1], NULL),
					     .sd_flags = SPLICE_DRAIN,
					     .sd_out = to_plain,
					     .sd_out_size = sizeof(to_plain)};
	assert_int_equal(pthread_create(&tc, NULL, tls_client, &peer), 0);
	assert_int_equal(pthread_create(&te, NULL, echo, &b[0]), 0);
	assert_int_equal(splice_run(&sp), SPLICE_EOF);
	assert_int_equal(sp.sp_end_side, 0); /* close_notify */
	pthread_join(tc, NULL);
	assert_int_equal(peer.tp_len, BULK);
	for (size_t i = 0; i < BULK; i++)
		if (peer.tp_got[i] != (uint8_t)(i * 7))
			fail_msg("byte %zu differs", i);
	stream_close(sp.sp_side[0].sd_stream);
	stream_close(sp.sp_side[1].sd_stream); /* the echo sees its end */
	pthread_join(te, NULL);
	close(b[0]);
	SSL_free(peer.tp_ssl);
	close(a[0]);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	free(peer.tp_got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_ways_then_end),
	    cmocka_unit_test(test_half_close),
	    cmocka_unit_test(test_filter),
	    cmocka_unit_test(test_idle),
	    cmocka_unit_test(test_tls),
	};
	return cmocka_run_group_tests_name("splice", tests, NULL, NULL);
}
