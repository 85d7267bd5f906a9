/* hostd's API: a route table on web/ (HTTPS with the client certificate required and
 * verified during the handshake against [api] ca, JSON bodies bounded by [api] max_body)
 * whose handlers call host.h, and the one table that maps host.h's errors to statuses
 * and error codes.
 *
 *   GET    /api/v1/capacity
 *   GET    /api/v1/desktops                   POST /api/v1/desktops
 *   GET    /api/v1/desktops/{id}              DELETE /api/v1/desktops/{id}
 *   POST   /api/v1/desktops/{id}/start        POST /api/v1/desktops/{id}/stop
 *   POST   /api/v1/desktops/{id}/ticket
 *   POST   /api/v1/templates/check
 *   GET    /metrics  /healthz  /readyz (also on [metrics] listen, for a scraper) */
#include "hostd/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/metrics.h"
#include "hostd/template.h"
#include "lib/log.h"
#include "lib/pem.h"
#include "web/server.h"

/* Seconds a connection may stay idle (the TLS handshake gets at most 10 of them). */
#define API_IDLE_TIMEOUT_S 30

struct host_api {
	const struct conf *a_conf;
	struct host *a_host;
	struct web_server *a_web, *a_metrics;
};

/* host.h's errors as the API answers them. */
static const struct failure {
	int f_errno;
	unsigned f_status;
	const char *f_code;
} failures[] = {
    {-EINVAL, 400, "bad_request"},    {-ENOENT, 404, "not_found"},
    {-EEXIST, 409, "exists"},	      {-EBUSY, 409, "wrong_state"},
    {-ENOSPC, 409, "limit_reached"},  {-ENOMEM, 503, "insufficient_memory"},
    {-ENOTSUP, 501, "not_supported"}, {-ENOEXEC, 422, "template_invalid"},
};

static void reply_failure(struct web_request *req, int r, const char *msg)
{
	for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
		if (failures[i].f_errno == r) {
			web_reply_error(req, failures[i].f_status, failures[i].f_code, "%s", msg);
			return;
		}
	web_reply_error(req, 500, "engine_error", "%s", msg);
}

/* Answers out with status, or the failure r. */
static void reply(struct web_request *req, int r, unsigned status, json_t *out, const char *err)
{
	if (r < 0) {
		json_decref(out);
		reply_failure(req, r, err);
	} else {
		web_reply_json(req, status, out);
	}
}

/* The desktop id of the path, or NULL after answering 400. */
static const char *desktop_id(struct web_request *req)
{
	const char *id = web_param(req, 0);

	if (!desktop_id_valid(id)) {
		web_reply_error(req, 400, "bad_request", "malformed desktop id");
		return NULL;
	}
	return id;
}

static void get_capacity(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;

	web_reply_json(req, 200, host_capacity(a->a_host));
}

static void list_desktops(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;

	web_reply_json(req, 200, host_list(a->a_host));
}

static void create_desktop(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;
	json_t *body = web_json_body(req, NULL, false), *out = NULL;
	char err[512] = "";
	int r;

	if (!body)
		return;
	r = host_create(a->a_host, body, &out, err, sizeof(err));
	json_decref(body);
	reply(req, r, 201, out, err);
}

static void get_desktop(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;
	const char *id = desktop_id(req);
	json_t *out = NULL;
	char err[512] = "";
	int r;

	if (!id)
		return;
	r = host_get(a->a_host, id, &out, err, sizeof(err)); /* before out is read */
	reply(req, r, 200, out, err);
}

static void destroy_desktop(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;
	const char *id = desktop_id(req);
	char err[512] = "";
	int r;

	if (!id)
		return;
	r = host_destroy(a->a_host, id, err, sizeof(err));
	reply(req, r, 200, r < 0 ? NULL : json_pack("{s:s}", "deleted", id), err);
}

typedef int desktop_action_fn(struct host *h, const char *id, const json_t *body, json_t **out,
			      char *err, size_t errlen);

/* POST /api/v1/desktops/{id}/VERB: its JSON body (empty allowed or not) handed to fn,
 * whose result is answered with status. */
static void desktop_action(struct web_request *req, struct host_api *a, desktop_action_fn *fn,
			   bool empty_ok, unsigned status)
{
	const char *id = desktop_id(req);
	json_t *body = id ? web_json_body(req, NULL, empty_ok) : NULL, *out = NULL;
	char err[512] = "";
	int r;

	if (!body)
		return;
	r = fn(a->a_host, id, body, &out, err, sizeof(err));
	json_decref(body);
	reply(req, r, status, out, err);
}

static int start_without_fields(struct host *h, const char *id, const json_t *body, json_t **out,
				char *err, size_t errlen)
{
	if (json_object_size(body)) {
		snprintf(err, errlen, "start takes no fields");
		return -EINVAL;
	}
	return host_start(h, id, out, err, errlen);
}

static void start_desktop(void *ctx, struct web_request *req)
{
	desktop_action(req, ctx, start_without_fields, true, 202);
}

static void stop_desktop(void *ctx, struct web_request *req)
{
	desktop_action(req, ctx, host_stop, true, 202);
}

static void set_ticket(void *ctx, struct web_request *req)
{
	desktop_action(req, ctx, host_set_ticket, false, 200);
}

/* 200 with what was found, 422 template_invalid with the problems (each naming its
 * file), 400 for a malformed request. */
static void check_template(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;
	json_t *body = web_json_body(req, NULL, false), *report = NULL;
	char err[512] = "";
	int r;

	if (!body)
		return;
	r = template_check(a->a_conf, body, &report, err, sizeof(err));
	json_decref(body);
	if (r == -ENOEXEC && report) {
		json_object_set_new(report, "error", json_string(err));
		json_object_set_new(report, "code", json_string("template_invalid"));
		web_reply_json(req, 422, report);
		return;
	}
	reply(req, r, 200, report, err);
}

/* ---- monitoring (metrics.c) ---- */

#define TEXT_TYPE "text/plain; charset=utf-8"

static void healthz(void *ctx, struct web_request *req)
{
	(void)ctx;
	web_reply_text(req, 200, TEXT_TYPE, strdup("ok\n"));
}

static void readyz(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;
	char why[1024], *text = NULL;

	if (hostd_ready(a->a_conf, why, sizeof(why))) {
		web_reply_text(req, 200, TEXT_TYPE, strdup("ready\n"));
		return;
	}
	why[strcspn(why, "\n")] = '\0'; /* one line */
	if (asprintf(&text, "not ready: %s\n", why) < 0)
		text = NULL;
	web_reply_text(req, 503, TEXT_TYPE, text);
}

static void metrics(void *ctx, struct web_request *req)
{
	struct host_api *a = ctx;
	json_t *list = host_list(a->a_host), *cap = host_capacity(a->a_host);

	web_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
		       hostd_metrics_text(a->a_conf, list, cap));
	json_decref(list);
	json_decref(cap);
}

static const struct web_route metrics_routes[] = {
    {"GET", "/metrics", metrics},
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {NULL, NULL, NULL},
};

static const struct web_route routes[] = {
    {"GET", "/metrics", metrics},
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {"GET", "/api/v1/capacity", get_capacity},
    {"GET", "/api/v1/desktops", list_desktops},
    {"POST", "/api/v1/desktops", create_desktop},
    {"GET", "/api/v1/desktops/{}", get_desktop},
    {"DELETE", "/api/v1/desktops/{}", destroy_desktop},
    {"POST", "/api/v1/desktops/{}/start", start_desktop},
    {"POST", "/api/v1/desktops/{}/stop", stop_desktop},
    {"POST", "/api/v1/desktops/{}/ticket", set_ticket},
    {"POST", "/api/v1/templates/check", check_template},
    {NULL, NULL, NULL},
};

static char *read_pem(const char *path)
{
	char err[512];
	char *pem = pem_read(path, err, sizeof(err));

	if (!pem)
		log_warnx("api: %s", err);
	return pem;
}

struct host_api *host_api_start(const struct conf *c, struct host *h)
{
	struct host_api *a = calloc(1, sizeof(*a));
	char *cert = read_pem(c->tls_cert), *key = cert ? read_pem(c->tls_key) : NULL;
	char *ca = key ? read_pem(c->tls_ca) : NULL;
	struct web_config wc = {
	    .wc_listen = c->api_listen,
	    .wc_cert_pem = cert,
	    .wc_key_pem = key,
	    .wc_trust_pem = ca,
	    .wc_client_name = c->broker_name,
	    .wc_max_body = (size_t)c->api_max_body,
	    .wc_max_connections = (unsigned)c->api_max_connections,
	    .wc_max_per_address = (unsigned)c->api_max_per_address,
	    .wc_timeout = API_IDLE_TIMEOUT_S,
	    .wc_name = "api",
	};
	char err[512];

	if (a && ca) {
		a->a_conf = c;
		a->a_host = h;
		a->a_web = web_start(&wc, routes, a, err, sizeof(err));
		if (a->a_web)
			log_info("api: listening on https://%s (the broker's certificate, '%s', "
				 "required)",
				 c->api_listen, c->broker_name);
		else
			log_warnx("api: %s", err);
	}
	if (a && a->a_web && c->metrics_listen[0]) {
		wc.wc_listen = c->metrics_listen;
		wc.wc_client_name = c->metrics_client_name;
		wc.wc_max_connections = 8;
		wc.wc_max_body = 1024;
		wc.wc_name = "metrics";
		a->a_metrics = web_start(&wc, metrics_routes, a, err, sizeof(err));
		if (a->a_metrics) {
			log_info("metrics: listening on https://%s (a certificate named '%s' "
				 "required)",
				 c->metrics_listen, c->metrics_client_name);
		} else {
			log_warnx("metrics: %s", err);
			web_stop(a->a_web);
			a->a_web = NULL;
		}
	}
	free(cert);
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	free(ca);
	if (!a || !a->a_web) {
		free(a);
		return NULL;
	}
	return a;
}

void host_api_stop(struct host_api *a)
{
	if (!a)
		return;
	web_stop(a->a_metrics);
	web_stop(a->a_web);
	free(a);
}
