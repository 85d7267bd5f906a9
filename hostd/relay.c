/* Display relay: an accept thread, then per session a thread that does the TLS
 * handshake and reads the ticket line under one deadline, redeems the ticket,
 * connects the VNC unix socket and splices the two on net/splice.h, 64 KiB each
 * way, what the client sends through display/rfbfilter.h when view only (input
 * dropped) or when the desktop runs on QEMU (Shift synthesised for keysyms that
 * need it, which QEMU's VNC server does not do). */
#include "hostd/relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "display/rfbfilter.h"
#include "hostd/metrics.h"
#include "hostd/ticketline.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "net/splice.h"
#include "net/tlsname.h"

#define BUF_SIZE    65536
#define SESSION_MAX 4096
/* Connections one address may have before their ticket is redeemed (in the TLS
 * handshake or the ticket line): a broker opens them one display at a time. */
#define GREETING_PER_ADDRESS 8

struct session {
	struct relay *s_relay;
	int s_fd;  /* TCP */
	int s_vnc; /* unix */
	SSL *s_ssl;
	char s_peer[INET6_ADDRSTRLEN + 8];
	char s_addr[INET6_ADDRSTRLEN]; /* s_peer without its port */
	bool s_greeting;	       /* its ticket not redeemed yet, under r_lock */
	char s_desktop[DESKTOP_ID_MAX + 1];
	bool s_view_only;
	bool s_filtered; /* what the client sends goes through s_filter */
	enum desktop_engine s_engine;
	struct rfb_filter s_filter;
	struct splice s_splice; /* side 0 the client's TLS, side 1 the VNC socket */
	uint8_t s_c2v[BUF_SIZE + RFB_FILTER_SLACK], s_v2c[BUF_SIZE];
	uint8_t s_from_client[BUF_SIZE]; /* filtered: what waits for the filter */
	uint8_t s_from_vnc[BUF_SIZE];	 /* filtered: the server's bytes, watched */
	size_t s_early;			 /* bytes after the ticket line, in s_c2v */
};

struct relay {
	const struct conf *r_conf;
	struct host *r_host;
	SSL_CTX *r_ctx;
	int r_listen;
	int r_stop_pipe[2];
	pthread_t r_thread;
	pthread_mutex_t r_lock;
	pthread_cond_t r_idle;
	struct session *r_sessions[2 * SESSION_MAX];
	int r_count;	/* threads */
	int r_greeting; /* of them, before their ticket: a pool of max_sessions of its own */
	bool r_stopping;
};

static void log_ssl_errors(const char *what, const char *peer)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "connection closed";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	log_info("relay: %s from %s: %s", what, peer, buf);
}

/* Waits until the SSL operation that returned r can go on. 0, or -1 to give up.
 */
static int ssl_wait(struct session *s, int r, long long deadline)
{
	int e = SSL_get_error(s->s_ssl, r);
	struct pollfd pfd = {.fd = s->s_fd};
	long long left = deadline - monotonic_ms();

	if (e == SSL_ERROR_WANT_READ)
		pfd.events = POLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		pfd.events = POLLOUT;
	else
		return -1;
	if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
		return -1;
	return 0;
}

/* TLS handshake and the ticket line. Bytes after the line go to s_c2v. 0 or -1.
 */
static int greet(struct session *s, char *ticket, size_t ticket_size)
{
	long long deadline = monotonic_ms() + 1000LL * s->s_relay->r_conf->relay_handshake_timeout;
	char line[TICKET_LINE_MAX];
	size_t len = 0;
	ssize_t n;
	int r;

	while ((r = SSL_accept(s->s_ssl)) != 1) {
		if (ssl_wait(s, r, deadline) < 0) {
			log_ssl_errors("TLS handshake failed", s->s_peer);
			return -1;
		}
	}
	/* Any certificate of the CA verifies (every host has one); tickets come from the
	 * broker only. Checked before the ticket line is read: nothing is redeemed. */
	if (s->s_relay->r_conf->relay_require_client_cert &&
	    !tlsname_is(tlsname_peer(s->s_ssl), s->s_relay->r_conf->broker_name)) {
		char name[TLSNAME_MAX + 32];

		log_warnx("relay: connection from %s refused: its certificate names %s, not '%s'",
			  s->s_peer, tlsname_describe(tlsname_peer(s->s_ssl), name, sizeof(name)),
			  s->s_relay->r_conf->broker_name);
		return -1;
	}
	for (;;) {
		r = SSL_read(s->s_ssl, line + len, (int)(sizeof(line) - len));
		if (r <= 0) {
			if (ssl_wait(s, r, deadline) < 0) {
				log_info("relay: no ticket line from %s", s->s_peer);
				return -1;
			}
			continue;
		}
		len += (size_t)r;
		n = ticket_line_parse(line, len, ticket, ticket_size);
		if (n < 0) {
			log_info("relay: %s sent no ticket line", s->s_peer);
			OPENSSL_cleanse(line, sizeof(line));
			return -1;
		}
		if (n > 0)
			break;
	}
	s->s_early = len - (size_t)n;
	memcpy(s->s_c2v, line + n, s->s_early);
	OPENSSL_cleanse(line, sizeof(line));
	return 0;
}

static int connect_vnc(struct session *s)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int r = host_vnc_socket(s->s_relay->r_host, s->s_desktop, addr.sun_path,
				sizeof(addr.sun_path), &s->s_engine);

	if (r < 0) {
		log_info("relay: desktop=%s is not running with a display; %s dropped",
			 s->s_desktop, s->s_peer);
		return -1;
	}
	s->s_vnc = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->s_vnc < 0 || connect(s->s_vnc, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		log_warn("relay: desktop=%s: cannot connect to its VNC socket", s->s_desktop);
		return -1;
	}
	return 0;
}

/* The splice's filter for view-only sessions and QEMU's: what the client sends, through
 * the RFB filter, as far as the VNC side has room for what it may become; what the VNC
 * server sends, unchanged, seen by the filter before the client gets it (its security
 * type decides what the client may send next). */
static ssize_t rfb_filter_hook(struct splice *sp, int from, uint8_t *in, size_t n)
{
	struct session *s = sp->sp_arg;
	uint8_t out[BUF_SIZE + RFB_FILTER_SLACK];
	size_t room = splice_room(sp, 1 - from);
	ssize_t len;

	if (from == 1) {
		if (n > room)
			n = room;
		if (n == 0)
			return 0;
		if (rfb_filter_server(&s->s_filter, in, n) < 0)
			return -1;
		splice_put(sp, 0, in, n); /* fits: room was checked */
		return (ssize_t)n;
	}
	if (room < RFB_FILTER_OUT_MAX(1))
		return 0;
	if (n > room / 3 - RFB_FILTER_SLACK)
		n = room / 3 - RFB_FILTER_SLACK; /* RFB_FILTER_OUT_MAX(n) <= room */
	len = rfb_filter_client(&s->s_filter, in, n, out);
	if (len < 0)
		return -1;
	splice_put(sp, 1 - from, out, (size_t)len); /* fits: room was checked */
	return (ssize_t)n;
}

static int relay_tick(struct splice *sp, int64_t now)
{
	struct session *s = sp->sp_arg;

	(void)now;
	return __atomic_load_n(&s->s_relay->r_stopping, __ATOMIC_RELAXED) ? SPLICE_STOP
									  : SPLICE_RUNNING;
}

/* The splice: returns when either side closes or fails (what the other sent before
 * is delivered first), the client breaks view only, or the relay stops. */
static void splice_session(struct session *s, struct stream *tls, struct stream *vnc)
{
	struct splice *sp = &s->s_splice;

	*sp = (struct splice){
	    .sp_side = {{.sd_stream = tls,
			 .sd_flags = SPLICE_DRAIN,
			 .sd_out = s->s_v2c,
			 .sd_out_size = sizeof(s->s_v2c)},
			{.sd_stream = vnc,
			 .sd_flags = SPLICE_DRAIN,
			 .sd_out = s->s_c2v,
			 .sd_out_size = sizeof(s->s_c2v)}},
	    .sp_tick = relay_tick,
	    .sp_arg = s,
	    .sp_stop_fd = -1,
	    .sp_tick_ms = -1,
	};
	if (s->s_filtered) {
		sp->sp_filter = rfb_filter_hook;
		sp->sp_side[0].sd_in = s->s_from_client;
		sp->sp_side[0].sd_in_size = sizeof(s->s_from_client);
		memcpy(s->s_from_client, s->s_c2v, s->s_early);
		sp->sp_side[0].sd_in_len = s->s_early;
		sp->sp_side[1].sd_in = s->s_from_vnc;
		sp->sp_side[1].sd_in_size = sizeof(s->s_from_vnc);
	} else {
		sp->sp_side[1].sd_out_len = s->s_early;
	}
	if (splice_run(sp) == SPLICE_FILTER)
		log_info("relay: desktop=%s: %s session from %s: %s; closed", s->s_desktop,
			 s->s_view_only ? "view-only" : "filtered", s->s_peer,
			 sp->sp_end_side == 1 ? "the VNC server's handshake cannot be followed"
					      : "the client sent what it may not");
}

static void unregister(struct session *s)
{
	struct relay *rl = s->s_relay;

	pthread_mutex_lock(&rl->r_lock);
	for (int i = 0; i < 2 * SESSION_MAX; i++)
		if (rl->r_sessions[i] == s)
			rl->r_sessions[i] = NULL;
	if (s->s_greeting)
		rl->r_greeting--;
	if (--rl->r_count == 0)
		pthread_cond_broadcast(&rl->r_idle);
	pthread_mutex_unlock(&rl->r_lock);
}

/* With its ticket redeemed, a session takes one of the max_sessions places. */
static bool admit(struct session *s)
{
	struct relay *rl = s->s_relay;
	bool ok;

	pthread_mutex_lock(&rl->r_lock);
	rl->r_greeting--;
	s->s_greeting = false;
	ok = rl->r_count - rl->r_greeting <= rl->r_conf->relay_max_sessions;
	pthread_mutex_unlock(&rl->r_lock);
	if (!ok)
		log_warnx("relay: desktop=%s: session limit (%d) reached; session from %s refused",
			  s->s_desktop, rl->r_conf->relay_max_sessions, s->s_peer);
	return ok;
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	struct relay *rl = s->s_relay;
	struct stream *tls = NULL, *vnc = NULL;
	char ticket[TICKET_MAX_LEN + 2];
	char keys[64] = "";
	long long t0 = monotonic_ms();
	int r;

	pthread_setname_np(pthread_self(), "relay-session");
	s->s_ssl = SSL_new(rl->r_ctx);
	if (!s->s_ssl || !SSL_set_fd(s->s_ssl, s->s_fd))
		goto out;
	SSL_set_mode(s->s_ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (greet(s, ticket, sizeof(ticket)) < 0)
		goto out;
	r = tickets_redeem(host_tickets(rl->r_host), ticket, (long long)time(NULL), s->s_desktop,
			   &s->s_view_only);
	OPENSSL_cleanse(ticket, sizeof(ticket));
	if (r < 0) {
		log_info("relay: %s ticket from %s; dropped",
			 r == -ETIMEDOUT ? "expired" : "unknown or used", s->s_peer);
		goto out;
	}
	if (!admit(s))
		goto out;
	if (connect_vnc(s) < 0)
		goto out;
	tls = stream_new(s->s_fd, s->s_ssl);
	vnc = tls ? stream_new(s->s_vnc, NULL) : NULL;
	if (!vnc)
		goto out;
	/* View only: input dropped. QEMU: keys get the Shift they need (vdi-hv's VNC
	 * server does that itself, so its bytes pass unchanged). */
	s->s_filtered = s->s_view_only || s->s_engine == DESKTOP_ENGINE_QEMU;
	rfb_filter_init_mode(&s->s_filter, s->s_view_only ? RFB_FILTER_VIEW_ONLY : RFB_FILTER_KEYS);
	log_info("relay: desktop=%s: session from %s%s", s->s_desktop, s->s_peer,
		 s->s_view_only	 ? " (view only)"
		 : s->s_filtered ? " (Shift synthesis)"
				 : "");
	hostd_metrics_relay_open();
	splice_session(s, tls, vnc);
	hostd_metrics_relay_close(s->s_splice.sp_side[0].sd_read,
				  s->s_splice.sp_side[0].sd_written);
	if (s->s_filtered && !s->s_view_only)
		snprintf(keys, sizeof(keys), "; %llu Shift events synthesised",
			 (unsigned long long)s->s_filter.rf_keys.rk_synthesised);
	log_info("relay: desktop=%s: session from %s ended after %.1f s (%llu bytes "
		 "in, %llu out%s%s%s)",
		 s->s_desktop, s->s_peer, (double)(monotonic_ms() - t0) / 1000,
		 (unsigned long long)s->s_splice.sp_side[0].sd_read,
		 (unsigned long long)s->s_splice.sp_side[0].sd_written,
		 s->s_filter.rf_dropped ? ", input dropped: view only" : "",
		 s->s_filter.rf_passthrough ? ", client stream not followed: passed unchanged" : "",
		 keys);
out:
	ERR_clear_error();
	unregister(s);
	if (tls) { /* owns the socket and the TLS session: close_notify, then closed */
		stream_close(tls);
	} else {
		SSL_free(s->s_ssl);
		close(s->s_fd);
	}
	if (vnc)
		stream_close(vnc);
	else if (s->s_vnc >= 0)
		close(s->s_vnc);
	free(s);
	return NULL;
}

static void describe_peer(const struct sockaddr_storage *ss, char *buf, size_t len,
			  char addr[INET6_ADDRSTRLEN])
{
	unsigned port = 0;

	snprintf(addr, INET6_ADDRSTRLEN, "?");
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, addr, INET6_ADDRSTRLEN);
		port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, INET6_ADDRSTRLEN);
		port = ntohs(in6->sin6_port);
	}
	snprintf(buf, len, "%s:%u", addr, port);
}

static void start_session(struct relay *rl, int fd, const struct sockaddr_storage *peer)
{
	struct session *s = calloc(1, sizeof(*s));
	const char *refused = NULL;
	pthread_attr_t attr;
	pthread_t tid;
	int one = 1, slot = -1, same = 0;
	char peer_text[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];

	describe_peer(peer, peer_text, sizeof(peer_text), addr);
	pthread_mutex_lock(&rl->r_lock);
	for (int i = 0; i < 2 * SESSION_MAX; i++) {
		if (!rl->r_sessions[i])
			slot = slot < 0 ? i : slot;
		else if (rl->r_sessions[i]->s_greeting && !strcmp(rl->r_sessions[i]->s_addr, addr))
			same++;
	}
	if (!s)
		refused = "out of memory";
	else if (rl->r_greeting >= rl->r_conf->relay_max_sessions || slot < 0)
		refused = "too many connections before their ticket";
	else if (same >= GREETING_PER_ADDRESS)
		refused = "too many connections from this address before their ticket";
	if (refused) {
		pthread_mutex_unlock(&rl->r_lock);
		log_warnx("relay: connection from %s refused: %s", peer_text, refused);
		close(fd);
		free(s);
		return;
	}
	s->s_relay = rl;
	s->s_fd = fd;
	s->s_vnc = -1;
	s->s_greeting = true;
	snprintf(s->s_peer, sizeof(s->s_peer), "%s", peer_text);
	snprintf(s->s_addr, sizeof(s->s_addr), "%s", addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	rl->r_sessions[slot] = s;
	rl->r_count++;
	rl->r_greeting++;
	pthread_mutex_unlock(&rl->r_lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, session_main, s) != 0) {
		log_warnx("relay: cannot start a session thread");
		unregister(s);
		close(fd);
		free(s);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct relay *rl = arg;

	pthread_setname_np(pthread_self(), "relay-accept");
	for (;;) {
		struct pollfd pfd[2] = {{.fd = rl->r_listen, .events = POLLIN},
					{.fd = rl->r_stop_pipe[0], .events = POLLIN}};
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(rl->r_listen, (struct sockaddr *)&peer, &plen,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0)
			start_session(rl, fd, &peer);
	}
	return NULL;
}

static SSL_CTX *make_ctx(const struct conf *c)
{
	SSL_CTX *ctx = stream_tls_context(true);

	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl_errors("cannot load the certificate or key", c->tls_cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (c->relay_require_client_cert) {
		if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1) {
			log_ssl_errors("cannot load the CA", c->tls_ca);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
}

struct relay *relay_start(const struct conf *c, struct host *h)
{
	struct relay *rl = calloc(1, sizeof(*rl));
	int one = 1;

	if (!rl)
		return NULL;
	rl->r_conf = c;
	rl->r_host = h;
	rl->r_listen = rl->r_stop_pipe[0] = rl->r_stop_pipe[1] = -1;
	pthread_mutex_init(&rl->r_lock, NULL);
	pthread_cond_init(&rl->r_idle, NULL);
	rl->r_ctx = make_ctx(c);
	if (!rl->r_ctx)
		goto out_free;
	rl->r_listen = socket(c->relay_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rl->r_listen < 0 ||
	    setsockopt(rl->r_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(rl->r_listen, (const struct sockaddr *)&c->relay_addr, c->relay_addr_len) < 0 ||
	    listen(rl->r_listen, 64) < 0) {
		log_warn("relay: cannot listen on %s", c->relay_listen);
		goto out_free;
	}
	if (pipe2(rl->r_stop_pipe, O_CLOEXEC) < 0 ||
	    pthread_create(&rl->r_thread, NULL, accept_main, rl) != 0) {
		log_warn("relay: cannot start");
		goto out_free;
	}
	log_info("relay: listening on %s (TLS%s%s%s)", c->relay_listen,
		 c->relay_require_client_cert ? ", the broker's certificate, '" : "",
		 c->relay_require_client_cert ? c->broker_name : "",
		 c->relay_require_client_cert ? "', required" : "");
	return rl;

out_free:
	if (rl->r_listen >= 0)
		close(rl->r_listen);
	if (rl->r_stop_pipe[0] >= 0) {
		close(rl->r_stop_pipe[0]);
		close(rl->r_stop_pipe[1]);
	}
	SSL_CTX_free(rl->r_ctx);
	free(rl);
	return NULL;
}

void relay_stop(struct relay *rl)
{
	if (!rl)
		return;
	if (write(rl->r_stop_pipe[1], "x", 1) < 0)
		log_warn("relay: cannot wake the accept thread");
	pthread_join(rl->r_thread, NULL);
	close(rl->r_listen);
	pthread_mutex_lock(&rl->r_lock);
	__atomic_store_n(&rl->r_stopping, true, __ATOMIC_RELAXED);
	for (int i = 0; i < 2 * SESSION_MAX; i++)
		if (rl->r_sessions[i])
			shutdown(rl->r_sessions[i]->s_fd, SHUT_RDWR);
	while (rl->r_count > 0)
		pthread_cond_wait(&rl->r_idle, &rl->r_lock);
	pthread_mutex_unlock(&rl->r_lock);
	close(rl->r_stop_pipe[0]);
	close(rl->r_stop_pipe[1]);
	SSL_CTX_free(rl->r_ctx);
	pthread_cond_destroy(&rl->r_idle);
	pthread_mutex_destroy(&rl->r_lock);
	free(rl);
}
