/* TLS in front of the HTTP layer (see tls_front.h): an accept thread, then per connection
 * a thread that does the handshake with a deadline, hands the plain end of a socketpair
 * to the HTTP layer and forwards both ways until either side ends or the front stops. */
#include "web/tls_front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define FORWARD_BUF    (64 * 1024)
#define LINGER_MS      2000
#define SOCKETPAIR_BUF (1 << 20)
#define TAKE_TIMEOUT_S 5
#define TAKE_EARLY_MAX (256 * 1024)

struct tls_front {
	struct tls_front_config f_cfg; /* its strings are not kept */
	char f_name[32];
	bool f_verify_clients;
	gnutls_certificate_credentials_t f_creds;
	gnutls_priority_t f_prio;
	int f_listen, f_stop; /* f_stop: an eventfd, readable once the front stops */
	pthread_t f_acceptor;
	bool f_acceptor_started;
	pthread_mutex_t f_lock;
	pthread_cond_t f_idle, f_handed;
	unsigned f_count; /* connections and taken streams */
	struct front_conn *f_conns;
};

struct front_conn {
	struct tls_front *fc_front;
	int fc_net, fc_app; /* the client's TCP socket; our end of the socketpair */
	gnutls_session_t fc_tls;
	char fc_addr[INET6_ADDRSTRLEN];
	struct sockaddr_storage fc_peer;
	socklen_t fc_peer_len;
	/* client -> HTTP layer (decrypted), HTTP layer -> client (to encrypt) */
	uint8_t fc_up[FORWARD_BUF], fc_down[FORWARD_BUF];
	size_t fc_up_len, fc_down_off, fc_down_len;
	bool fc_net_eof, fc_app_eof;
	bool fc_app_shut; /* the HTTP layer takes no more bytes */
	/* taking the connection over after an upgrade (tls_front_take()), under f_lock */
	struct front_conn *fc_next;
	int fc_http_fd; /* the HTTP layer's end of the socketpair */
	int fc_refs;	/* the thread's, and a taker's */
	bool fc_take_wanted, fc_take_abandoned, fc_handed, fc_ended;
};

struct tls_stream {
	struct tls_front *ts_front;
	gnutls_session_t ts_tls;
	int ts_fd;
	bool ts_again; /* a record is buffered in GnuTLS after GNUTLS_E_AGAIN */
};

static int set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const void *a = ss->ss_family == AF_INET6
			    ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
			    : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, a, out, (socklen_t)len))
		snprintf(out, len, "?");
}

/* The handshake, non-blocking, until the front's deadline or its stop. Returns 0 or a
 * GnuTLS error. */
static int handshake(struct front_conn *c)
{
	const struct tls_front_config *cfg = &c->fc_front->f_cfg;
	struct timespec now, deadline;
	unsigned status = 1, n = 0;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += cfg->tf_handshake_timeout;
	r = gnutls_init(&c->fc_tls, GNUTLS_SERVER | GNUTLS_NONBLOCK);
	if (r < 0)
		return r;
	if ((r = gnutls_priority_set(c->fc_tls, c->fc_front->f_prio)) < 0 ||
	    (r = gnutls_credentials_set(c->fc_tls, GNUTLS_CRD_CERTIFICATE, c->fc_front->f_creds)) <
		0)
		return r;
	if (c->fc_front->f_verify_clients) {
		gnutls_certificate_server_set_request(c->fc_tls, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(c->fc_tls, NULL, 0);
	}
	gnutls_transport_set_int(c->fc_tls, c->fc_net);
	while ((r = gnutls_handshake(c->fc_tls)) < 0 && !gnutls_error_is_fatal(r)) {
		struct pollfd pfd[2] = {
		    {.fd = c->fc_net,
		     .events = gnutls_record_get_direction(c->fc_tls) ? POLLOUT : POLLIN},
		    {.fd = c->fc_front->f_stop, .events = POLLIN}};
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (deadline.tv_sec - now.tv_sec) * 1000 +
		     (deadline.tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return GNUTLS_E_TIMEDOUT;
		if (poll(pfd, 2, (int)ms) < 0 && errno != EINTR)
			return GNUTLS_E_PUSH_ERROR;
		if (pfd[1].revents)
			return GNUTLS_E_INTERRUPTED;
	}
	if (r < 0)
		return r;
	/* The handshake verified the chain; check again that there was one. */
	if (c->fc_front->f_verify_clients &&
	    (!gnutls_certificate_get_peers(c->fc_tls, &n) || n == 0 ||
	     gnutls_certificate_verify_peers2(c->fc_tls, &status) < 0 || status != 0))
		return GNUTLS_E_CERTIFICATE_ERROR;
	return 0;
}

/* The HTTP layer is done, say with a 413 before the client sent its body: closing with
 * unread bytes would reset the connection and could destroy the answer in flight, so
 * the client's remaining bytes are read and dropped for up to LINGER_MS first. */
static void linger_close(struct front_conn *c)
{
	struct timespec start, now;
	char sink[4096];

	shutdown(c->fc_net, SHUT_WR);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd[2] = {{.fd = c->fc_net, .events = POLLIN},
					{.fd = c->fc_front->f_stop, .events = POLLIN}};
		long left;
		ssize_t r;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = LINGER_MS - ((now.tv_sec - start.tv_sec) * 1000 +
				    (now.tv_nsec - start.tv_nsec) / 1000000);
		/* a deadline, not an idle time: a client trickling bytes cannot hold it */
		if (left <= 0 || poll(pfd, 2, (int)left) <= 0 || pfd[1].revents)
			return;
		r = recv(c->fc_net, sink, sizeof(sink), 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

/* One round of non-blocking forwarding. Returns 1 when bytes moved, 0 when nothing
 * could, -1 when the connection is over. */
static int forward(struct front_conn *c)
{
	bool moved = false;
	ssize_t r;

	while (!c->fc_net_eof && c->fc_up_len < sizeof(c->fc_up)) {
		r = gnutls_record_recv(c->fc_tls, c->fc_up + c->fc_up_len,
				       sizeof(c->fc_up) - c->fc_up_len);
		if (r > 0) {
			if (!c->fc_app_shut) /* else nobody reads it */
				c->fc_up_len += (size_t)r;
			moved = true;
		} else if (r == 0) {
			c->fc_net_eof = true;
		} else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			break;
		} else if (gnutls_error_is_fatal((int)r)) {
			c->fc_net_eof = true; /* includes a close without close_notify */
		}
	}
	while (c->fc_up_len) {
		r = send(c->fc_app, c->fc_up, c->fc_up_len, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/* The HTTP layer stopped reading (an early 413, say): drop what the
			 * client sends, but deliver what the layer answered. */
			c->fc_up_len = 0;
			c->fc_app_shut = true;
			break;
		}
		memmove(c->fc_up, c->fc_up + r, c->fc_up_len - (size_t)r);
		c->fc_up_len -= (size_t)r;
		moved = true;
	}
	if (c->fc_net_eof && !c->fc_up_len && !c->fc_app_shut) {
		shutdown(c->fc_app, SHUT_WR); /* the HTTP layer sees the client's end */
		c->fc_app_shut = true;
	}
	for (;;) {
		if (!c->fc_down_len && !c->fc_app_eof) {
			r = recv(c->fc_app, c->fc_down, sizeof(c->fc_down), 0);
			if (r > 0) {
				c->fc_down_off = 0;
				c->fc_down_len = (size_t)r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				c->fc_app_eof = true;
			}
		}
		if (!c->fc_down_len)
			break;
		/* After GNUTLS_E_AGAIN the same pointer and length are passed again. */
		r = gnutls_record_send(c->fc_tls, c->fc_down + c->fc_down_off, c->fc_down_len);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			break;
		if (r < 0)
			return -1; /* the client is gone */
		c->fc_down_off += (size_t)r;
		c->fc_down_len -= (size_t)r;
		moved = true;
	}
	if (c->fc_app_eof && !c->fc_down_len) {
		bool hand_over;

		pthread_mutex_lock(&c->fc_front->f_lock);
		hand_over = c->fc_take_wanted && !c->fc_take_abandoned;
		c->fc_handed = hand_over;
		pthread_mutex_unlock(&c->fc_front->f_lock);
		if (hand_over)
			return -1;
		gnutls_bye(c->fc_tls, GNUTLS_SHUT_WR); /* best effort */
		linger_close(c);
		return -1;
	}
	if (c->fc_net_eof && c->fc_app_eof)
		return -1;
	return moved;
}

static void run_forwarding(struct front_conn *c)
{
	struct tls_front *f = c->fc_front;

	if (set_nonblocking(c->fc_app) < 0)
		return;
	for (;;) {
		struct pollfd pfd[3] = {{.fd = c->fc_net}, {.fd = c->fc_app}, {.fd = f->f_stop}};
		int r = forward(c), timeout = -1;

		if (r < 0)
			return;
		if (r > 0)
			continue;
		pfd[2].events = POLLIN;
		if (!c->fc_net_eof && c->fc_up_len < sizeof(c->fc_up)) {
			if (gnutls_record_check_pending(c->fc_tls))
				timeout = 0;
			pfd[0].events |= POLLIN;
		}
		if (c->fc_down_len)
			pfd[0].events |= POLLOUT;
		if (c->fc_up_len)
			pfd[1].events |= POLLOUT;
		if (!c->fc_down_len && !c->fc_app_eof)
			pfd[1].events |= POLLIN;
		if (poll(pfd, 3, timeout) < 0 && errno != EINTR)
			return;
		if (pfd[2].revents)
			return;
		/* A hang-up with nothing left to read ends that side (forward() sees it). */
	}
}

static void conn_done(struct tls_front *f)
{
	pthread_mutex_lock(&f->f_lock);
	f->f_count--;
	pthread_cond_broadcast(&f->f_idle);
	pthread_mutex_unlock(&f->f_lock);
}

static void conn_unref(struct front_conn *c)
{
	bool last;

	pthread_mutex_lock(&c->fc_front->f_lock);
	last = --c->fc_refs == 0;
	pthread_mutex_unlock(&c->fc_front->f_lock);
	if (last) {
		explicit_bzero(c->fc_up, sizeof(c->fc_up));
		explicit_bzero(c->fc_down, sizeof(c->fc_down));
		free(c);
	}
}

/* The thread's end: unless a taker got the TLS session and socket, they are closed. */
static void conn_end(struct front_conn *c)
{
	struct tls_front *f = c->fc_front;
	bool handed;

	pthread_mutex_lock(&f->f_lock);
	for (struct front_conn **p = &f->f_conns; *p; p = &(*p)->fc_next)
		if (*p == c) {
			*p = c->fc_next;
			break;
		}
	c->fc_ended = true;
	handed = c->fc_handed;
	pthread_cond_broadcast(&f->f_handed);
	pthread_mutex_unlock(&f->f_lock);
	if (!handed) {
		if (c->fc_tls)
			gnutls_deinit(c->fc_tls);
		close(c->fc_net);
		conn_done(f); /* a taken stream keeps its place in the count */
	}
	conn_unref(c);
}

static void *conn_main(void *arg)
{
	struct front_conn *c = arg;
	struct tls_front *f = c->fc_front;
	int sv[2], r;

	pthread_setname_np(pthread_self(), "tls-conn");
	r = set_nonblocking(c->fc_net) < 0 ? GNUTLS_E_PUSH_ERROR : handshake(c);
	if (r < 0) {
		log_info("%s: TLS handshake with %s failed: %s", f->f_name, c->fc_addr,
			 gnutls_strerror(r));
	} else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("%s: connection from %s dropped: socketpair", f->f_name, c->fc_addr);
	} else {
		int size = SOCKETPAIR_BUF;

		c->fc_app = sv[0];
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		c->fc_http_fd = sv[1];
		pthread_mutex_lock(&f->f_lock);
		c->fc_next = f->f_conns;
		f->f_conns = c;
		pthread_mutex_unlock(&f->f_lock);
		/* The HTTP layer owns sv[1] from here, on failure too. */
		if (f->f_cfg.tf_hand_over(f->f_cfg.tf_arg, sv[1],
					  (const struct sockaddr *)&c->fc_peer,
					  c->fc_peer_len) == 0)
			run_forwarding(c);
		close(c->fc_app);
	}
	conn_end(c);
	return NULL;
}

static void accept_one(struct tls_front *f)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	struct front_conn *c;
	pthread_attr_t attr;
	pthread_t t;
	int fd = accept4(f->f_listen, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC), r, one = 1;

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("%s: accept", f->f_name);
		if (errno == EMFILE || errno == ENFILE)
			usleep(100 * 1000); /* let connections end rather than spin */
		return;
	}
	/* Screen updates and keystrokes are sent as they come: no Nagle delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pthread_mutex_lock(&f->f_lock);
	r = f->f_count < f->f_cfg.tf_max_connections ? 0 : -EBUSY;
	if (!r)
		f->f_count++;
	pthread_mutex_unlock(&f->f_lock);
	c = r ? NULL : calloc(1, sizeof(*c));
	if (!c) {
		char addr[INET6_ADDRSTRLEN];

		peer_name(&peer, addr, sizeof(addr));
		log_warnx("%s: connection from %s refused: %s", f->f_name, addr,
			  r ? "connection limit reached" : "out of memory");
		close(fd);
		if (!r)
			conn_done(f);
		return;
	}
	c->fc_front = f;
	c->fc_net = fd;
	c->fc_app = -1;
	c->fc_http_fd = -1;
	c->fc_refs = 1;
	c->fc_peer = peer;
	c->fc_peer_len = len;
	peer_name(&peer, c->fc_addr, sizeof(c->fc_addr));
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (r) {
		log_warnx("%s: connection from %s refused: no thread (%s)", f->f_name, c->fc_addr,
			  strerror(r));
		close(fd);
		free(c);
		conn_done(f);
	}
}

static void *accept_main(void *arg)
{
	struct tls_front *f = arg;

	pthread_setname_np(pthread_self(), "tls-accept");
	for (;;) {
		struct pollfd pfd[2] = {{.fd = f->f_listen, .events = POLLIN},
					{.fd = f->f_stop, .events = POLLIN}};

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[0].revents)
			accept_one(f);
	}
	return NULL;
}

struct tls_front *tls_front_start(const struct tls_front_config *cfg, char *err, size_t errlen)
{
	struct tls_front *f = calloc(1, sizeof(*f));
	gnutls_datum_t cert, key, trust;
	int r;

	if (!f) {
		close(cfg->tf_listen_fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->f_cfg = *cfg;
	f->f_verify_clients = cfg->tf_trust_pem != NULL;
	f->f_cfg.tf_cert_pem = f->f_cfg.tf_key_pem = f->f_cfg.tf_trust_pem = NULL;
	f->f_cfg.tf_priorities = f->f_cfg.tf_name = NULL;
	snprintf(f->f_name, sizeof(f->f_name), "%s", cfg->tf_name);
	f->f_listen = cfg->tf_listen_fd;
	f->f_stop = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&f->f_lock, NULL);
	pthread_cond_init(&f->f_idle, NULL);
	pthread_cond_init(&f->f_handed, NULL);
	cert.data = (unsigned char *)(uintptr_t)cfg->tf_cert_pem;
	cert.size = (unsigned)strlen(cfg->tf_cert_pem);
	key.data = (unsigned char *)(uintptr_t)cfg->tf_key_pem;
	key.size = (unsigned)strlen(cfg->tf_key_pem);
	if (f->f_stop < 0 || set_nonblocking(f->f_listen) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if ((r = gnutls_certificate_allocate_credentials(&f->f_creds)) < 0 ||
	    (r = gnutls_certificate_set_x509_key_mem(f->f_creds, &cert, &key,
						     GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(err, errlen, "bad certificate or key: %s", gnutls_strerror(r));
		goto fail;
	}
	if (cfg->tf_trust_pem) {
		trust.data = (unsigned char *)(uintptr_t)cfg->tf_trust_pem;
		trust.size = (unsigned)strlen(cfg->tf_trust_pem);
		r = gnutls_certificate_set_x509_trust_mem(f->f_creds, &trust, GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			snprintf(err, errlen, "bad trusted certificates: %s",
				 r ? gnutls_strerror(r) : "none found");
			goto fail;
		}
	}
	if ((r = gnutls_priority_init(&f->f_prio, cfg->tf_priorities, NULL)) < 0) {
		snprintf(err, errlen, "bad TLS priorities: %s", gnutls_strerror(r));
		goto fail;
	}
	r = pthread_create(&f->f_acceptor, NULL, accept_main, f);
	if (r) {
		snprintf(err, errlen, "no accept thread: %s", strerror(r));
		goto fail;
	}
	f->f_acceptor_started = true;
	return f;

fail:
	tls_front_stop(f);
	return NULL;
}

void tls_front_stop(struct tls_front *f)
{
	uint64_t one = 1;

	if (!f)
		return;
	if (f->f_stop >= 0 && write(f->f_stop, &one, sizeof(one)) < 0)
		log_warn("%s: cannot signal the stop", f->f_name);
	if (f->f_acceptor_started)
		pthread_join(f->f_acceptor, NULL);
	close(f->f_listen);
	pthread_mutex_lock(&f->f_lock);
	while (f->f_count)
		pthread_cond_wait(&f->f_idle, &f->f_lock);
	pthread_mutex_unlock(&f->f_lock);
	if (f->f_prio)
		gnutls_priority_deinit(f->f_prio);
	if (f->f_creds)
		gnutls_certificate_free_credentials(f->f_creds);
	if (f->f_stop >= 0)
		close(f->f_stop);
	pthread_mutex_destroy(&f->f_lock);
	pthread_cond_destroy(&f->f_idle);
	pthread_cond_destroy(&f->f_handed);
	free(f);
}

/* ---- taking a connection over after an upgrade ---- */

struct tls_stream *tls_front_take(struct tls_front *f, int http_fd, uint8_t **early, size_t *n)
{
	struct front_conn *c;
	struct tls_stream *ts = NULL;
	struct timespec deadline;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool handed;

	*early = NULL;
	*n = 0;
	pthread_mutex_lock(&f->f_lock);
	for (c = f->f_conns; c && c->fc_http_fd != http_fd; c = c->fc_next)
		;
	if (!c || c->fc_take_wanted) {
		pthread_mutex_unlock(&f->f_lock);
		return NULL;
	}
	c->fc_take_wanted = true;
	c->fc_refs++;
	pthread_mutex_unlock(&f->f_lock);
	/* The HTTP layer's answer (101) is written: its end tells the thread to finish
	 * sending it and stop. */
	shutdown(http_fd, SHUT_WR);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += TAKE_TIMEOUT_S;
	pthread_mutex_lock(&f->f_lock);
	while (!c->fc_ended &&
	       pthread_cond_timedwait(&f->f_handed, &f->f_lock, &deadline) != ETIMEDOUT)
		;
	handed = c->fc_handed;
	if (!handed)
		c->fc_take_abandoned = true;
	pthread_mutex_unlock(&f->f_lock);
	if (handed) {
		/* What the client sent after its request, in order: what the HTTP layer did
		 * not read from its end, then what the thread had not passed on yet. */
		buf = malloc(TAKE_EARLY_MAX);
		ts = calloc(1, sizeof(*ts));
		for (ssize_t r = 1; buf && r > 0 && len<TAKE_EARLY_MAX; len += r> 0 ? (size_t)r : 0)
			r = recv(http_fd, buf + len, TAKE_EARLY_MAX - len, MSG_DONTWAIT);
		if (!buf || !ts || len + c->fc_up_len > TAKE_EARLY_MAX) {
			log_warnx("%s: connection from %s dropped at its upgrade: %s", f->f_name,
				  c->fc_addr, buf && ts ? "too many early bytes" : "out of memory");
			gnutls_deinit(c->fc_tls);
			close(c->fc_net);
			conn_done(f);
			free(buf);
			free(ts);
			buf = NULL;
			ts = NULL;
		} else {
			memcpy(buf + len, c->fc_up, c->fc_up_len);
			len += c->fc_up_len;
			ts->ts_front = f;
			ts->ts_tls = c->fc_tls;
			ts->ts_fd = c->fc_net;
			*early = buf;
			*n = len;
		}
	}
	conn_unref(c);
	return ts;
}

int tls_stream_fd(const struct tls_stream *ts)
{
	return ts->ts_fd;
}

bool tls_stream_pending(const struct tls_stream *ts)
{
	return gnutls_record_check_pending(ts->ts_tls) > 0;
}

ssize_t tls_stream_read(struct tls_stream *ts, void *buf, size_t n)
{
	ssize_t r = gnutls_record_recv(ts->ts_tls, buf, n);

	if (r >= 0)
		return r;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)r))
		return -EAGAIN;
	return r == GNUTLS_E_PREMATURE_TERMINATION ? 0 : -EIO;
}

ssize_t tls_stream_write(struct tls_stream *ts, const void *buf, size_t n)
{
	/* After GNUTLS_E_AGAIN the record is already sealed: NULL, 0 sends it on. */
	ssize_t r = ts->ts_again ? gnutls_record_send(ts->ts_tls, NULL, 0)
				 : gnutls_record_send(ts->ts_tls, buf, n);

	ts->ts_again = r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED;
	if (ts->ts_again)
		return -EAGAIN;
	return r < 0 ? -EIO : r;
}

bool tls_stream_wants_write(const struct tls_stream *ts)
{
	return ts->ts_again;
}

void tls_stream_close(struct tls_stream *ts)
{
	if (!ts)
		return;
	gnutls_bye(ts->ts_tls, GNUTLS_SHUT_WR); /* best effort, non-blocking */
	gnutls_deinit(ts->ts_tls);
	close(ts->ts_fd);
	conn_done(ts->ts_front);
	free(ts);
}
