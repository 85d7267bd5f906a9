/* The API server: MHD in its own threads, a per-request context that collects
 * the body up to the limit, a router over the path's segments, and
 * errno-to-status mapping.
 *
 *   GET    /api/v1/capacity
 *   GET    /api/v1/desktops                   POST /api/v1/desktops
 *   GET    /api/v1/desktops/{id}              DELETE /api/v1/desktops/{id}
 *   POST   /api/v1/desktops/{id}/start        POST /api/v1/desktops/{id}/stop
 *   POST   /api/v1/desktops/{id}/ticket */
#include "hostd/api.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/log.h"
#include "lib/pem.h"

#define PREFIX "/api/v1/"

struct host_api {
	const struct conf *a_conf;
	struct host *a_host;
	struct MHD_Daemon *a_daemon;
	char *a_cert, *a_key, *a_ca;
};

struct request {
	char *rq_body;
	size_t rq_len;
	bool rq_too_large;
};

static char *read_pem(const char *path)
{
	char err[512];
	char *pem = pem_read(path, err, sizeof(err));

	if (!pem)
		log_warnx("api: %s", err);
	return pem;
}
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
	char *text = body ? json_dump_line(body) : NULL;
	struct MHD_Response *resp;
	enum MHD_Result r;

	json_decref(body);
	if (!text) {
		static const char oom[] = "{\"error\":\"out of memory\",\"code\":\"internal\"}\n";

		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
						       MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	} else {
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
				  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
				  const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return send_json(conn, status, json_pack("{s:s, s:s}", "error", msg, "code", code));
}

/* Maps a host.h error to a status and code. */
static enum MHD_Result send_failure(struct MHD_Connection *conn, int r, const char *msg)
{
	switch (r) {
	case -EINVAL: return send_error(conn, 400, "bad_request", "%s", msg);
	case -ENOENT: return send_error(conn, 404, "not_found", "%s", msg);
	case -EEXIST: return send_error(conn, 409, "exists", "%s", msg);
	case -EBUSY: return send_error(conn, 409, "wrong_state", "%s", msg);
	case -ENOSPC: return send_error(conn, 409, "limit_reached", "%s", msg);
	case -ENOMEM: return send_error(conn, 503, "insufficient_memory", "%s", msg);
	case -ENOTSUP: return send_error(conn, 501, "not_supported", "%s", msg);
	default: return send_error(conn, 500, "engine_error", "%s", msg);
	}
}

/* The TLS layer already refused clients without a good certificate (see
 * on_connection); this checks again, so a change in MHD's handshake cannot open
 * the API. */
static bool client_verified(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	unsigned status = 1, n = 0;

	if (!ci || !ci->tls_session)
		return false;
	if (gnutls_certificate_type_get(ci->tls_session) != GNUTLS_CRT_X509 ||
	    !gnutls_certificate_get_peers(ci->tls_session, &n) || n == 0)
		return false;
	return gnutls_certificate_verify_peers2(ci->tls_session, &status) == 0 && status == 0;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci;

	(void)cls, (void)socket_context;
	if (code != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci && ci->tls_session) {
		/* Require a certificate and verify it against the trust list during the
		 * handshake: a client without one never gets to send a request. */
		gnutls_certificate_server_set_request(ci->tls_session, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(ci->tls_session, NULL, 0);
	}
}

/* Parses an optional body: NULL when empty, else an object or an error reply.
 */
static int parse_body(struct host_api *a, const struct request *rq, bool required, json_t **out,
		      char *err, size_t errlen)
{
	*out = NULL;
	if (rq->rq_len == 0) {
		if (required) {
			snprintf(err, errlen, "a JSON object body is required");
			return -EINVAL;
		}
		return 0;
	}
	*out = json_parse_object(rq->rq_body, rq->rq_len, (size_t)a->a_conf->api_max_body, err,
				 errlen);
	return *out ? 0 : -EINVAL;
}

static enum MHD_Result method_not_allowed(struct MHD_Connection *conn, const char *allow)
{
	struct MHD_Response *resp;
	json_t *body =
	    json_pack("{s:s, s:s}", "error", "method not allowed", "code", "method_not_allowed");
	char *text = body ? json_dump_line(body) : NULL;
	enum MHD_Result r;

	json_decref(body);
	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Allow", allow);
	r = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result route_desktop(struct host_api *a, struct MHD_Connection *conn,
				     const char *method, const char *rest, struct request *rq)
{
	const char *slash = strchr(rest, '/');
	char id[DESKTOP_ID_MAX + 1], err[512] = "";
	const char *action = slash ? slash + 1 : "";
	size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	json_t *body = NULL, *out = NULL;
	int r;

	if (idlen == 0 || idlen > DESKTOP_ID_MAX || strchr(action, '/'))
		return send_error(conn, idlen ? 400 : 404, idlen ? "bad_request" : "not_found",
				  "%s", idlen ? "malformed desktop id" : "no such resource");
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	if (!desktop_id_valid(id))
		return send_error(conn, 400, "bad_request", "malformed desktop id");
	if (!*action) {
		if (get)
			r = host_get(a->a_host, id, &out, err, sizeof(err));
		else if (!strcmp(method, "DELETE"))
			r = host_destroy(a->a_host, id, err, sizeof(err));
		else
			return method_not_allowed(conn, "GET, DELETE");
		if (r < 0)
			return send_failure(conn, r, err);
		return out ? send_json(conn, 200, out)
			   : send_json(conn, 200, json_pack("{s:s}", "deleted", id));
	}
	if (strcmp(action, "start") && strcmp(action, "stop") && strcmp(action, "ticket"))
		return send_error(conn, 404, "not_found", "no such resource");
	if (!post)
		return method_not_allowed(conn, "POST");
	r = parse_body(a, rq, !strcmp(action, "ticket"), &body, err, sizeof(err));
	if (r == 0 && !strcmp(action, "start")) {
		if (body && json_object_size(body)) {
			snprintf(err, sizeof(err), "start takes no fields");
			r = -EINVAL;
		} else {
			r = host_start(a->a_host, id, &out, err, sizeof(err));
		}
	} else if (r == 0 && !strcmp(action, "stop")) {
		r = host_stop(a->a_host, id, body, &out, err, sizeof(err));
	} else if (r == 0) {
		r = host_set_ticket(a->a_host, id, body, &out, err, sizeof(err));
	}
	json_decref(body);
	if (r < 0)
		return send_failure(conn, r, err);
	return send_json(conn, !strcmp(action, "ticket") ? 200 : 202, out);
}

static enum MHD_Result route(struct host_api *a, struct MHD_Connection *conn, const char *method,
			     const char *url, struct request *rq)
{
	const char *path;
	char err[512] = "";
	json_t *body = NULL, *out = NULL;
	int r;

	if (strncmp(url, PREFIX, strlen(PREFIX)))
		return send_error(conn, 404, "not_found", "no such resource");
	path = url + strlen(PREFIX);
	if (!strcmp(path, "capacity")) {
		if (strcmp(method, "GET"))
			return method_not_allowed(conn, "GET");
		return send_json(conn, 200, host_capacity(a->a_host));
	}
	if (!strcmp(path, "desktops")) {
		if (!strcmp(method, "GET"))
			return send_json(conn, 200, host_list(a->a_host));
		if (strcmp(method, "POST"))
			return method_not_allowed(conn, "GET, POST");
		r = parse_body(a, rq, true, &body, err, sizeof(err));
		if (r == 0)
			r = host_create(a->a_host, body, &out, err, sizeof(err));
		json_decref(body);
		return r < 0 ? send_failure(conn, r, err) : send_json(conn, 201, out);
	}
	if (!strncmp(path, "desktops/", 9))
		return route_desktop(a, conn, method, path + 9, rq);
	return send_error(conn, 404, "not_found", "no such resource");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct host_api *a = cls;
	struct request *rq = *con_cls;
	size_t max = (size_t)a->a_conf->api_max_body;

	(void)version;
	if (!rq) {
		const char *cl;

		if (!client_verified(conn)) {
			log_warnx("api: request without a valid client certificate refused");
			return MHD_NO; /* closes the connection */
		}
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > max) {
			log_info("api: %s %s: body of %s bytes refused (limit %zu)", method, url,
				 cl, max);
			return send_error(conn, 413, "too_large",
					  "request body larger than %zu bytes", max);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rq->rq_too_large && rq->rq_len + *upload_data_size <= max) {
			char *grown = realloc(rq->rq_body, rq->rq_len + *upload_data_size);

			if (!grown)
				return MHD_NO;
			memcpy(grown + rq->rq_len, upload_data, *upload_data_size);
			rq->rq_body = grown;
			rq->rq_len += *upload_data_size;
		} else if (!rq->rq_too_large) {
			rq->rq_too_large = true;
			free(rq->rq_body);
			rq->rq_body = NULL;
			rq->rq_len = 0;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->rq_too_large)
		return send_error(conn, 413, "too_large", "request body larger than %zu bytes",
				  max);
	log_debug("api: %s %s", method, url);
	return route(a, conn, method, url, rq);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (!rq)
		return;
	free(rq->rq_body);
	free(rq);
	*con_cls = NULL;
}

/* Paths are not percent-decoded: no valid path needs an escape, and decoding would let
 * "%00" cut an id short or "%2F" smuggle a '/' into one. */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *uri)
{
	(void)cls, (void)conn;
	return strlen(uri);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	/* Mostly refused TLS handshakes (no or bad client certificate). */
	log_info("api: %s", msg);
}

struct host_api *host_api_start(const struct conf *c, struct host *h)
{
	struct host_api *a = calloc(1, sizeof(*a));
	unsigned flags =
	    MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;

	if (!a)
		return NULL;
	a->a_conf = c;
	a->a_host = h;
	a->a_cert = read_pem(c->tls_cert);
	a->a_key = read_pem(c->tls_key);
	a->a_ca = read_pem(c->tls_ca);
	if (!a->a_cert || !a->a_key || !a->a_ca)
		goto out_free;
	if (c->api_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	a->a_daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, handle, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
	    MHD_OPTION_SOCK_ADDR, &c->api_addr, MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, a,
	    MHD_OPTION_HTTPS_MEM_CERT, a->a_cert, MHD_OPTION_HTTPS_MEM_KEY, a->a_key,
	    MHD_OPTION_HTTPS_MEM_TRUST, a->a_ca, MHD_OPTION_HTTPS_PRIORITIES,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, a, MHD_OPTION_NOTIFY_COMPLETED, request_done, a,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->api_max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_END);
	if (!a->a_daemon) {
		log_warnx("api: cannot serve HTTPS on %s (address in use, or bad certificate "
			  "or key?)",
			  c->api_listen);
		goto out_free;
	}
	log_info("api: listening on https://%s (client certificate required)", c->api_listen);
	return a;

out_free:
	host_api_stop(a);
	return NULL;
}

void host_api_stop(struct host_api *a)
{
	if (!a)
		return;
	if (a->a_daemon)
		MHD_stop_daemon(a->a_daemon);
	free(a->a_cert);
	if (a->a_key)
		explicit_bzero(a->a_key, strlen(a->a_key));
	free(a->a_key);
	free(a->a_ca);
	free(a);
}
