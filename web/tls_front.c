/* TLS in front of the HTTP layer (see tls_front.h): an accept thread, then per connection
 * a thread that does the handshake (OpenSSL, non-blocking) with a deadline, hands the
 * plain end of a socketpair to the HTTP layer and forwards both ways on net/splice.h
 * until either side ends or the front stops. */
#include "web/tls_front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
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

#include "lib/clock.h"
#include "lib/log.h"
#include "net/splice.h"
#include "net/tlsname.h"

#define FORWARD_BUF	 (64 * 1024)
#define LINGER_MS	 2000
#define SOCKETPAIR_BUF	 (1 << 20)
#define TAKE_TIMEOUT_S	 5
#define TAKE_EARLY_MAX	 (256 * 1024)
#define TICK_MS		 1000
#define END_REQUEST_SLOW (SPLICE_OWNER + 1)

/* Connections from one client address: its key (family, then the address) and how many
 * it holds (handshaking or forwarding; a taken stream no longer counts). */
struct peer {
	unsigned char p_key[17];
	unsigned p_n;
};

struct tls_front {
	struct tls_front_config f_cfg; /* its strings are not kept */
	char f_name[32];
	bool f_verify_clients;
	char *f_client_name; /* tf_client_name copied, or NULL */
	SSL_CTX *f_ctx;
	int f_listen, f_stop; /* f_stop: an eventfd, readable once the front stops */
	pthread_t f_acceptor;
	bool f_acceptor_started;
	pthread_mutex_t f_lock;
	pthread_cond_t f_idle, f_handed;
	unsigned f_count;     /* connections past their handshake, and taken streams */
	unsigned f_pending;   /* connections in their handshake */
	struct peer *f_peers; /* 2 * max_connections of them: one per connection at most */
	size_t f_npeers;
	struct front_conn *f_conns;
};

struct front_conn {
	struct tls_front *fc_front;
	int fc_net, fc_app; /* the client's TCP socket; our end of the socketpair */
	SSL *fc_tls;	    /* until the handshake is done; then fc_net_st owns it */
	struct stream *fc_net_st, *fc_app_st;
	struct splice fc_splice; /* side 0 the client, side 1 the HTTP layer */
	char fc_addr[INET6_ADDRSTRLEN];
	char fc_client_name[TLSNAME_MAX + 1]; /* its verified certificate's CN, or "" */
	struct sockaddr_storage fc_peer;
	socklen_t fc_peer_len;
	/* client -> HTTP layer (decrypted), HTTP layer -> client (to encrypt) */
	uint8_t fc_up[FORWARD_BUF], fc_down[FORWARD_BUF];
	/* taking the connection over after an upgrade (tls_front_take()), under f_lock */
	struct front_conn *fc_next;
	int fc_http_fd; /* the HTTP layer's end of the socketpair */
	int fc_refs;	/* the thread's, and a taker's */
	bool fc_take_wanted, fc_take_abandoned, fc_handed, fc_ended;
	/* what it counts for, under f_lock: f_pending, f_count, its address's peer */
	bool fc_pending, fc_counted, fc_peer_counted;
	/* the request deadline: when the client began sending what is not answered yet */
	int64_t fc_request_start;
	uint64_t fc_seen_read, fc_seen_written;
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

static void peer_key(const struct sockaddr_storage *ss, unsigned char key[17])
{
	memset(key, 0, 17);
	key[0] = (unsigned char)ss->ss_family;
	if (ss->ss_family == AF_INET6)
		memcpy(key + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	else if (ss->ss_family == AF_INET)
		memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
}

/* The entry of an address (added with no connections when add), or NULL. Under f_lock. */
static struct peer *peer_find(struct tls_front *f, const unsigned char key[17], bool add)
{
	for (size_t i = 0; i < f->f_npeers; i++)
		if (!memcmp(f->f_peers[i].p_key, key, 17))
			return &f->f_peers[i];
	if (!add || f->f_npeers == 2 * (size_t)f->f_cfg.tf_max_connections)
		return NULL;
	memcpy(f->f_peers[f->f_npeers].p_key, key, 17);
	f->f_peers[f->f_npeers].p_n = 0;
	return &f->f_peers[f->f_npeers++];
}

/* The connection no longer counts for its address. Under f_lock. */
static void peer_release(struct front_conn *c)
{
	struct tls_front *f = c->fc_front;
	unsigned char key[17];
	struct peer *p;

	if (!c->fc_peer_counted)
		return;
	c->fc_peer_counted = false;
	peer_key(&c->fc_peer, key);
	p = peer_find(f, key, false);
	if (p && --p->p_n == 0)
		*p = f->f_peers[--f->f_npeers];
}

/* The handshake, non-blocking, until the front's deadline or its stop. Returns 0, or -1
 * with the reason in why. */
static int handshake(struct front_conn *c, char *why, size_t whylen)
{
	const struct tls_front_config *cfg = &c->fc_front->f_cfg;
	int64_t deadline = monotonic_ms() + 1000LL * cfg->tf_handshake_timeout;
	int r, e;

	c->fc_tls = SSL_new(c->fc_front->f_ctx);
	if (!c->fc_tls || SSL_set_fd(c->fc_tls, c->fc_net) != 1) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	while ((r = SSL_accept(c->fc_tls)) != 1) {
		struct pollfd pfd[2] = {{.fd = c->fc_net},
					{.fd = c->fc_front->f_stop, .events = POLLIN}};
		int64_t ms = deadline - monotonic_ms();

		e = SSL_get_error(c->fc_tls, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			const char *reason = ERR_reason_error_string(ERR_peek_last_error());

			snprintf(why, whylen, "%s", reason ? reason : "connection closed");
			ERR_clear_error();
			return -1;
		}
		pfd[0].events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (ms <= 0) {
			snprintf(why, whylen, "timed out");
			return -1;
		}
		if (poll(pfd, 2, (int)ms) < 0 && errno != EINTR) {
			snprintf(why, whylen, "%s", strerror(errno));
			return -1;
		}
		if (pfd[1].revents) {
			snprintf(why, whylen, "the server is stopping");
			return -1;
		}
	}
	/* The handshake verified the chain; check again that there was one. */
	if (c->fc_front->f_verify_clients && !tlsname_peer(c->fc_tls)) {
		snprintf(why, whylen, "no verified client certificate");
		return -1;
	}
	if (tlsname_cn(tlsname_peer(c->fc_tls), c->fc_client_name, sizeof(c->fc_client_name)) < 0)
		c->fc_client_name[0] = '\0';
	return 0;
}

/* A CA-signed certificate is not enough where only one client may come in (the broker,
 * on hostd's API): its name must be the expected one. Returns 0 or -1 (logged). */
static int check_client_name(struct front_conn *c)
{
	struct tls_front *f = c->fc_front;
	char name[TLSNAME_MAX + 16];

	if (!f->f_client_name || tlsname_is(tlsname_peer(c->fc_tls), f->f_client_name))
		return 0;
	log_warnx("%s: connection from %s refused: its certificate names %s, not '%s'", f->f_name,
		  c->fc_addr, tlsname_describe(tlsname_peer(c->fc_tls), name, sizeof(name)),
		  f->f_client_name);
	return -1;
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

/* Forwards both ways until the HTTP layer's end (its bytes delivered to the client), the
 * client's failure or the front's stop. The client's end half-closes the HTTP layer's
 * side and forwarding goes on (the answer still comes); once the HTTP layer takes no
 * more (an early 413, say), what the client sends is dropped but what the layer answered
 * is delivered. At the HTTP layer's end the connection is handed over to a taker
 * (tls_front_take()) or closed: close_notify, then the linger. */
/* The request deadline: a client still sending tf_request_timeout after the first byte
 * of what has no answer yet (headers or body trickled in, a slow-loris) is dropped. A
 * client waiting for a slow answer sends nothing and is not. */
static int request_tick(struct splice *sp, int64_t now)
{
	struct front_conn *c = sp->sp_arg;
	const struct splice_side *client = &sp->sp_side[0];
	bool sent = client->sd_read != c->fc_seen_read;

	if (client->sd_written != c->fc_seen_written) { /* an answer is under way */
		c->fc_seen_written = client->sd_written;
		c->fc_request_start = 0;
	}
	c->fc_seen_read = client->sd_read;
	if (sent && !c->fc_request_start)
		c->fc_request_start = now;
	if (sent && now - c->fc_request_start > 1000LL * c->fc_front->f_cfg.tf_request_timeout)
		return END_REQUEST_SLOW;
	return SPLICE_RUNNING;
}

static void run_forwarding(struct front_conn *c)
{
	struct tls_front *f = c->fc_front;
	struct splice *sp = &c->fc_splice;
	bool hand_over;
	int end;

	*sp = (struct splice){
	    .sp_side = {{.sd_stream = c->fc_net_st,
			 .sd_flags = SPLICE_HALF_CLOSE | SPLICE_DRAIN,
			 .sd_out = c->fc_down,
			 .sd_out_size = sizeof(c->fc_down)},
			{.sd_stream = c->fc_app_st,
			 .sd_flags = SPLICE_WRITE_DROPS,
			 .sd_out = c->fc_up,
			 .sd_out_size = sizeof(c->fc_up)}},
	    .sp_tick = request_tick,
	    .sp_arg = c,
	    .sp_stop_fd = f->f_stop,
	    .sp_tick_ms = TICK_MS,
	};
	end = splice_run(sp);
	if (end == END_REQUEST_SLOW)
		log_warnx("%s: connection from %s dropped: a request still arriving after %u s",
			  f->f_name, c->fc_addr, f->f_cfg.tf_request_timeout);
	if (end != SPLICE_EOF || sp->sp_end_side != 1)
		return;
	pthread_mutex_lock(&f->f_lock);
	hand_over = c->fc_take_wanted && !c->fc_take_abandoned;
	c->fc_handed = hand_over;
	if (hand_over) /* authenticated by what it asked for: no longer its address's */
		peer_release(c);
	pthread_mutex_unlock(&f->f_lock);
	if (hand_over)
		return;
	SSL_shutdown(stream_ssl(c->fc_net_st)); /* best effort */
	ERR_clear_error();
	linger_close(c);
}

/* A taken stream's place in the count given back. */
static void conn_done(struct tls_front *f)
{
	pthread_mutex_lock(&f->f_lock);
	f->f_count--;
	pthread_cond_broadcast(&f->f_idle);
	pthread_mutex_unlock(&f->f_lock);
}

/* The places a connection holds given back. */
static void conn_release(struct front_conn *c)
{
	struct tls_front *f = c->fc_front;

	pthread_mutex_lock(&f->f_lock);
	if (c->fc_pending)
		f->f_pending--;
	if (c->fc_counted)
		f->f_count--;
	c->fc_pending = c->fc_counted = false;
	peer_release(c);
	pthread_cond_broadcast(&f->f_idle);
	pthread_mutex_unlock(&f->f_lock);
}

/* After its handshake, a connection takes a place among the established ones. Returns
 * false when they are all taken. */
static bool conn_establish(struct front_conn *c)
{
	struct tls_front *f = c->fc_front;
	bool ok;

	pthread_mutex_lock(&f->f_lock);
	f->f_pending--;
	c->fc_pending = false;
	ok = f->f_count < f->f_cfg.tf_max_connections;
	if (ok)
		f->f_count++;
	c->fc_counted = ok;
	pthread_cond_broadcast(&f->f_idle);
	pthread_mutex_unlock(&f->f_lock);
	return ok;
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
		if (c->fc_net_st) {
			stream_close(c->fc_net_st);
		} else {
			SSL_free(c->fc_tls);
			close(c->fc_net);
		}
		conn_release(c); /* a taken stream keeps its place in the count */
	}
	conn_unref(c);
}

static void *conn_main(void *arg)
{
	struct front_conn *c = arg;
	struct tls_front *f = c->fc_front;
	char why[128] = "";
	int sv[2];

	pthread_setname_np(pthread_self(), "tls-conn");
	if (set_nonblocking(c->fc_net) < 0 || handshake(c, why, sizeof(why)) < 0) {
		log_info("%s: TLS handshake with %s failed: %s", f->f_name, c->fc_addr,
			 why[0] ? why : strerror(errno));
	} else if (check_client_name(c) < 0) {
		/* closed without a word: the client learns nothing from us */
	} else if (!conn_establish(c)) {
		log_warnx("%s: connection from %s refused: connection limit reached (%u)",
			  f->f_name, c->fc_addr, f->f_cfg.tf_max_connections);
	} else if (!(c->fc_net_st = stream_new(c->fc_net, c->fc_tls))) {
		log_warnx("%s: connection from %s dropped: out of memory", f->f_name, c->fc_addr);
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
					  c->fc_peer_len) == 0 &&
		    (c->fc_app_st = stream_new(c->fc_app, NULL)))
			run_forwarding(c);
		if (c->fc_app_st)
			stream_close(c->fc_app_st);
		else
			close(c->fc_app);
	}
	conn_end(c);
	return NULL;
}

static void accept_one(struct tls_front *f)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	const char *refused = NULL;
	unsigned char key[17];
	struct front_conn *c;
	pthread_attr_t attr;
	struct peer *p;
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
	peer_key(&peer, key);
	c = calloc(1, sizeof(*c));
	pthread_mutex_lock(&f->f_lock);
	p = peer_find(f, key, true);
	if (!c)
		refused = "out of memory";
	else if (f->f_pending >= f->f_cfg.tf_max_connections)
		refused = "connection limit reached (handshakes under way)";
	else if (!p || p->p_n >= f->f_cfg.tf_max_per_address)
		refused = "as many connections from this address as allowed";
	else
		p->p_n++, f->f_pending++;
	if (p && !p->p_n) /* added for nothing */
		*p = f->f_peers[--f->f_npeers];
	pthread_mutex_unlock(&f->f_lock);
	if (refused) {
		char addr[INET6_ADDRSTRLEN];

		peer_name(&peer, addr, sizeof(addr));
		log_warnx("%s: connection from %s refused: %s", f->f_name, addr, refused);
		close(fd);
		free(c);
		return;
	}
	c->fc_pending = c->fc_peer_counted = true;
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
		conn_release(c);
		free(c);
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

/* The certificate chain (the first one ours) and key, or the trusted certificates, from
 * PEM text. Returns 0 or -1 with err set. */
static int load_pem(struct tls_front *f, const struct tls_front_config *cfg, char *err,
		    size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(cfg->tf_cert_pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = NULL;
	bool ok = x && SSL_CTX_use_certificate(f->f_ctx, x) == 1;
	int n = 0;

	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		ok = SSL_CTX_add0_chain_cert(f->f_ctx, x) == 1;
	BIO_free(bio);
	bio = ok ? BIO_new_mem_buf(cfg->tf_key_pem, -1) : NULL;
	key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	ok = key && SSL_CTX_use_PrivateKey(f->f_ctx, key) == 1 &&
	     SSL_CTX_check_private_key(f->f_ctx) == 1;
	EVP_PKEY_free(key);
	BIO_free(bio);
	if (!ok) {
		snprintf(err, errlen, "bad certificate or key: %s",
			 ERR_peek_last_error() ? ERR_reason_error_string(ERR_peek_last_error())
					       : "no PEM data");
		return -1;
	}
	if (!cfg->tf_trust_pem)
		return 0;
	/* Clients must present a certificate the trust list signed. */
	bio = BIO_new_mem_buf(cfg->tf_trust_pem, -1);
	while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		ok = X509_STORE_add_cert(SSL_CTX_get_cert_store(f->f_ctx), x) == 1 &&
		     SSL_CTX_add_client_CA(f->f_ctx, x) == 1;
		X509_free(x);
		if (!ok)
			break;
		n++;
	}
	BIO_free(bio);
	if (!ok || n == 0) {
		snprintf(err, errlen, "bad trusted certificates: %s",
			 n ? ERR_reason_error_string(ERR_peek_last_error()) : "none found");
		return -1;
	}
	SSL_CTX_set_verify(f->f_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

struct tls_front *tls_front_start(const struct tls_front_config *cfg, char *err, size_t errlen)
{
	struct tls_front *f = calloc(1, sizeof(*f));
	int r;

	if (!f) {
		close(cfg->tf_listen_fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->f_cfg = *cfg;
	f->f_verify_clients = cfg->tf_trust_pem != NULL;
	f->f_cfg.tf_cert_pem = f->f_cfg.tf_key_pem = f->f_cfg.tf_trust_pem = NULL;
	f->f_cfg.tf_client_name = NULL;
	f->f_cfg.tf_name = NULL;
	if (!f->f_cfg.tf_max_per_address)
		f->f_cfg.tf_max_per_address = TLS_FRONT_MAX_PER_ADDRESS;
	if (!f->f_cfg.tf_request_timeout)
		f->f_cfg.tf_request_timeout = TLS_FRONT_REQUEST_TIMEOUT_S;
	snprintf(f->f_name, sizeof(f->f_name), "%s", cfg->tf_name);
	f->f_listen = cfg->tf_listen_fd;
	f->f_stop = eventfd(0, EFD_CLOEXEC);
	f->f_peers = calloc(2 * (size_t)cfg->tf_max_connections, sizeof(*f->f_peers));
	pthread_mutex_init(&f->f_lock, NULL);
	pthread_cond_init(&f->f_idle, NULL);
	pthread_cond_init(&f->f_handed, NULL);
	if (cfg->tf_client_name && cfg->tf_trust_pem)
		f->f_client_name = strdup(cfg->tf_client_name);
	if (!f->f_peers || (cfg->tf_client_name && cfg->tf_trust_pem && !f->f_client_name)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (f->f_stop < 0 || set_nonblocking(f->f_listen) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	/* TLS 1.2 (AEAD suites) and 1.3 only; no session tickets: every connection does a full
	 * handshake, so a client certificate is checked every time. */
	f->f_ctx = stream_tls_context(true);
	if (!f->f_ctx) {
		snprintf(err, errlen, "no TLS context");
		goto fail;
	}
	SSL_CTX_set_options(f->f_ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(f->f_ctx, 0);
	SSL_CTX_set_session_cache_mode(f->f_ctx, SSL_SESS_CACHE_OFF);
	if (load_pem(f, cfg, err, errlen) < 0)
		goto fail;
	r = pthread_create(&f->f_acceptor, NULL, accept_main, f);
	if (r) {
		snprintf(err, errlen, "no accept thread: %s", strerror(r));
		goto fail;
	}
	f->f_acceptor_started = true;
	return f;

fail:
	ERR_clear_error();
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
	while (f->f_count || f->f_pending)
		pthread_cond_wait(&f->f_idle, &f->f_lock);
	pthread_mutex_unlock(&f->f_lock);
	SSL_CTX_free(f->f_ctx);
	if (f->f_stop >= 0)
		close(f->f_stop);
	pthread_mutex_destroy(&f->f_lock);
	pthread_cond_destroy(&f->f_idle);
	pthread_cond_destroy(&f->f_handed);
	free(f->f_peers);
	free(f->f_client_name);
	free(f);
}

/* ---- taking a connection over after an upgrade ---- */

/* A taken stream's close gives its place in the count back. */
static void taken_closed(void *arg)
{
	conn_done(arg);
}

struct stream *tls_front_take(struct tls_front *f, int http_fd, uint8_t **early, size_t *n)
{
	struct front_conn *c;
	struct stream *ts = NULL;
	struct timespec deadline;
	uint8_t *buf = NULL;
	size_t len = 0, up_len;
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
		const struct splice_side *up = &c->fc_splice.sp_side[1];

		up_len = up->sd_out_len;
		buf = malloc(TAKE_EARLY_MAX);
		for (ssize_t r = 1; buf && r > 0 && len<TAKE_EARLY_MAX; len += r> 0 ? (size_t)r : 0)
			r = recv(http_fd, buf + len, TAKE_EARLY_MAX - len, MSG_DONTWAIT);
		if (!buf || len + up_len > TAKE_EARLY_MAX) {
			log_warnx("%s: connection from %s dropped at its upgrade: %s", f->f_name,
				  c->fc_addr, buf ? "too many early bytes" : "out of memory");
			stream_close(c->fc_net_st);
			conn_done(f);
			free(buf);
			buf = NULL;
		} else {
			memcpy(buf + len, up->sd_out + up->sd_out_off, up_len);
			len += up_len;
			ts = c->fc_net_st;
			stream_on_close(ts, taken_closed, f);
			*early = buf;
			*n = len;
		}
	}
	conn_unref(c);
	return ts;
}

int tls_front_client_name(struct tls_front *f, int http_fd, char *buf, size_t len)
{
	struct front_conn *c;
	int r = -ENOENT;

	if (len)
		buf[0] = '\0';
	pthread_mutex_lock(&f->f_lock);
	/* Newest first: a socketpair end's number is reused only after libmicrohttpd closed
	 * it, and a connection that ended is soon out of the list anyway. */
	for (c = f->f_conns; c && c->fc_http_fd != http_fd; c = c->fc_next)
		;
	if (c && c->fc_client_name[0] && strlen(c->fc_client_name) < len) {
		memcpy(buf, c->fc_client_name, strlen(c->fc_client_name) + 1);
		r = 0;
	}
	pthread_mutex_unlock(&f->f_lock);
	return r;
}
