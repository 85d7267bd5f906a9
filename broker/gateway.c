/* The display gateway: checks a /gateway request (upgrade kind, Origin, ticket), connects
 * the desktop (a host's display relay over TLS with its "VDI-TICKET" line, or a manual
 * desktop's VNC endpoint, authenticated here with its stored password while the client
 * authenticates with its ticket: display/vnc_auth.h), answers 101 and splices client and
 * desktop in a thread per connection on net/splice.h with bounded buffers, WebSocket
 * framed or raw as the splice's filter (the client's TLS runs in this thread too, on the
 * client's own socket: web_stream). It ends a connection on idle or age limits and when
 * its session is disconnected or logged off, and its close frame says why. */
#include "broker/gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/internal.h"
#include "broker/metrics.h"
#include "display/vnc_auth.h"
#include "lib/clock.h"
#include "lib/hostport.h"
#include "lib/log.h"
#include "net/splice.h"
#include "net/tlsname.h"
#include "web/websocket.h"

#define BUF_SIZE	  65536
#define DESK_READ	  (256 * 1024) /* one screen update in few pieces */
#define MAX_FRAME	  (1u << 20)
#define CONNECT_TIMEOUT_S 10
#define TUNNEL_PROTOCOL	  "vdi-tunnel/1"
#define CTL_ROOM	  512 /* control frames queued behind a data frame */
#define DRAIN_MS	  2000
#define TICK_MS		  500

enum end_reason {
	END_NONE,
	END_CLIENT,
	END_DESKTOP,
	END_IDLE,
	END_AGE,
	END_SESSION,
	END_TAKEOVER,
	END_SHUTDOWN,
	END_PROTOCOL,
	END_AUTH
};

static const char *const end_names[] = {"",
					"client left",
					"desktop closed",
					"idle timeout",
					"maximum duration reached",
					"session ended",
					"taken over by a new connection",
					"broker stopping",
					"client protocol error",
					"client VNC authentication failed"};

struct gateway {
	struct broker *g_broker;
	SSL_CTX *g_ssl;
	pthread_mutex_t g_lock;
	pthread_cond_t g_idle;
	struct gw_conn *g_conns;
	int g_count;
	bool g_stopping;
};

struct gw_conn {
	struct gateway *c_gw;
	struct gw_conn *c_next;
	struct web_stream *c_st; /* the client (the web layer did the TLS) */
	int c_desk;
	SSL *c_ssl;
	struct stream *c_desk_st; /* from when the desktop is connected */
	bool c_ws;
	enum end_reason c_stop; /* set by others under g_lock */
	char c_session[64], c_desktop[64], c_user[128], c_addr[64];
	bool c_shim; /* manual desktops: the client's VNC handshake with the ticket first */
	struct vnc_auth_server c_auth;
	bool c_closing; /* no more from the client: a close frame is queued or it is gone */
	int64_t c_last_check;
	/* WebSocket input */
	bool c_in_frame, c_fragmented;
	struct websocket_frame c_frame;
	uint64_t c_frame_done;
	/* the splice: side 0 the client, side 1 the desktop */
	struct splice c_sp;
	uint8_t c_cin[BUF_SIZE + WEBSOCKET_HEADER_MAX + 125]; /* raw from the client */
	uint8_t c_todesk[BUF_SIZE];
	uint8_t c_fromdesk[DESK_READ];
	/* toward the client: data frames, control frames between them */
	uint8_t c_tocli[DESK_READ + WEBSOCKET_HEADER_MAX + CTL_ROOM];
};

/* ---- connecting the desktop ---- */

static int set_timeouts(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* "host:port" or "[v6]:port" to a connected TCP socket. Returns the fd or -errno. */
static int tcp_connect(const char *address, char *host, size_t hostlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char service[12];
	unsigned port;
	int fd = -EHOSTUNREACH, one = 1;

	if (hostport_split(address, host, hostlen, &port) < 0 || port == 0)
		return -EINVAL;
	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fd = -errno;
			continue;
		}
		set_timeouts(fd, CONNECT_TIMEOUT_S);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -ECONNREFUSED;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Connects to host_id's display relay at address relay and sends the ticket line, once
 * the relay's certificate proved valid for that address and issued to that host: the
 * ticket (full control of a desktop) goes to no other. */
static int relay_connect(struct gateway *gw, struct gw_conn *c, const char *host_id,
			 const char *relay, const char *ticket)
{
	char host[256], line[16 + BROKER_TICKET_LEN], name[TLSNAME_MAX + 32];
	struct in6_addr a6;
	struct in_addr a4;
	int fd, r;

	if (!gw->g_ssl)
		return -ENOTCONN;
	fd = tcp_connect(relay, host, sizeof(host));
	if (fd < 0)
		return fd;
	c->c_ssl = SSL_new(gw->g_ssl);
	if (!c->c_ssl)
		goto out_close;
	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->c_ssl), host);
	else
		SSL_set1_host(c->c_ssl, host);
	SSL_set_mode(c->c_ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!SSL_set_fd(c->c_ssl, fd) || SSL_connect(c->c_ssl) != 1) {
		log_warnx("gateway: session=%s: TLS with the display relay %s failed (%s)",
			  c->c_session, relay, ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		goto out_free;
	}
	if (!tlsname_is(tlsname_peer(c->c_ssl), host_id)) {
		hosts_identity_refused(gw->g_broker, host_id,
				       "gateway session=%s: display relay %s refused: its "
				       "certificate names %s, not '%s'",
				       c->c_session, relay,
				       tlsname_describe(tlsname_peer(c->c_ssl), name, sizeof(name)),
				       host_id);
		goto out_free;
	}
	hosts_identity_proven(gw->g_broker, host_id);
	memcpy(line, "VDI-TICKET ", 11);
	memcpy(line + 11, ticket, BROKER_TICKET_LEN);
	line[11 + BROKER_TICKET_LEN] = '\n';
	r = SSL_write(c->c_ssl, line, 12 + BROKER_TICKET_LEN);
	explicit_bzero(line, sizeof(line));
	if (r != 12 + BROKER_TICKET_LEN)
		goto out_free;
	c->c_desk = fd;
	return 0;

out_free:
	SSL_free(c->c_ssl);
	c->c_ssl = NULL;
out_close:
	close(fd);
	return -ECONNREFUSED;
}

static int manual_connect(struct gw_conn *c, const char *address, const char *password)
{
	char host[256];
	int fd = tcp_connect(address, host, sizeof(host)), r;

	if (fd < 0)
		return fd;
	r = vnc_auth_login(fd, password);
	if (r < 0) {
		close(fd);
		return r;
	}
	c->c_desk = fd;
	return 0;
}

/* ---- the splice ---- */

static bool session_live(struct broker *b, const char *id)
{
	struct session_rec s;
	/* A store that cannot answer does not end a display connection. */
	bool live = store_session_get(b->b_store, id, &s) < 0 || s.sr_state == SESSION_CONNECTED;

	session_rec_release(&s);
	return live;
}

/* The first reason to end wins; others (takeover, shutdown) set it too. */
static void conn_end(struct gw_conn *c, enum end_reason why)
{
	enum end_reason none = END_NONE;

	__atomic_compare_exchange_n(&c->c_stop, &none, why, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
}

/* Ends the splice for why: it stops reading and drains toward the client. */
static void conn_stop(struct gw_conn *c, enum end_reason why)
{
	conn_end(c, why);
	c->c_closing = true;
	splice_end(&c->c_sp, SPLICE_OWNER + (int)why, -1);
}

/* Appends bytes for the client: a binary frame, or raw in a tunnel. */
static bool queue_client(struct gw_conn *c, const void *p, size_t n)
{
	uint8_t h[WEBSOCKET_HEADER_MAX];
	size_t hl = c->c_ws ? websocket_header(h, WEBSOCKET_OP_BINARY, n) : 0;

	if (hl + n > splice_room(&c->c_sp, 0))
		return false;
	return splice_put(&c->c_sp, 0, h, hl) && splice_put(&c->c_sp, 0, p, n);
}

static void queue_control(struct gw_conn *c, unsigned op, const void *p, size_t n)
{
	uint8_t h[WEBSOCKET_HEADER_MAX];
	size_t hl = websocket_header(h, op, n);

	if (hl + n > splice_room(&c->c_sp, 0))
		return; /* a client flooding pings loses pongs, nothing else */
	splice_put(&c->c_sp, 0, h, hl);
	splice_put(&c->c_sp, 0, p, n);
}

/* The close frame says why, for clients that show it: code and end_names[why]. */
static void ws_close(struct gw_conn *c, unsigned code, enum end_reason why)
{
	uint8_t body[2 + 64] = {(uint8_t)(code >> 8), (uint8_t)code};
	size_t n = strlen(end_names[why]);

	if (n > sizeof(body) - 2)
		n = sizeof(body) - 2;
	memcpy(body + 2, end_names[why], n);
	if (c->c_ws && !c->c_closing)
		queue_control(c, WEBSOCKET_OP_CLOSE, body, 2 + n);
	conn_stop(c, why);
}

/* Close codes of the server's own ends (docs/api.md): 4000 + the reason. */
static unsigned close_code(enum end_reason why)
{
	switch (why) {
	case END_SESSION: return 4001;
	case END_TAKEOVER: return 4002;
	case END_IDLE: return 4003;
	case END_AGE: return 4004;
	default: return 1001;
	}
}

/* The client's VNC handshake with the gateway (manual desktops): security type 2 with
 * the ticket as password (display/vnc_auth.h), one step at a time, each answer its own
 * frame. Consumes bytes; returns how many it took. */
static size_t shim_take(struct gw_conn *c, const uint8_t *p, size_t n)
{
	uint8_t out[VNC_AUTH_SERVER_OUT];
	enum vnc_auth_step step;
	size_t len, took = vnc_auth_server_feed(&c->c_auth, p, n, out, &len, &step);

	if (step == VNC_AUTH_BROKEN) {
		ws_close(c, 1002, END_PROTOCOL);
		return n;
	}
	if (len)
		queue_client(c, out, len);
	if (step == VNC_AUTH_MORE)
		return took;
	c->c_shim = false;
	c->c_sp.sp_side[1].sd_paused = false; /* the desktop's bytes may flow now */
	if (step == VNC_AUTH_REFUSED) {
		conn_stop(c, END_AUTH);
		return n;
	}
	return took;
}

/* Client payload bytes (unframed) toward the desktop, as far as they fit. Returns how
 * many it took. */
static size_t client_payload(struct gw_conn *c, const uint8_t *p, size_t n)
{
	size_t done = 0, room;

	while (c->c_shim && done < n && !c->c_closing)
		done += shim_take(c, p + done, n - done);
	if (c->c_closing)
		return n;
	room = splice_room(&c->c_sp, 1);
	if (room > n - done)
		room = n - done;
	splice_put(&c->c_sp, 1, p + done, room);
	return done + room;
}

/* Decodes WebSocket input as far as the desktop's buffer allows. Returns the bytes
 * taken. */
static size_t ws_decode(struct gw_conn *c, uint8_t *in, size_t len)
{
	size_t pos = 0;

	while (!c->c_closing) {
		if (!c->c_in_frame) {
			int r = websocket_parse(in + pos, len - pos, MAX_FRAME, &c->c_frame);

			if (r == 0)
				break;
			if (r < 0) {
				log_warnx("gateway: session=%s: %s from the client", c->c_session,
					  r == -EMSGSIZE ? "oversized frame" : "bad frame");
				ws_close(c, r == -EMSGSIZE ? 1009 : 1002, END_PROTOCOL);
				break;
			}
			if (c->c_frame.wf_opcode >= WEBSOCKET_OP_CLOSE) {
				size_t total = c->c_frame.wf_header_len + (size_t)c->c_frame.wf_len;
				uint8_t *body = in + pos + c->c_frame.wf_header_len;

				if (len - pos < total)
					break;
				websocket_unmask(body, (size_t)c->c_frame.wf_len,
						 c->c_frame.wf_mask, 0);
				if (c->c_frame.wf_opcode == WEBSOCKET_OP_PING)
					queue_control(c, WEBSOCKET_OP_PONG, body,
						      (size_t)c->c_frame.wf_len);
				else if (c->c_frame.wf_opcode == WEBSOCKET_OP_CLOSE)
					ws_close(c, 1000, END_CLIENT);
				pos += total;
				continue;
			}
			if (c->c_frame.wf_opcode == WEBSOCKET_OP_TEXT) {
				ws_close(c, 1003, END_PROTOCOL);
				break;
			}
			if ((c->c_frame.wf_opcode == WEBSOCKET_OP_CONT) != c->c_fragmented) {
				ws_close(c, 1002, END_PROTOCOL);
				break;
			}
			c->c_fragmented = !c->c_frame.wf_fin;
			pos += c->c_frame.wf_header_len;
			c->c_in_frame = true;
			c->c_frame_done = 0;
		}
		{
			size_t avail = len - pos, want;
			uint64_t left = c->c_frame.wf_len - c->c_frame_done;

			want = left < avail ? (size_t)left : avail;
			websocket_unmask(in + pos, want, c->c_frame.wf_mask, c->c_frame_done);
			want = client_payload(c, in + pos, want);
			/* bytes not taken stay: re-mask them so the next pass unmasks alike */
			websocket_unmask(in + pos + want,
					 (left < avail ? (size_t)left : avail) - want,
					 c->c_frame.wf_mask, c->c_frame_done + want);
			pos += want;
			c->c_frame_done += want;
			if (c->c_frame_done == c->c_frame.wf_len)
				c->c_in_frame = false;
			else
				break;
		}
	}
	return c->c_closing ? len : pos;
}

/* The splice's filter. From the client: WebSocket frames decoded (or the tunnel's raw
 * bytes), the VNC handshake with the ticket first for manual desktops. From the
 * desktop: what was read in one batch, as one binary frame (fewer, larger messages). */
static ssize_t gw_filter(struct splice *sp, int from, uint8_t *in, size_t n)
{
	struct gw_conn *c = sp->sp_arg;

	if (from == 0)
		return (ssize_t)(c->c_ws ? ws_decode(c, in, n) : client_payload(c, in, n));
	return queue_client(c, in, n) ? (ssize_t)n : 0;
}

/* Others' reasons (takeover, shutdown), and the session's state once a second. */
static int gw_tick(struct splice *sp, int64_t now)
{
	struct gw_conn *c = sp->sp_arg;
	struct gateway *gw = c->c_gw;
	enum end_reason why;

	pthread_mutex_lock(&gw->g_lock);
	why = c->c_stop;
	pthread_mutex_unlock(&gw->g_lock);
	if (why != END_NONE)
		return SPLICE_OWNER + (int)why;
	if (now - c->c_last_check >= 1000) {
		c->c_last_check = now;
		if (!session_live(gw->g_broker, c->c_session)) {
			pthread_mutex_lock(&gw->g_lock);
			conn_end(c, END_SESSION);
			pthread_mutex_unlock(&gw->g_lock);
			return SPLICE_OWNER + END_SESSION;
		}
	}
	return SPLICE_RUNNING;
}

/* The end is decided: the reason recorded, and the close frame queued for the drain. */
static void gw_ending(struct splice *sp)
{
	struct gw_conn *c = sp->sp_arg;
	bool client = sp->sp_end_side == 0 || sp->sp_end_side < 0;

	switch (sp->sp_end) {
	case SPLICE_EOF:
	case SPLICE_ERROR:
		if (client) {
			conn_stop(c, END_CLIENT);
			break;
		}
		ws_close(c, sp->sp_end == SPLICE_EOF ? 1000 : 1011, END_DESKTOP);
		break;
	case SPLICE_IDLE: ws_close(c, close_code(END_IDLE), END_IDLE); break;
	case SPLICE_AGE: ws_close(c, close_code(END_AGE), END_AGE); break;
	default: {
		enum end_reason why = (enum end_reason)(sp->sp_end - SPLICE_OWNER);

		if (why == END_SESSION || why == END_TAKEOVER || why == END_SHUTDOWN)
			ws_close(c, close_code(why), why);
		break;
	}
	}
	if (__atomic_load_n(&c->c_stop, __ATOMIC_SEQ_CST) == END_CLIENT)
		sp->sp_side[0].sd_shut = true; /* the client left: nothing is drained to it */
}

static void conn_unlink(struct gw_conn *c)
{
	struct gateway *gw = c->c_gw;

	pthread_mutex_lock(&gw->g_lock);
	for (struct gw_conn **p = &gw->g_conns; *p; p = &(*p)->c_next)
		if (*p == c) {
			*p = c->c_next;
			break;
		}
	pthread_mutex_unlock(&gw->g_lock);
}

/* Logs the end, closes both sides and records the session disconnected (unless it ended
 * or moved to another connection). */
static void conn_finish(struct gw_conn *c)
{
	struct gateway *gw = c->c_gw;
	struct broker *b = gw->g_broker;
	enum end_reason why;
	int r;

	pthread_mutex_lock(&gw->g_lock);
	why = c->c_stop;
	pthread_mutex_unlock(&gw->g_lock);
	log_info("gateway: session=%s desktop=%s user=%s: closed (%s), %llu bytes in, %llu out",
		 c->c_session, c->c_desktop, c->c_user, end_names[why],
		 (unsigned long long)c->c_sp.sp_side[0].sd_read,
		 (unsigned long long)c->c_sp.sp_side[1].sd_read);
	broker_metrics_gateway_close(c->c_sp.sp_side[0].sd_read, c->c_sp.sp_side[0].sd_written);
	stream_close(c->c_desk_st); /* the desktop's socket and TLS */
	web_stream_close(c->c_st);
	conn_unlink(c);
	if (why != END_SESSION && why != END_TAKEOVER) {
		r = broker_session_closed(b, c->c_session, c->c_addr);
		if (r < 0 && r != -EINVAL)
			log_warnx("gateway: session=%s: cannot mark it disconnected (%s)",
				  c->c_session, strerror(-r));
	}
	explicit_bzero(&c->c_auth, sizeof(c->c_auth));
	free(c);
	pthread_mutex_lock(&gw->g_lock);
	gw->g_count--;
	pthread_cond_broadcast(&gw->g_idle);
	pthread_mutex_unlock(&gw->g_lock);
}

static void *conn_run(void *arg)
{
	struct gw_conn *c = arg;

	pthread_setname_np(pthread_self(), "gw-conn");
	c->c_last_check = monotonic_ms();
	splice_run(&c->c_sp);
	conn_finish(c);
	return NULL;
}

static void on_upgrade(void *arg, struct web_stream *st, const uint8_t *early, size_t n)
{
	struct gw_conn *c = arg;
	pthread_attr_t attr;
	pthread_t t;

	c->c_st = st;
	if (!st) {
		conn_end(c, END_CLIENT); /* lost while the web layer handed it over */
		conn_finish(c);
		return;
	}
	c->c_sp.sp_side[0].sd_stream = web_stream_get(st);
	if (n > sizeof(c->c_cin)) {
		n = 0;
		conn_end(c, END_PROTOCOL);
	}
	memcpy(c->c_cin, early, n);
	c->c_sp.sp_side[0].sd_in_len = n;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_run, c) != 0) {
		pthread_attr_destroy(&attr);
		log_warnx("gateway: session=%s: no thread for the connection", c->c_session);
		conn_end(c, END_SHUTDOWN);
		conn_finish(c);
		return;
	}
	pthread_attr_destroy(&attr);
}

/* The client's side (its stream comes with the upgrade) and the desktop's: drained
 * toward the client only, for DRAIN_MS at most; the desktop read in batches, and not
 * before the client's VNC handshake with the gateway is done. */
static void conn_splice_init(struct gw_conn *c)
{
	const struct broker_config *cfg = c->c_gw->g_broker->b_cfg;

	c->c_sp = (struct splice){
	    .sp_side = {{.sd_flags = SPLICE_DRAIN,
			 .sd_out = c->c_tocli,
			 .sd_out_size = sizeof(c->c_tocli),
			 .sd_in = c->c_cin,
			 .sd_in_size = sizeof(c->c_cin)},
			{.sd_stream = c->c_desk_st,
			 .sd_flags = SPLICE_BATCH,
			 .sd_out = c->c_todesk,
			 .sd_out_size = sizeof(c->c_todesk),
			 .sd_in = c->c_fromdesk,
			 .sd_in_size = sizeof(c->c_fromdesk),
			 .sd_paused = c->c_shim}},
	    .sp_filter = gw_filter,
	    .sp_tick = gw_tick,
	    .sp_ending = gw_ending,
	    .sp_arg = c,
	    .sp_stop_fd = -1,
	    .sp_tick_ms = TICK_MS,
	    .sp_idle_ms = cfg->bc_gateway_idle * 1000LL,
	    .sp_age_ms = cfg->bc_gateway_lifetime * 1000LL,
	    .sp_drain_ms = DRAIN_MS,
	};
}

/* ---- the request ---- */

static void refuse_after_redeem(struct gateway *gw, struct web_request *req, const char *session,
				unsigned status, const char *code, const char *msg)
{
	broker_session_closed(gw->g_broker, session, web_client_addr(req));
	web_reply_error(req, status, code, "%s", msg);
}

void gateway_handle(struct gateway *gw, struct web_request *req, const char *origin)
{
	const char *upgrade = web_header(req, "Upgrade"), *conn_hdr = web_header(req, "Connection");
	const char *key = web_header(req, "Sec-WebSocket-Key");
	const char *version = web_header(req, "Sec-WebSocket-Version");
	const char *protocols = web_header(req, "Sec-WebSocket-Protocol");
	char ticket[80], accept[29];
	struct gw_conn *c;
	json_t *target;
	bool ws;
	int r;

	if (!web_query(req, "ticket", ticket, sizeof(ticket))) {
		web_reply_error(req, 400, "bad_request", "ticket missing");
		return;
	}
	ws = upgrade && websocket_has_token(upgrade, "websocket");
	if (!conn_hdr || !websocket_has_token(conn_hdr, "upgrade") ||
	    (!ws && !(upgrade && websocket_has_token(upgrade, TUNNEL_PROTOCOL)))) {
		explicit_bzero(ticket, sizeof(ticket));
		web_add_header(req, "Upgrade", "websocket, " TUNNEL_PROTOCOL);
		web_reply_error(req, 426, "upgrade_required",
				"the gateway needs a WebSocket or " TUNNEL_PROTOCOL " upgrade");
		return;
	}
	if (ws && (!version || strcmp(version, "13"))) {
		explicit_bzero(ticket, sizeof(ticket));
		web_add_header(req, "Sec-WebSocket-Version", "13");
		web_reply_error(req, 426, "upgrade_required", "WebSocket version 13 only");
		return;
	}
	if (ws && websocket_accept_key(key, accept) < 0) {
		explicit_bzero(ticket, sizeof(ticket));
		web_reply_error(req, 400, "bad_request", "malformed Sec-WebSocket-Key");
		return;
	}
	if (!web_origin_ok(req, origin)) {
		explicit_bzero(ticket, sizeof(ticket));
		web_reply_error(req, 403, "bad_origin", "cross-origin gateway request refused");
		return;
	}
	pthread_mutex_lock(&gw->g_lock);
	r = gw->g_stopping;
	pthread_mutex_unlock(&gw->g_lock);
	if (r) {
		explicit_bzero(ticket, sizeof(ticket));
		web_reply_error(req, 503, "unavailable", "the broker is stopping");
		return;
	}
	target = broker_ticket_redeem(gw->g_broker, ticket, web_client_addr(req));
	if (!target) {
		explicit_bzero(ticket, sizeof(ticket));
		if (errno == EACCES)
			web_reply_error(req, 403, "bad_ticket", "unknown, used or expired ticket");
		else
			web_reply_error(req, 503, "unavailable",
					"the broker's store is unavailable");
		return;
	}
	c = strlen(ticket) == BROKER_TICKET_LEN ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		explicit_bzero(ticket, sizeof(ticket));
		refuse_after_redeem(gw, req, jstr(target, "session"), 500, "internal",
				    "out of memory");
		json_decref(target);
		return;
	}
	c->c_gw = gw;
	c->c_ws = ws;
	c->c_desk = -1;
	snprintf(c->c_session, sizeof(c->c_session), "%s", jstr(target, "session"));
	snprintf(c->c_desktop, sizeof(c->c_desktop), "%s", jstr(target, "desktop"));
	snprintf(c->c_user, sizeof(c->c_user), "%s", jstr(target, "username"));
	snprintf(c->c_addr, sizeof(c->c_addr), "%s", web_client_addr(req));
	if (!strcmp(jstr(target, "kind"), "host")) {
		r = jstr(target, "relay") && jstr(target, "host")
			? relay_connect(gw, c, jstr(target, "host"), jstr(target, "relay"), ticket)
			: -EINVAL;
	} else {
		r = jstr(target, "address")
			? manual_connect(c, jstr(target, "address"), jstr(target, "vnc_password"))
			: -EINVAL;
		c->c_shim = true;
		if (vnc_auth_server_init(&c->c_auth, ticket) < 0)
			r = -EIO;
	}
	explicit_bzero(ticket, sizeof(ticket));
	json_decref(target);
	if (r == 0) {
		set_timeouts(c->c_desk, 0);
		c->c_desk_st = stream_new(c->c_desk, c->c_ssl);
		if (!c->c_desk_st)
			r = -ENOMEM;
	}
	if (r < 0) {
		log_warnx("gateway: session=%s desktop=%s: cannot reach the desktop (%s)",
			  c->c_session, c->c_desktop, strerror(-r));
		if (c->c_desk_st) {
			stream_close(c->c_desk_st);
		} else if (c->c_desk >= 0) {
			SSL_free(c->c_ssl);
			close(c->c_desk);
		}
		refuse_after_redeem(gw, req, c->c_session, 502, "desktop_unreachable",
				    "the desktop's display cannot be reached");
		explicit_bzero(&c->c_auth, sizeof(c->c_auth));
		free(c);
		return;
	}
	conn_splice_init(c);
	if (c->c_shim)
		queue_client(c, VNC_AUTH_GREETING, VNC_AUTH_GREETING_LEN);
	if (ws) {
		web_add_header(req, "Upgrade", "websocket");
		web_add_header(req, "Sec-WebSocket-Accept", accept);
		if (protocols && websocket_has_token(protocols, "binary"))
			web_add_header(req, "Sec-WebSocket-Protocol", "binary");
	} else {
		web_add_header(req, "Upgrade", TUNNEL_PROTOCOL);
	}
	pthread_mutex_lock(&gw->g_lock);
	for (struct gw_conn *o = gw->g_conns; o; o = o->c_next)
		if (!strcmp(o->c_session, c->c_session))
			conn_end(o, END_TAKEOVER);
	c->c_next = gw->g_conns;
	gw->g_conns = c;
	gw->g_count++;
	pthread_mutex_unlock(&gw->g_lock);
	log_info("gateway: session=%s desktop=%s user=%s addr=%s: %s connected", c->c_session,
		 c->c_desktop, c->c_user, c->c_addr, ws ? "WebSocket" : "tunnel");
	broker_metrics_gateway_open(ws);
	if (web_reply_upgrade(req, on_upgrade, c) < 0) {
		broker_metrics_gateway_close(0, 0);
		conn_unlink(c);
		stream_close(c->c_desk_st);
		broker_session_closed(gw->g_broker, c->c_session, c->c_addr);
		free(c);
		pthread_mutex_lock(&gw->g_lock);
		gw->g_count--;
		pthread_cond_broadcast(&gw->g_idle);
		pthread_mutex_unlock(&gw->g_lock);
	}
}

/* ---- life cycle ---- */

struct gateway *gateway_new(struct broker *b, char *err, size_t errlen)
{
	const struct broker_config *cfg = b->b_cfg;
	struct gateway *gw = calloc(1, sizeof(*gw));

	if (!gw) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	gw->g_broker = b;
	pthread_mutex_init(&gw->g_lock, NULL);
	pthread_cond_init(&gw->g_idle, NULL);
	if (cfg->bc_host_cert[0] && cfg->bc_host_key[0] && cfg->bc_host_ca[0]) {
		gw->g_ssl = stream_tls_context(false);
		if (!gw->g_ssl ||
		    SSL_CTX_load_verify_locations(gw->g_ssl, cfg->bc_host_ca, NULL) != 1 ||
		    SSL_CTX_use_certificate_chain_file(gw->g_ssl, cfg->bc_host_cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(gw->g_ssl, cfg->bc_host_key, SSL_FILETYPE_PEM) !=
			1) {
			snprintf(err, errlen, "gateway: cannot load [hosts] cert, key and ca (%s)",
				 ERR_reason_error_string(ERR_peek_last_error()));
			ERR_clear_error();
			gateway_free(gw);
			return NULL;
		}
		SSL_CTX_set_verify(gw->g_ssl, SSL_VERIFY_PEER, NULL);
	}
	return gw;
}

void gateway_free(struct gateway *gw)
{
	if (!gw)
		return;
	pthread_mutex_lock(&gw->g_lock);
	gw->g_stopping = true;
	for (struct gw_conn *c = gw->g_conns; c; c = c->c_next)
		conn_end(c, END_SHUTDOWN);
	while (gw->g_count)
		pthread_cond_wait(&gw->g_idle, &gw->g_lock);
	pthread_mutex_unlock(&gw->g_lock);
	SSL_CTX_free(gw->g_ssl);
	pthread_mutex_destroy(&gw->g_lock);
	pthread_cond_destroy(&gw->g_idle);
	free(gw);
}
