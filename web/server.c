/* libmicrohttpd glue: TLS is done in front of it (web/tls_front.c), which hands each
 * connection over as a plain socket; a thread per connection (so a handler may block,
 * e.g. on an LDAP login, without stalling other clients), a per-request context created from the
 * raw URI (paths are routed undecoded and parameters decoded one segment at a time, so
 * "%2F" cannot smuggle a '/' and "%00" cannot cut a name short), bodies collected up to
 * the cap, and one place that adds the security headers to every answer. */
#include "web/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/hostport.h"
#include "lib/log.h"
#include "net/tlsname.h"
#include "web/route.h"
#include "web/static.h"
#include "web/tls_front.h"

#define MAX_HEADERS	    8
#define URI_MAX		    8192
#define HANDSHAKE_TIMEOUT_S 10

struct web_server {
	struct MHD_Daemon *ws_daemon;
	struct tls_front *ws_front;
	const struct web_route *ws_routes;
	void *ws_ctx;
	char *ws_static, *ws_name;
	bool ws_verify_clients;
	size_t ws_max_body;
};

struct web_request {
	struct web_server *rq_srv;
	struct MHD_Connection *rq_conn;
	char *rq_uri;	      /* as received */
	char *rq_path;	      /* rq_uri up to '?' */
	const char *rq_query; /* after '?', or "" */
	const char *rq_method;
	char *rq_params[WEB_MAX_PARAMS];
	size_t rq_nparams;
	char *rq_body;
	size_t rq_len;
	bool rq_started, rq_too_large, rq_replied;
	enum MHD_Result rq_result;
	char rq_addr[INET6_ADDRSTRLEN];
	char rq_client_name[TLSNAME_MAX + 1]; /* "": no verified certificate with a name */
	char *rq_hname[MAX_HEADERS], *rq_hvalue[MAX_HEADERS];
	size_t rq_nheaders;
};

/* ---- answers ---- */

static void add_security_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(
	    resp, "Content-Security-Policy",
	    "default-src 'self'; connect-src 'self' wss:; img-src 'self' data:; "
	    "object-src 'none'; base-uri 'none'; form-action 'self'; "
	    "frame-ancestors 'none'");
	MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

static void queue(struct web_request *req, unsigned status, struct MHD_Response *resp)
{
	if (req->rq_replied) {
		log_warnx("%s: %s %s answered twice", req->rq_srv->ws_name, req->rq_method,
			  req->rq_path);
		if (resp)
			MHD_destroy_response(resp);
		return;
	}
	req->rq_replied = true;
	if (!resp) {
		req->rq_result = MHD_NO;
		return;
	}
	add_security_headers(resp);
	for (size_t i = 0; i < req->rq_nheaders; i++)
		MHD_add_response_header(resp, req->rq_hname[i], req->rq_hvalue[i]);
	req->rq_result = MHD_queue_response(req->rq_conn, status, resp);
	MHD_destroy_response(resp);
}

void web_reply_json(struct web_request *req, unsigned status, json_t *body)
{
	char *text = body ? json_dump_line(body) : NULL;
	struct MHD_Response *resp;

	json_decref(body);
	if (!text) {
		static const char oom[] = "{\"error\":\"internal error\",\"code\":\"internal\"}\n";

		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
						       MHD_RESPMEM_PERSISTENT);
		status = 500;
	} else {
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(text);
	}
	if (resp) {
		MHD_add_response_header(resp, "Content-Type", "application/json");
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	}
	queue(req, status, resp);
}

void web_reply_error(struct web_request *req, unsigned status, const char *code, const char *fmt,
		     ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	web_reply_json(req, status, json_pack("{s:s, s:s}", "error", msg, "code", code));
}

void web_reply_text(struct web_request *req, unsigned status, const char *content_type, char *text)
{
	struct MHD_Response *resp = NULL;

	if (text) {
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(text);
	}
	if (!resp) {
		web_reply_error(req, 500, "internal", "internal error");
		return;
	}
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	queue(req, status, resp);
}

void web_reply_empty(struct web_request *req, unsigned status)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

	if (resp)
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	queue(req, status, resp);
}

struct web_stream {
	struct stream *st_tls;
	struct MHD_UpgradeResponseHandle *st_urh;
};

struct upgrade_call {
	void (*uc_fn)(void *arg, struct web_stream *st, const uint8_t *early, size_t n);
	void *uc_arg;
	struct web_server *uc_srv;
};

/* libmicrohttpd sent the 101 on sock, its end of the socketpair: the TLS front hands the
 * client's TLS session and socket over, and the upgraded protocol runs on them. */
static void upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
		     size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct upgrade_call *uc = cls;
	struct web_stream *st = calloc(1, sizeof(*st));
	uint8_t *late = NULL, *early = NULL;
	size_t nlate = 0, n = 0;

	(void)conn, (void)con_cls;
	if (st)
		st->st_tls = tls_front_take(uc->uc_srv->ws_front, sock, &late, &nlate);
	if (st && st->st_tls) {
		n = extra_in_size + nlate;
		early = malloc(n ? n : 1);
	}
	if (!early) {
		if (st)
			stream_close(st->st_tls);
		free(st);
		st = NULL;
		n = 0;
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	} else {
		memcpy(early, extra_in, extra_in_size);
		memcpy(early + extra_in_size, late, nlate);
		st->st_urh = urh;
	}
	uc->uc_fn(uc->uc_arg, st, early, n);
	free(early);
	free(late);
	free(uc);
}

int web_reply_upgrade(struct web_request *req,
		      void (*on_upgrade)(void *arg, struct web_stream *st, const uint8_t *early,
					 size_t n),
		      void *arg)
{
	struct upgrade_call *uc = malloc(sizeof(*uc));
	struct MHD_Response *resp;

	if (!uc)
		return -ENOMEM;
	uc->uc_fn = on_upgrade;
	uc->uc_arg = arg;
	uc->uc_srv = req->rq_srv;
	resp = MHD_create_response_for_upgrade(upgraded, uc);
	if (!resp) {
		free(uc);
		return -ENOMEM;
	}
	queue(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	if (req->rq_result != MHD_YES) {
		/* Not queued: upgraded() will never run. */
		free(uc);
		return -ENOMEM;
	}
	return 0;
}

struct stream *web_stream_get(struct web_stream *st)
{
	return st->st_tls;
}

void web_stream_close(struct web_stream *st)
{
	if (!st)
		return;
	stream_close(st->st_tls);
	MHD_upgrade_action(st->st_urh, MHD_UPGRADE_ACTION_CLOSE);
	free(st);
}

void web_reply_not_allowed(struct web_request *req, const char *allow)
{
	web_add_header(req, "Allow", allow);
	web_reply_error(req, 405, "method_not_allowed", "method not allowed");
}

int web_add_header(struct web_request *req, const char *name, const char *value)
{
	if (req->rq_nheaders == MAX_HEADERS)
		return -ENOMEM;
	req->rq_hname[req->rq_nheaders] = strdup(name);
	req->rq_hvalue[req->rq_nheaders] = strdup(value);
	if (!req->rq_hname[req->rq_nheaders] || !req->rq_hvalue[req->rq_nheaders]) {
		free(req->rq_hname[req->rq_nheaders]);
		free(req->rq_hvalue[req->rq_nheaders]);
		return -ENOMEM;
	}
	req->rq_nheaders++;
	return 0;
}

static bool cookie_safe(const char *s)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
	       strlen(s);
}

int web_set_cookie(struct web_request *req, const char *name, const char *value, int max_age)
{
	char line[512];

	if (!cookie_safe(name) || !cookie_safe(value) || max_age < 0)
		return -EINVAL;
	if ((size_t)snprintf(line, sizeof(line),
			     "%s=%s; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d", name,
			     value, max_age) >= sizeof(line))
		return -EINVAL;
	return web_add_header(req, "Set-Cookie", line);
}

/* ---- the request ---- */

const char *web_method(const struct web_request *req)
{
	return req->rq_method;
}

const char *web_path(const struct web_request *req)
{
	return req->rq_path;
}

const char *web_param(const struct web_request *req, size_t i)
{
	return i < req->rq_nparams ? req->rq_params[i] : "";
}

const char *web_header(const struct web_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->rq_conn, MHD_HEADER_KIND, name);
}

const char *web_query(const struct web_request *req, const char *name, char *buf, size_t len)
{
	size_t nlen = strlen(name);

	for (const char *p = req->rq_query; *p;) {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);

		if (plen > nlen && !strncmp(p, name, nlen) && p[nlen] == '=')
			return route_decode(p + nlen + 1, plen - nlen - 1, buf, len) < 0 ? NULL
											 : buf;
		if (plen == nlen && !strncmp(p, name, nlen) && len) {
			buf[0] = '\0';
			return buf;
		}
		p += plen + (end ? 1 : 0);
	}
	return NULL;
}

const char *web_cookie(const struct web_request *req, const char *name, char *buf, size_t len)
{
	const char *h = web_header(req, "Cookie");
	size_t nlen = strlen(name);

	while (h && *h) {
		const char *end = strchr(h, ';');
		size_t plen;

		while (*h == ' ')
			h++;
		plen = end ? (size_t)(end - h) : strlen(h);
		if (plen > nlen && !strncmp(h, name, nlen) && h[nlen] == '=') {
			size_t vlen = plen - nlen - 1;

			while (vlen && h[nlen + vlen] == ' ')
				vlen--;
			if (vlen >= len)
				return NULL;
			memcpy(buf, h + nlen + 1, vlen);
			buf[vlen] = '\0';
			return buf;
		}
		h = end ? end + 1 : NULL;
	}
	return NULL;
}

const char *web_client_addr(const struct web_request *req)
{
	return req->rq_addr;
}

/* The front hands over only connections whose handshake verified a client certificate
 * when the server has a trust list. */
bool web_client_verified(const struct web_request *req)
{
	return req->rq_srv->ws_verify_clients;
}

const char *web_client_name(const struct web_request *req)
{
	return req->rq_client_name[0] ? req->rq_client_name : NULL;
}

bool web_origin_ok(const struct web_request *req, const char *origin)
{
	const char *sent = web_header(req, "Origin"), *host;
	char expected[600];

	if (!sent)
		return true;
	if (origin)
		return !strcmp(sent, origin);
	host = web_header(req, "Host");
	if (!host ||
	    (size_t)snprintf(expected, sizeof(expected), "https://%s", host) >= sizeof(expected))
		return false;
	return !strcmp(sent, expected);
}

bool web_csrf_ok(const struct web_request *req, const char *expected, const char *origin)
{
	const char *sent = web_header(req, "X-CSRF-Token");

	return sent && expected && expected[0] && strlen(sent) == strlen(expected) &&
	       CRYPTO_memcmp(sent, expected, strlen(expected)) == 0 && web_origin_ok(req, origin);
}

static bool is_json_type(const char *ct)
{
	size_t n;

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; ");
	return n == strlen("application/json") && !strncasecmp(ct, "application/json", n);
}

json_t *web_json_body(struct web_request *req, const struct json_field *fields, bool allow_empty)
{
	char err[256];
	json_t *obj;

	if (req->rq_len == 0 && allow_empty)
		return json_object();
	if (!is_json_type(web_header(req, "Content-Type"))) {
		web_reply_error(req, 415, "unsupported_media_type",
				"the body must be Content-Type: application/json");
		return NULL;
	}
	obj = json_parse_object(req->rq_body ? req->rq_body : "", req->rq_len,
				req->rq_srv->ws_max_body, err, sizeof(err));
	if (!obj) {
		web_reply_error(req, 400, "bad_request", "%s", err);
		return NULL;
	}
	if (fields && json_check_fields(obj, fields, err, sizeof(err)) < 0) {
		json_decref(obj);
		web_reply_error(req, 400, "bad_request", "%s", err);
		return NULL;
	}
	return obj;
}

/* ---- dispatch ---- */

static void serve_static(struct web_request *req)
{
	char path[4096];
	struct MHD_Response *resp;
	struct stat st;
	int fd;

	if (static_resolve(req->rq_srv->ws_static, req->rq_path, path, sizeof(path)) < 0) {
		web_reply_error(req, 404, "not_found", "no such resource");
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		web_reply_error(req, 404, "not_found", "no such resource");
		return;
	}
	resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd); /* takes fd */
	if (!resp) {
		close(fd);
		web_reply_error(req, 500, "internal", "internal error");
		return;
	}
	MHD_add_response_header(resp, "Content-Type", static_content_type(path));
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	queue(req, 200, resp);
}

static void dispatch(struct web_request *req)
{
	struct web_server *srv = req->rq_srv;
	char allow[128] = "";
	bool bad = false;

	for (const struct web_route *r = srv->ws_routes; r->wr_pattern; r++) {
		char *params[WEB_MAX_PARAMS] = {NULL};
		int n = route_match(r->wr_pattern, req->rq_path, params, WEB_MAX_PARAMS);

		if (n == -ENOENT)
			continue;
		if (n < 0) {
			bad = true;
			continue;
		}
		if (strcmp(r->wr_method, req->rq_method)) {
			if (!strstr(allow, r->wr_method) && strlen(allow) + 10 < sizeof(allow))
				snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
					 "%s%s", allow[0] ? ", " : "", r->wr_method);
			route_free_params(params, (size_t)n);
			continue;
		}
		memcpy(req->rq_params, params, sizeof(params));
		req->rq_nparams = (size_t)n;
		r->wr_handler(srv->ws_ctx, req);
		if (!req->rq_replied) {
			log_warnx("%s: %s %s: no answer from its handler", srv->ws_name,
				  req->rq_method, req->rq_path);
			web_reply_error(req, 500, "internal", "internal error");
		}
		return;
	}
	if (bad)
		web_reply_error(req, 400, "bad_request", "malformed escape in the path");
	else if (allow[0])
		web_reply_not_allowed(req, allow);
	else if (srv->ws_static && strncmp(req->rq_path, "/api/", 5) &&
		 (!strcmp(req->rq_method, "GET") || !strcmp(req->rq_method, "HEAD")))
		serve_static(req);
	else
		web_reply_error(req, 404, "not_found", "no such resource");
}

static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct web_request *req = calloc(1, sizeof(*req));
	const union MHD_ConnectionInfo *ci;
	char *q;

	if (!req)
		return NULL;
	req->rq_srv = cls;
	req->rq_conn = conn;
	req->rq_uri = strndup(uri, URI_MAX);
	if (!req->rq_uri) {
		free(req);
		return NULL;
	}
	q = strchr(req->rq_uri, '?');
	req->rq_path = q ? strndup(req->rq_uri, (size_t)(q - req->rq_uri)) : strdup(req->rq_uri);
	req->rq_query = q ? q + 1 : "";
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
				  req->rq_addr, sizeof(req->rq_addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
				  req->rq_addr, sizeof(req->rq_addr));
	}
	/* The TLS front knows the connection by the end of the socketpair it handed over. */
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci && req->rq_srv->ws_verify_clients)
		tls_front_client_name(req->rq_srv->ws_front, ci->connect_fd, req->rq_client_name,
				      sizeof(req->rq_client_name));
	return req;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct web_server *srv = cls;
	struct web_request *req = *con_cls;

	(void)url, (void)version;
	if (!req || !req->rq_path)
		return MHD_NO;
	if (!req->rq_started) {
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

		req->rq_started = true;
		req->rq_method = method;
		if (cl && strtoull(cl, NULL, 10) > srv->ws_max_body) {
			web_reply_error(req, 413, "too_large", "request body larger than %zu bytes",
					srv->ws_max_body);
			return req->rq_result;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!req->rq_too_large && req->rq_len + *upload_data_size <= srv->ws_max_body) {
			char *grown = realloc(req->rq_body, req->rq_len + *upload_data_size + 1);

			if (!grown)
				return MHD_NO;
			memcpy(grown + req->rq_len, upload_data, *upload_data_size);
			req->rq_body = grown;
			req->rq_len += *upload_data_size;
			req->rq_body[req->rq_len] = '\0';
		} else if (!req->rq_too_large) {
			req->rq_too_large = true;
			free(req->rq_body);
			req->rq_body = NULL;
			req->rq_len = 0;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->rq_replied)
		return req->rq_result;
	if (req->rq_too_large)
		web_reply_error(req, 413, "too_large", "request body larger than %zu bytes",
				srv->ws_max_body);
	else
		dispatch(req);
	return req->rq_result;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct web_request *req = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (!req)
		return;
	route_free_params(req->rq_params, req->rq_nparams);
	for (size_t i = 0; i < req->rq_nheaders; i++) {
		free(req->rq_hname[i]);
		free(req->rq_hvalue[i]);
	}
	free(req->rq_body);
	free(req->rq_path);
	free(req->rq_uri);
	free(req);
	*con_cls = NULL;
}

/* Paths are routed undecoded (see the top of the file); query values are decoded by
 * web_query(). */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *uri)
{
	(void)cls, (void)conn;
	return strlen(uri);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct web_server *srv = cls;
	char msg[512];
	size_t n;

	/* libmicrohttpd takes the socketpair it is given for TCP (it learns no better from
	 * EOPNOTSUPP) and says so on every answer; TCP is the front's business. */
	static const char *const not_for_a_socketpair[] = {
	    "Setting TCP_", "Failed to push the data from buffers to the network"};

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (size_t i = 0; i < sizeof(not_for_a_socketpair) / sizeof(*not_for_a_socketpair); i++)
		if (!strncmp(msg, not_for_a_socketpair[i], strlen(not_for_a_socketpair[i])))
			return;
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	log_info("%s: %s", srv->ws_name, msg);
}

/* "host:port" or "[v6]:port" with a numeric host. */
static int parse_listen(const char *text, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	memset(ss, 0, sizeof(*ss));
	if (hostport_split(text, host, sizeof(host), &port) < 0 || port == 0)
		return -EINVAL;
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -EINVAL;
	}
}

static int hand_over(void *arg, int fd, const struct sockaddr *peer, socklen_t len)
{
	struct web_server *srv = arg;

	/* libmicrohttpd owns fd from here, and closes it on failure too. */
	return MHD_add_connection(srv->ws_daemon, fd, peer, len) == MHD_YES ? 0 : -EIO;
}

static int listen_on(const struct sockaddr_storage *addr, char *err, size_t errlen,
		     const char *text)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	socklen_t len =
	    addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (addr->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, 128) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct web_server *web_start(const struct web_config *cfg, const struct web_route *routes,
			     void *ctx, char *err, size_t errlen)
{
	struct web_server *srv = calloc(1, sizeof(*srv));
	struct tls_front_config front = {
	    .tf_cert_pem = cfg->wc_cert_pem,
	    .tf_key_pem = cfg->wc_key_pem,
	    .tf_trust_pem = cfg->wc_trust_pem,
	    .tf_client_name = cfg->wc_client_name,
	    .tf_max_connections = cfg->wc_max_connections,
	    .tf_max_per_address = cfg->wc_max_per_address,
	    .tf_request_timeout = cfg->wc_request_timeout,
	    .tf_handshake_timeout = cfg->wc_timeout && cfg->wc_timeout < HANDSHAKE_TIMEOUT_S
					? cfg->wc_timeout
					: HANDSHAKE_TIMEOUT_S,
	    .tf_name = cfg->wc_name ? cfg->wc_name : "http",
	    .tf_hand_over = hand_over,
	    .tf_arg = srv,
	};
	struct sockaddr_storage addr;
	char why[256];

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_listen(cfg->wc_listen, &addr) < 0) {
		snprintf(err, errlen, "bad listen address '%s' (want ADDRESS:PORT, numeric)",
			 cfg->wc_listen);
		goto out_free;
	}
	srv->ws_routes = routes;
	srv->ws_ctx = ctx;
	srv->ws_max_body = cfg->wc_max_body;
	srv->ws_verify_clients = cfg->wc_trust_pem != NULL;
	srv->ws_static = cfg->wc_static_dir ? strdup(cfg->wc_static_dir) : NULL;
	srv->ws_name = strdup(front.tf_name);
	if (!srv->ws_name || (cfg->wc_static_dir && !srv->ws_static)) {
		snprintf(err, errlen, "out of memory");
		goto out_free;
	}
	/* No listener of its own: connections come from the TLS front. poll(), not
	 * select(): each connection holds two descriptors here (TLS socket, socketpair), so
	 * a few hundred pass FD_SETSIZE, and with select() libmicrohttpd drops those. */
	srv->ws_daemon = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
		MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE,
	    0, NULL, NULL, handle, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_logged, srv, MHD_OPTION_UNESCAPE_CALLBACK,
	    keep_escapes, srv, MHD_OPTION_NOTIFY_COMPLETED, request_done, srv,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->wc_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
	    cfg->wc_timeout ? cfg->wc_timeout : 60u, MHD_OPTION_END);
	if (!srv->ws_daemon) {
		snprintf(err, errlen, "cannot start the HTTP server for %s", cfg->wc_listen);
		goto out_free;
	}
	front.tf_listen_fd = listen_on(&addr, err, errlen, cfg->wc_listen);
	if (front.tf_listen_fd < 0)
		goto out_free;
	srv->ws_front = tls_front_start(&front, why, sizeof(why));
	if (!srv->ws_front) {
		snprintf(err, errlen, "cannot serve HTTPS on %s: %s", cfg->wc_listen, why);
		goto out_free;
	}
	return srv;

out_free:
	web_stop(srv);
	return NULL;
}

void web_stop(struct web_server *srv)
{
	if (!srv)
		return;
	tls_front_stop(srv->ws_front); /* first: no connection reaches the daemon after */
	if (srv->ws_daemon)
		MHD_stop_daemon(srv->ws_daemon);
	free(srv->ws_static);
	free(srv->ws_name);
	free(srv);
}
