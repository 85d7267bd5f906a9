/* The HTTP(S) layer on libmicrohttpd: one listener with a thread per connection, a route
 * table with path parameters, request bodies collected up to a cap, JSON bodies checked
 * for content type and fields, cookies, the security headers every answer carries, and
 * static files from a directory. Knows nothing of users, desktops or the store. */
#ifndef VDI_WEB_SERVER_H
#define VDI_WEB_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/json.h"
#include "net/stream.h"

#define WEB_MAX_PARAMS 4

struct web_request;

/* One entry of a route table, which ends with a NULL pattern. A pattern is an absolute
 * path whose segments are literal or "{}" (any one non-empty segment, percent-decoded
 * into the request's params, in order). The handler answers with exactly one of the
 * web_reply_* functions; one that does not gets a 500. */
struct web_route {
	const char *wr_method;
	const char *wr_pattern;
	void (*wr_handler)(void *ctx, struct web_request *req);
};

struct web_config {
	const char *wc_listen;	 /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:443" */
	const char *wc_cert_pem; /* server certificate and key, PEM text */
	const char *wc_key_pem;
	const char *wc_trust_pem;    /* non-NULL: clients must present a certificate it signed */
	const char *wc_client_name;  /* with a trust list, non-NULL: and it must name this
					one (its subject CN; tls_front_config) */
	size_t wc_max_body;	     /* bytes; larger bodies get 413 */
	unsigned wc_max_connections; /* in their TLS handshake, and past it, each */
	unsigned wc_max_per_address; /* from one client address; 0: 64 */
	unsigned wc_request_timeout; /* seconds to send a request; 0: 30 */
	unsigned wc_timeout;	     /* seconds of idle before a connection is closed; TLS
					handshakes get at most 10 s of it */
	const char *wc_static_dir;   /* GET/HEAD outside /api/ served from here; NULL: none */
	const char *wc_name;	     /* for log lines: "http", "heartbeat" */
};

/* Starts serving routes (handlers get ctx) on a listener of its own. Returns the server
 * (stop with web_stop()) or NULL with the reason in err. The strings of cfg are copied. */
struct web_server *web_start(const struct web_config *cfg, const struct web_route *routes,
			     void *ctx, char *err, size_t errlen);
void web_stop(struct web_server *srv);

/* ---- the request (valid until the handler returns) ---- */
const char *web_method(const struct web_request *req);
/* The path as received (not percent-decoded), without the query. */
const char *web_path(const struct web_request *req);
/* The i-th path parameter, percent-decoded (never NULL for i below the pattern's count). */
const char *web_param(const struct web_request *req, size_t i);
/* A header's value, or NULL. */
const char *web_header(const struct web_request *req, const char *name);
/* A query parameter, percent-decoded into buf; NULL when absent or malformed. */
const char *web_query(const struct web_request *req, const char *name, char *buf, size_t len);
/* A cookie's value, copied into buf; NULL when absent or longer than len - 1. */
const char *web_cookie(const struct web_request *req, const char *name, char *buf, size_t len);
/* The numeric address of the client ("127.0.0.1", "::1"). */
const char *web_client_addr(const struct web_request *req);
/* True when the client presented a certificate the listener's trust list verifies. */
bool web_client_verified(const struct web_request *req);
/* The name (subject CN, net/tlsname.h) of the client's verified certificate, or NULL
 * (none, or no readable name). The heartbeat listener checks a host speaks for itself. */
const char *web_client_name(const struct web_request *req);
/* True when the request's Origin header is absent or equals origin (NULL: the origin
 * of this request's Host, "https://" + Host). */
bool web_origin_ok(const struct web_request *req, const char *origin);
/* The CSRF check of a state-changing request made with a session cookie: the header
 * X-CSRF-Token equals expected (compared in constant time) and web_origin_ok(). */
bool web_csrf_ok(const struct web_request *req, const char *expected, const char *origin);

/* The body as a JSON object holding only known fields of the right types (fields NULL:
 * any; the caller checks them). On failure
 * replies itself (415 wrong content type, 400 malformed or unknown fields, 413) and
 * returns NULL. Returns a new reference. An empty body counts as {} when allow_empty. */
json_t *web_json_body(struct web_request *req, const struct json_field *fields, bool allow_empty);

/* ---- the answer ---- */
/* Adds a header to the coming answer (Retry-After, Location). Returns 0 or -ENOMEM. */
int web_add_header(struct web_request *req, const char *name, const char *value);
/* Sets a cookie: Secure; HttpOnly; SameSite=Strict; Path=/ and Max-Age (0 deletes it).
 * value must be cookie-safe (base64url). Returns 0, -EINVAL or -ENOMEM. */
int web_set_cookie(struct web_request *req, const char *name, const char *value, int max_age);
/* Answers with body (consumed; NULL: a 500) as JSON. */
void web_reply_json(struct web_request *req, unsigned status, json_t *body);
/* Answers {"error": message, "code": code}. */
void web_reply_error(struct web_request *req, unsigned status, const char *code, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));
/* Answers with text (a malloc'd string, taken over; NULL: a 500) as content_type
 * ("text/plain; charset=utf-8", Prometheus' "text/plain; version=0.0.4"). */
void web_reply_text(struct web_request *req, unsigned status, const char *content_type, char *text);
/* Answers with no body (204, or any status). */
void web_reply_empty(struct web_request *req, unsigned status);
/* An upgraded connection: the client's byte stream, TLS done by the web layer on the
 * client's own socket (no thread or copy between). */
struct web_stream;
/* Answers 101 Switching Protocols with the headers added so far (web_add_header(): at
 * least Upgrade) and hands the connection over: on_upgrade(arg, st, early, n) is called
 * once, on the connection's thread, with the stream and the n bytes the client sent after
 * its request, or with st NULL when the connection was lost in the hand-over (then it only
 * cleans up). It must not block: it starts its own thread, which ends with
 * web_stream_close(st). Returns 0 or -ENOMEM (then nothing was answered). */
int web_reply_upgrade(struct web_request *req,
		      void (*on_upgrade)(void *arg, struct web_stream *st, const uint8_t *early,
					 size_t n),
		      void *arg);
/* The client's TLS stream (net/stream.h: read, write, pending, poll events), for the
 * upgraded protocol's copy loop; it stays the web stream's: close with
 * web_stream_close(). */
struct stream *web_stream_get(struct web_stream *st);
/* Ends TLS and closes the connection. NULL is a no-op. */
void web_stream_close(struct web_stream *st);
/* Answers 405 with an Allow header. */
void web_reply_not_allowed(struct web_request *req, const char *allow);

#endif
