/* libvncserver glue for vdi-hv. One display thread owns the rfbScreen and everything
 * libvncserver does: it polls its own listening socket (unix or TCP: libvncserver's
 * listeners, argv parsing and HTTP server stay off), the viewers' sockets and a wake-up
 * eventfd, and calls rfbProcessEvents() with a zero timeout only when a socket is
 * readable or a refresh is due, so an idle desktop wakes it once a second and sends
 * nothing. A refresh asks the source which pixels changed (display/source.h; for
 * vdi-hv's framebuffer: KVM dirty log narrowed, shadow compared) and marks only those
 * rectangles; the interval is DISPLAY_REFRESH_INPUT_MS right after viewer input (the
 * guest is about to draw), DISPLAY_REFRESH_FAST_MS while the screen changes, and backs
 * off to DISPLAY_REFRESH_IDLE_MS. Authentication is VNC password authentication against
 * the tickets (display/vnc_ticket.c), throttled per source and globally. */
#include "display/display.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "display/vnc_ticket.h"
#include "lib/clock.h"
#include "lib/be.h"
#include "lib/hostport.h"
#include "lib/log.h"

/* How long a half-sent or half-received RFB message may stall the display thread
 * before its viewer is dropped (libvncserver reads and writes whole messages). */
#define CLIENT_WAIT_MS 5000
/* How long a viewer may take to authenticate before it is dropped: connections that
 * never authenticate must not hold the DISPLAY_MAX_VIEWERS slots. */
#define AUTH_TIMEOUT_MS 15000

struct viewer {
	rfbClientPtr v_client;
	struct display *v_display;
	unsigned v_id;
	bool v_authenticated;
	uint64_t v_connected_ms;
	int v_last_sent;	     /* rfbStatGetSentBytes() at the last update */
	bool v_extended_keys;	     /* it was told it may send QEMU extended key events */
	bool v_extended_keys_answer; /* it asked: the answer goes after the next update */
	char v_source[VNC_THROTTLE_SOURCE_LEN];
	struct vnc_input_viewer v_input;
};

struct display {
	struct display_source d_source;
	rfbScreenInfoPtr d_screen;
	bool d_insecure;
	int d_listen_fd;
	char *d_unix_path;
	int d_port;
	int d_wake_fd;
	pthread_t d_thread;
	bool d_thread_started;
	atomic_bool d_quit;
	atomic_bool d_disconnect_all;

	/* Display thread only. */
	struct vnc_input d_input;
	struct vnc_throttle d_throttle;
	struct viewer *d_viewers[DISPLAY_MAX_VIEWERS];
	unsigned d_next_id;
	unsigned d_interval_ms;
	uint64_t d_next_refresh_ms, d_last_change_ms;
	bool d_input_seen;

	/* Shared with the control socket. */
	struct vnc_tickets *d_tickets;
	atomic_uint d_viewer_count;
	atomic_uint d_refresh_ms;
	_Atomic uint64_t d_bytes_sent, d_updates, d_auth_failures;
};

/* libvncserver's own log lines go to our debug log. */
static void rfb_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void rfb_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	size_t len;

	if (log_get_level() < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	len = strlen(line);
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	log_debug("libvncserver: %s", line);
}

/* ---- listen address ---- */

struct listen_addr {
	bool la_unix;
	char la_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char la_host[256];
	char la_port[12];
};

static int parse_listen(const char *spec, struct listen_addr *la)
{
	char loopback[32];
	unsigned port;

	memset(la, 0, sizeof(*la));
	if (!spec || !*spec)
		return -EINVAL;
	if (!strncmp(spec, "unix:", 5)) {
		if (!spec[5] || strlen(spec + 5) >= sizeof(la->la_path))
			return -EINVAL;
		la->la_unix = true;
		strcpy(la->la_path, spec + 5);
		return 0;
	}
	if (!strchr(spec, ':')) { /* a bare port: on loopback */
		if (snprintf(loopback, sizeof(loopback), "127.0.0.1:%s", spec) >=
		    (int)sizeof(loopback))
			return -EINVAL;
		spec = loopback;
	}
	if (hostport_split(spec, la->la_host, sizeof(la->la_host), &port) < 0)
		return -EINVAL;
	snprintf(la->la_port, sizeof(la->la_port), "%u", port);
	return 0;
}

int display_check_listen(const char *spec)
{
	struct listen_addr la;

	return parse_listen(spec, &la);
}

static int listen_unix(struct display *d, const struct listen_addr *la)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	mode_t old_umask;
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_warn("vnc: socket");
		return -1;
	}
	strcpy(addr.sun_path, la->la_path);
	unlink(la->la_path);
	old_umask = umask(0177);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (r < 0 || listen(fd, 8) < 0) {
		log_warn("vnc: cannot listen on unix:%s", la->la_path);
		close(fd);
		return -1;
	}
	d->d_unix_path = strdup(la->la_path);
	log_info("vnc: listening on unix:%s", la->la_path);
	return fd;
}

static int listen_tcp(struct display *d, const struct listen_addr *la)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	struct sockaddr_storage bound;
	socklen_t boundlen = sizeof(bound);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	int fd = -1, one = 1, r;

	r = getaddrinfo(la->la_host, la->la_port, &hints, &res);
	if (r) {
		log_warnx("vnc: cannot resolve %s: %s", la->la_host, gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &boundlen) < 0 ||
	    getnameinfo((struct sockaddr *)&bound, boundlen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		log_warn("vnc: cannot listen on %s port %s", la->la_host, la->la_port);
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	d->d_port = atoi(port);
	log_info("vnc: listening on %s port %s", host, port);
	return fd;
}

/* "127.0.0.1", "::1" or "unix:uid=1000": whom the throttle counts against. */
static void peer_source(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	char host[NI_MAXHOST];

	snprintf(out, outlen, "unknown");
	if (getpeername(fd, (struct sockaddr *)&addr, &len) < 0)
		return;
	if (addr.ss_family == AF_UNIX) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
			snprintf(out, outlen, "unix:uid=%u", (unsigned)cred.uid);
		else
			snprintf(out, outlen, "unix");
	} else if (getnameinfo((struct sockaddr *)&addr, len, host, sizeof(host), NULL, 0,
			       NI_NUMERICHOST) == 0) {
		snprintf(out, outlen, "%.*s", (int)(outlen - 1), host);
	}
}

/* ---- viewers ---- */

static struct viewer *viewer_of(rfbClientPtr cl)
{
	return cl->clientData;
}

static struct display *display_of(rfbClientPtr cl)
{
	return cl->screen->screenData;
}

static void on_client_gone(rfbClientPtr cl)
{
	struct viewer *v = viewer_of(cl);
	struct display *d;

	if (!v)
		return;
	d = v->v_display;
	vnc_input_viewer_release(&d->d_input, &v->v_input);
	for (size_t i = 0; i < DISPLAY_MAX_VIEWERS; i++)
		if (d->d_viewers[i] == v)
			d->d_viewers[i] = NULL;
	atomic_fetch_sub(&d->d_viewer_count, 1);
	log_info("vnc: viewer %u from %s gone", v->v_id, v->v_source);
	cl->clientData = NULL;
	free(v);
}

static void on_update_request(rfbClientPtr cl, rfbFramebufferUpdateRequestMsg *request);

static enum rfbNewClientAction on_new_client(rfbClientPtr cl)
{
	struct display *d = display_of(cl);
	struct viewer *v;
	size_t slot;

	for (slot = 0; slot < DISPLAY_MAX_VIEWERS && d->d_viewers[slot]; slot++)
		;
	if (slot == DISPLAY_MAX_VIEWERS) {
		log_warnx("vnc: refusing a viewer: %d already connected", DISPLAY_MAX_VIEWERS);
		return RFB_CLIENT_REFUSE;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return RFB_CLIENT_REFUSE;
	v->v_client = cl;
	v->v_display = d;
	v->v_id = ++d->d_next_id;
	v->v_connected_ms = monotonic_ms();
	peer_source(cl->sock, v->v_source, sizeof(v->v_source));
	if (!d->d_insecure && !vnc_tickets_any(d->d_tickets, (int64_t)time(NULL))) {
		log_warnx("vnc: viewer %u from %s refused: no ticket set", v->v_id, v->v_source);
		free(v);
		return RFB_CLIENT_REFUSE;
	}
	v->v_authenticated = d->d_insecure;
	cl->clientData = v;
	cl->clientGoneHook = on_client_gone;
	cl->clientFramebufferUpdateRequestHook = on_update_request;
	d->d_viewers[slot] = v;
	atomic_fetch_add(&d->d_viewer_count, 1);
	log_info("vnc: viewer %u connected from %s", v->v_id, v->v_source);
	return RFB_CLIENT_ACCEPT;
}

static rfbBool check_password(rfbClientPtr cl, const char *response, int len)
{
	struct viewer *v = viewer_of(cl);
	struct display *d = display_of(cl);
	uint64_t now = monotonic_ms(), retry_ms = 0;
	enum vnc_ticket_access access;

	if (!v || len != CHALLENGESIZE)
		return FALSE;
	if (!vnc_throttle_allowed(&d->d_throttle, v->v_source, now, &retry_ms)) {
		atomic_fetch_add(&d->d_auth_failures, 1);
		log_warnx("vnc: viewer %u from %s refused: too many authentication failures, "
			  "retry in %llu ms",
			  v->v_id, v->v_source, (unsigned long long)retry_ms);
		return FALSE;
	}
	access = vnc_tickets_check(d->d_tickets, cl->authChallenge, (const uint8_t *)response,
				   (int64_t)time(NULL));
	if (access == VNC_TICKET_REFUSED) {
		vnc_throttle_failure(&d->d_throttle, v->v_source, now);
		atomic_fetch_add(&d->d_auth_failures, 1);
		log_warnx("vnc: viewer %u from %s refused: wrong or expired ticket", v->v_id,
			  v->v_source);
		return FALSE;
	}
	vnc_throttle_success(&d->d_throttle, v->v_source);
	v->v_authenticated = true;
	v->v_input.iv_view_only = access == VNC_TICKET_VIEW_ONLY;
	cl->viewOnly = access == VNC_TICKET_VIEW_ONLY;
	log_info("vnc: viewer %u from %s authenticated (%s)", v->v_id, v->v_source,
		 access == VNC_TICKET_VIEW_ONLY ? "view-only" : "full access");
	return TRUE;
}

/* Input reaches these only in RFB_NORMAL state (after authentication); libvncserver
 * also drops a view-only viewer's input before it gets here, and vnc_input.c checks again. */
static struct viewer *input_viewer_of(rfbClientPtr cl)
{
	struct viewer *v = viewer_of(cl);

	return v && v->v_authenticated ? v : NULL;
}

static void on_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
	struct viewer *v = input_viewer_of(cl);

	if (!v)
		return;
	vnc_input_key(&v->v_display->d_input, &v->v_input, down, (uint32_t)keysym);
	v->v_display->d_input_seen = true;
}

static void on_pointer(int buttons, int x, int y, rfbClientPtr cl)
{
	struct viewer *v = input_viewer_of(cl);

	if (!v)
		return;
	vnc_input_pointer(&v->v_display->d_input, &v->v_input, x, y, (unsigned)buttons & 0xFFu);
	v->v_display->d_input_seen = true;
}

static void on_cut_text(char *text, int len, rfbClientPtr cl)
{
	struct viewer *v = input_viewer_of(cl);

	if (!v || len < 0)
		return;
	vnc_input_cut_text(&v->v_display->d_input, &v->v_input, text, (size_t)len);
}

/* ---- QEMU extended key events: keys as PC scan codes ----
 * A viewer that lists pseudo-encoding -258 in SetEncodings is answered with an empty
 * rectangle of that encoding (as QEMU does), and may then send message 255, subtype
 * 0, with a key's scan code beside its keysym: the guest's own layout gives the key its
 * meaning, so any keyboard the viewer has works (noVNC, TigerVNC, gtk-vnc send them). */

#define ENCODING_QEMU_EXTENDED_KEY (-258)
#define MSG_QEMU		   255
#define QEMU_EXTENDED_KEY	   0

static int qemu_key_encodings[] = {ENCODING_QEMU_EXTENDED_KEY, 0};
static bool qemu_keys_registered;

static rfbBool qemu_keys_new_client(rfbClientPtr cl, void **data)
{
	(void)cl;
	*data = NULL;
	return TRUE; /* its messages are handled once it asked for them */
}

/* The viewer asked for them: the answer goes after the update that carries
 * libvncserver's SupportedMessages when the viewer asked for that too (the list does not
 * know message 255, and a viewer that read it after our answer would forget our yes). */
static rfbBool qemu_keys_enable(rfbClientPtr cl, void **data, int encoding)
{
	struct viewer *v = viewer_of(cl);

	(void)data;
	if (encoding != ENCODING_QEMU_EXTENDED_KEY)
		return FALSE;
	if (v)
		v->v_extended_keys_answer = true;
	return TRUE;
}

/* Our yes: a FramebufferUpdate of one rectangle of encoding -258 and no data. Its size
 * means nothing; 1x1 at 0,0, since libvncclient ignores an empty one and counts the
 * size as pixels updated (QEMU's whole-screen answer would look like a full screen). */
static void qemu_keys_answer(rfbClientPtr cl, struct viewer *v)
{
	uint8_t ack[sz_rfbFramebufferUpdateMsg + sz_rfbFramebufferUpdateRectHeader] = {
	    rfbFramebufferUpdate, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1};

	v->v_extended_keys_answer = false;
	be32_put(ack + sizeof(ack) - 4, (uint32_t)ENCODING_QEMU_EXTENDED_KEY);
	if (rfbWriteExact(cl, (const char *)ack, (int)sizeof(ack)) < 0) {
		rfbCloseClient(cl);
		return;
	}
	if (!v->v_extended_keys) {
		v->v_extended_keys = true;
		log_info("vnc: viewer %u sends keys as scan codes (QEMU extended key events)",
			 v->v_id);
	}
}

/* After an update, or when the viewer asks for the next: the answer, once
 * SupportedMessages is out if the viewer asked for it (libvncserver sends it with one
 * update after each SetEncodings). */
static void qemu_keys_maybe_answer(rfbClientPtr cl, struct viewer *v)
{
	if (v && v->v_extended_keys_answer && !cl->enableSupportedMessages)
		qemu_keys_answer(cl, v);
}

static void on_update_request(rfbClientPtr cl, rfbFramebufferUpdateRequestMsg *request)
{
	(void)request;
	qemu_keys_maybe_answer(cl, viewer_of(cl));
}

static rfbBool qemu_keys_message(rfbClientPtr cl, void *data, const rfbClientToServerMsg *msg)
{
	uint8_t m[11]; /* subtype, u16 down, u32 keysym, u32 scan code */
	struct viewer *v = input_viewer_of(cl);
	int n;

	(void)data;
	if (msg->type != MSG_QEMU)
		return FALSE;
	n = rfbReadExact(cl, (char *)m, 1);
	if (n > 0 && m[0] != QEMU_EXTENDED_KEY) {
		log_warnx("vnc: viewer %u: QEMU message subtype %u not supported; closing",
			  v ? v->v_id : 0, m[0]);
		n = 0;
	} else if (n > 0) {
		n = rfbReadExact(cl, (char *)m + 1, (int)sizeof(m) - 1);
	}
	if (n <= 0) {
		rfbCloseClient(cl);
		return TRUE;
	}
	if (v && !cl->viewOnly) {
		vnc_input_scancode(&v->v_display->d_input, &v->v_input, (m[1] | m[2]) != 0,
				   be32_get(m + 3), be32_get(m + 7));
		v->v_display->d_input_seen = true;
	}
	return TRUE;
}

static rfbProtocolExtension qemu_keys = {
    .newClient = qemu_keys_new_client,
    .pseudoEncodings = qemu_key_encodings,
    .enablePseudoEncoding = qemu_keys_enable,
    .handleMessage = qemu_keys_message,
};

static void on_update_sent(rfbClientPtr cl, int result)
{
	struct viewer *v = viewer_of(cl);
	int sent;

	(void)result;
	if (!v)
		return;
	sent = rfbStatGetSentBytes(cl);
	if (sent > v->v_last_sent)
		atomic_fetch_add(&v->v_display->d_bytes_sent, (uint64_t)(sent - v->v_last_sent));
	v->v_last_sent = sent;
	atomic_fetch_add(&v->v_display->d_updates, 1);
	qemu_keys_maybe_answer(cl, v);
}

static void accept_viewer(struct display *d)
{
	int fd = accept4(d->d_listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("vnc: accept");
		return;
	}
	/* libvncserver keeps its sockets in fd_sets. */
	if (fd >= FD_SETSIZE) {
		log_warnx("vnc: refusing a viewer: descriptor %d too high", fd);
		close(fd);
		return;
	}
	rfbNewClient(d->d_screen, fd); /* closes fd itself when it refuses */
}

static void disconnect_all(struct display *d)
{
	for (size_t i = 0; i < DISPLAY_MAX_VIEWERS; i++)
		if (d->d_viewers[i] && d->d_viewers[i]->v_client->sock != RFB_INVALID_SOCKET)
			rfbCloseClient(d->d_viewers[i]->v_client);
	rfbProcessEvents(d->d_screen, 0); /* reaps the closed clients */
	log_info("vnc: every viewer disconnected");
}

/* Drops viewers that did not authenticate in time. */
static void drop_slow_viewers(struct display *d, uint64_t now)
{
	bool dropped = false;

	for (size_t i = 0; i < DISPLAY_MAX_VIEWERS; i++) {
		struct viewer *v = d->d_viewers[i];

		if (v && !v->v_authenticated && v->v_client->sock != RFB_INVALID_SOCKET &&
		    now - v->v_connected_ms > AUTH_TIMEOUT_MS) {
			log_warnx("vnc: viewer %u from %s dropped: not authenticated within %d s",
				  v->v_id, v->v_source, AUTH_TIMEOUT_MS / 1000);
			rfbCloseClient(v->v_client);
			dropped = true;
		}
	}
	if (dropped)
		rfbProcessEvents(d->d_screen, 0); /* reaps them */
}

static void mark_changed(void *arg, unsigned x, unsigned y, unsigned w, unsigned h)
{
	struct display *d = arg;

	rfbMarkRectAsModified(d->d_screen, (int)x, (int)y, (int)(x + w), (int)(y + h));
}

static void refresh(struct display *d, uint64_t now)
{
	int n = d->d_source.src_collect_changes(d->d_source.src_opaque, mark_changed, d);

	if (n > 0) {
		d->d_last_change_ms = now;
		d->d_interval_ms = DISPLAY_REFRESH_FAST_MS;
		rfbProcessEvents(d->d_screen, 0); /* sends to viewers that asked */
	} else if (d->d_interval_ms < DISPLAY_REFRESH_FAST_MS) {
		d->d_interval_ms *= 2; /* right after input: 5, 10, 20 ms */
	} else if (now - d->d_last_change_ms >= DISPLAY_SETTLE_MS) {
		d->d_interval_ms *= 2;
		if (d->d_interval_ms > DISPLAY_REFRESH_IDLE_MS)
			d->d_interval_ms = DISPLAY_REFRESH_IDLE_MS;
	}
	d->d_next_refresh_ms = now + d->d_interval_ms;
	atomic_store(&d->d_refresh_ms, d->d_interval_ms);
}

static void *display_thread(void *arg)
{
	struct display *d = arg;

	/* Named by itself: naming another thread opens a file under /proc. */
	pthread_setname_np(pthread_self(), "vnc");
	while (!atomic_load(&d->d_quit)) {
		struct pollfd pfds[2 + DISPLAY_MAX_VIEWERS];
		nfds_t n = 0;
		int timeout = -1;
		bool readable = false;
		unsigned viewers = 0;
		uint64_t now = monotonic_ms();

		pfds[n++] = (struct pollfd){.fd = d->d_wake_fd, .events = POLLIN};
		pfds[n++] = (struct pollfd){.fd = d->d_listen_fd, .events = POLLIN};
		for (size_t i = 0; i < DISPLAY_MAX_VIEWERS; i++) {
			struct viewer *v = d->d_viewers[i];

			if (!v)
				continue;
			viewers++;
			if (v->v_client->sock != RFB_INVALID_SOCKET)
				pfds[n++] =
				    (struct pollfd){.fd = v->v_client->sock, .events = POLLIN};
		}
		if (viewers)
			timeout =
			    d->d_next_refresh_ms > now ? (int)(d->d_next_refresh_ms - now) : 0;
		if (poll(pfds, n, timeout) < 0) {
			if (errno != EINTR)
				log_warn("vnc: poll");
			continue;
		}
		if (pfds[0].revents) {
			uint64_t count;

			if (read(d->d_wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
				log_warn("vnc: reading the wake-up event");
			if (atomic_load(&d->d_quit))
				break;
			if (atomic_exchange(&d->d_disconnect_all, false))
				disconnect_all(d);
		}
		if (pfds[1].revents & POLLIN)
			accept_viewer(d);
		for (nfds_t i = 2; i < n; i++)
			readable = readable || pfds[i].revents;
		if (readable)
			rfbProcessEvents(d->d_screen, 0);
		now = monotonic_ms();
		if (d->d_input_seen) {
			/* The guest is about to draw: look soon. */
			d->d_input_seen = false;
			d->d_last_change_ms = now;
			d->d_interval_ms = DISPLAY_REFRESH_INPUT_MS;
			if (d->d_next_refresh_ms > now + DISPLAY_REFRESH_INPUT_MS)
				d->d_next_refresh_ms = now + DISPLAY_REFRESH_INPUT_MS;
		}
		if (atomic_load(&d->d_viewer_count) && now >= d->d_next_refresh_ms)
			refresh(d, now);
		drop_slow_viewers(d, now);
	}
	return NULL;
}

static void wake(struct display *d)
{
	uint64_t one = 1;

	if (write(d->d_wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("vnc: waking the display thread");
}

struct display *display_create(const struct display_config *cfg, const struct display_source *src,
			       const struct vnc_input_sink *sink)
{
	struct listen_addr la;
	struct display *d;
	rfbScreenInfoPtr s;

	if (parse_listen(cfg->dc_listen, &la) < 0) {
		log_warnx("vnc: '%s' is not unix:PATH, HOST:PORT or PORT", cfg->dc_listen);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		log_warn("vnc: allocating the server");
		return NULL;
	}
	d->d_source = *src;
	d->d_insecure = cfg->dc_insecure;
	d->d_listen_fd = d->d_wake_fd = -1;
	d->d_interval_ms = DISPLAY_REFRESH_FAST_MS;
	vnc_input_init(&d->d_input, sink, src->src_width, src->src_height);
	d->d_tickets = vnc_tickets_create();
	d->d_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!d->d_tickets || d->d_wake_fd < 0) {
		log_warn("vnc: setting up");
		goto out_free;
	}
	d->d_listen_fd = la.la_unix ? listen_unix(d, &la) : listen_tcp(d, &la);
	if (d->d_listen_fd < 0)
		goto out_free;
	if (d->d_listen_fd >= FD_SETSIZE) {
		log_warnx("vnc: listening descriptor %d too high for libvncserver", d->d_listen_fd);
		goto out_free;
	}

	rfbLog = rfb_log;
	rfbErr = rfb_log;
	if (!qemu_keys_registered) { /* libvncserver's list is global */
		rfbRegisterProtocolExtension(&qemu_keys);
		qemu_keys_registered = true;
	}
	/* No argv: libvncserver's own options stay off. */
	s = rfbGetScreen(NULL, NULL, (int)src->src_width, (int)src->src_height, 8, 3, 4);
	if (!s) {
		log_warnx("vnc: libvncserver cannot set up a screen");
		goto out_free;
	}
	d->d_screen = s;
	s->screenData = d;
	s->desktopName = cfg->dc_name ? cfg->dc_name : "vdi";
	/* The guest's pixels as they are: XRGB8888 little-endian (blue in byte 0). */
	s->frameBuffer = (char *)(uintptr_t)src->src_pixels;
	s->paddedWidthInBytes = (int)src->src_stride;
	s->serverFormat.redShift = 16;
	s->serverFormat.greenShift = 8;
	s->serverFormat.blueShift = 0;
	/* We accept connections ourselves: no libvncserver listeners, no HTTP. */
	s->autoPort = FALSE;
	s->port = 0;
	s->ipv6port = 0;
	s->httpPort = 0;
	s->http6Port = 0;
	s->httpDir = NULL;
	s->listenInterface = htonl(INADDR_LOOPBACK);
	s->permitFileTransfer = FALSE;
	/* Viewers share the desktop; a new one never disconnects the others. */
	s->alwaysShared = TRUE;
	s->neverShared = FALSE;
	/* Updates go out when we mark them; pointer events are not coalesced. */
	s->deferUpdateTime = 0;
	s->deferPtrUpdateTime = 0;
	s->maxClientWait = CLIENT_WAIT_MS;
	/* No server-side cursor: it would be drawn into the guest's memory. */
	s->cursor = NULL;
	s->newClientHook = on_new_client;
	s->kbdAddEvent = on_key;
	s->ptrAddEvent = on_pointer;
	s->setXCutText = on_cut_text;
	s->displayFinishedHook = on_update_sent;
	if (d->d_insecure) {
		s->authPasswdData = NULL; /* security type None */
		log_warnx("vnc: --vnc-insecure: viewers get in WITHOUT AUTHENTICATION; for "
			  "local debugging only");
	} else {
		s->authPasswdData = d; /* anything non-NULL: VNC authentication */
		s->passwordCheck = check_password;
	}
	rfbInitServer(s);
	return d;

out_free:
	display_free(d);
	return NULL;
}

int display_start(struct display *d)
{
	int r = pthread_create(&d->d_thread, NULL, display_thread, d);

	if (r) {
		log_warnx("vnc: cannot start the display thread: %s", strerror(r));
		return -r;
	}
	d->d_thread_started = true;
	return 0;
}

void display_free(struct display *d)
{
	if (!d)
		return;
	if (d->d_thread_started) {
		atomic_store(&d->d_quit, true);
		wake(d);
		pthread_join(d->d_thread, NULL);
	}
	if (d->d_screen) {
		rfbShutdownServer(d->d_screen, TRUE);
		rfbScreenCleanup(d->d_screen);
	}
	if (d->d_listen_fd >= 0)
		close(d->d_listen_fd);
	if (d->d_unix_path) {
		unlink(d->d_unix_path);
		free(d->d_unix_path);
	}
	if (d->d_wake_fd >= 0)
		close(d->d_wake_fd);
	vnc_tickets_free(d->d_tickets);
	free(d);
}

int display_set_ticket(struct display *d, const char *password, int64_t expires, bool view_only)
{
	return vnc_tickets_set(d->d_tickets, password, expires, view_only, (int64_t)time(NULL));
}

void display_clear_tickets(struct display *d, bool disconnect)
{
	vnc_tickets_clear(d->d_tickets);
	if (disconnect) {
		atomic_store(&d->d_disconnect_all, true);
		wake(d);
	}
}

void display_get_stats(struct display *d, struct display_stats *st)
{
	st->ds_viewers = atomic_load(&d->d_viewer_count);
	st->ds_bytes_sent = atomic_load(&d->d_bytes_sent);
	st->ds_updates = atomic_load(&d->d_updates);
	st->ds_auth_failures = atomic_load(&d->d_auth_failures);
	st->ds_refresh_ms = atomic_load(&d->d_refresh_ms);
	st->ds_port = d->d_port;
}
