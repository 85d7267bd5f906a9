/* The broker's HTTP API (docs/api.md) on web/: the route tables, authentication of each
 * request (bearer token, or session cookie plus CSRF token and Origin for anything that
 * changes state), the admin role, input checks at the edge, and the one table mapping
 * domain outcomes (enum broker_outcome) to statuses and {"error","code"} bodies. Domain
 * work is in the broker's files by job (broker/README.md); api.c sees only broker.h. */
#include "broker/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/identity.h"
#include "auth/password.h"
#include "auth/token.h"
#include "broker/cert.h"
#include "broker/gateway.h"
#include "broker/metrics.h"
#include "broker/util.h"
#include "broker/pool.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/pem.h"
#include "policy/lifecycle.h"
#include "web/server.h"

/* __Host-: browsers take it only over HTTPS, for this host and Path=/ (no Domain). */
#define COOKIE "__Host-vdi_session"

struct api {
	struct broker *a_broker;
	struct web_server *a_http, *a_heartbeat, *a_metrics;
};

/* ---- domain outcomes as HTTP: the one table ---- */

static const struct outcome_http {
	unsigned oh_status;
	const char *oh_code; /* NULL: the result's policy reason */
} outcome_http[BROKER_OUTCOMES] = {
    [BROKER_OK] = {200, NULL},
    [BROKER_STARTING] = {202, NULL},
    [BROKER_BAD_REQUEST] = {400, "bad_request"},
    [BROKER_BAD_CREDENTIALS] = {401, "bad_credentials"},
    [BROKER_DENIED] = {403, NULL},
    [BROKER_NOT_FOUND] = {404, "not_found"},
    [BROKER_UNKNOWN_HOST] = {404, "unknown_host"},
    [BROKER_WRONG_HOST] = {403, "wrong_host"},
    [BROKER_EXISTS] = {409, "exists"},
    [BROKER_BUSY] = {409, "busy"},
    [BROKER_LOGGED_OFF] = {409, "logged_off"},
    [BROKER_AUTOMATED_POOL] = {409, "automated_pool"},
    [BROKER_LIMIT] = {409, NULL},
    [BROKER_THROTTLED] = {429, "throttled"},
    [BROKER_INTERNAL] = {500, "internal"},
    [BROKER_UNAVAILABLE] = {503, "unavailable"},
    [BROKER_NO_CAPACITY] = {503, NULL},
    [BROKER_HOST_UNAVAILABLE] = {503, "host_unavailable"},
    [BROKER_DIRECTORY_UNAVAILABLE] = {503, "directory_unavailable"},
    [BROKER_PASSWORD_CHANGE] = {403, "password_change_required"},
    [BROKER_ACCOUNT_DISABLED] = {403, "account_disabled"},
    [BROKER_ACCOUNT_EXPIRED] = {403, "account_expired"},
    [BROKER_ACCOUNT_LOCKED] = {403, "account_locked"},
    [BROKER_PASSWORD_REJECTED] = {400, "password_rejected"},
    [BROKER_PASSWORD_FIXED] = {403, "password_change_not_allowed"},
    [BROKER_LOGINS_BUSY] = {503, "busy"},
    [BROKER_DESKTOP_FAILED] = {503, "desktop_failed"},
};

static unsigned outcome_status(enum broker_outcome o)
{
	return o < BROKER_OUTCOMES ? outcome_http[o].oh_status : 500;
}

/* Retry-After for answers that say when to try again. */
static void add_retry_after(struct web_request *req, int seconds)
{
	char ra[16];

	if (seconds <= 0)
		return;
	snprintf(ra, sizeof(ra), "%d", seconds);
	web_add_header(req, "Retry-After", ra);
}

/* Answers a failed operation: {"error": message, "code"[, "retry_after"]}. */
static void reply_result(struct web_request *req, const struct broker_result *res)
{
	enum broker_outcome o =
	    res->br_outcome < BROKER_OUTCOMES ? res->br_outcome : BROKER_INTERNAL;
	const char *code = res->br_reason ? res->br_reason : outcome_http[o].oh_code;
	json_t *body =
	    json_pack("{s:s, s:s}", "error", res->br_message, "code", code ? code : "internal");

	if (body && res->br_retry_after > 0)
		json_object_set_new(body, "retry_after", json_integer(res->br_retry_after));
	add_retry_after(req, res->br_retry_after);
	web_reply_json(req, outcome_status(o), body);
}

/* ---- who is asking ---- */

/* The broker's own origin: [http] public_url, or NULL for the request's Host. */
static const char *own_origin(const struct broker *b)
{
	return broker_config(b)->bc_public_url[0] ? broker_config(b)->bc_public_url : NULL;
}

static bool host_header_sane(const char *h)
{
	return h && h[0] && strlen(h) < 256 &&
	       strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
		   strlen(h);
}

/* "name:port" for gateway URLs. */
static void gateway_host(struct broker *b, struct web_request *req, char *out, size_t len)
{
	const char *h = web_header(req, "Host");

	if (broker_config(b)->bc_public_url[0])
		snprintf(out, len, "%s", broker_config(b)->bc_public_url + strlen("https://"));
	else if (host_header_sane(h))
		snprintf(out, len, "%s", h);
	else
		snprintf(out, len, "%s", broker_config(b)->bc_listen);
	out[strcspn(out, "/")] = '\0';
}

static bool changes_state(struct web_request *req)
{
	return strcmp(web_method(req), "GET") && strcmp(web_method(req), "HEAD");
}

/* Fills u with the caller or replies 401/403 itself and returns false. */
static bool authenticate(struct broker *b, struct web_request *req, struct broker_user *u,
			 bool admin, char *token_out)
{
	const char *authz = web_header(req, "Authorization");
	char cookie[TOKEN_LEN + 2];
	const char *token = NULL;
	bool bearer = false;

	if (authz) {
		if (strncasecmp(authz, "Bearer ", 7)) {
			web_reply_error(req, 401, "not_logged_in", "unsupported authorization");
			return false;
		}
		token = authz + 7;
		bearer = true;
	} else {
		token = web_cookie(req, COOKIE, cookie, sizeof(cookie));
	}
	if (!token || broker_user_load(b, token, bearer, u) < 0) {
		web_reply_error(req, 401, "not_logged_in", "not logged in");
		return false;
	}
	if (!bearer && changes_state(req) && !web_csrf_ok(req, u->bu_csrf, own_origin(b))) {
		log_warnx("csrf: %s %s by user=%s from %s refused (%s)", web_method(req),
			  web_path(req), u->bu_name, web_client_addr(req),
			  !web_header(req, "X-CSRF-Token") ? "no X-CSRF-Token"
							   : "bad token or origin");
		broker_user_free(u);
		web_reply_error(req, 403, "csrf", "missing or wrong CSRF token or origin");
		return false;
	}
	if (admin && !u->bu_admin) {
		broker_audit(b, u->bu_name, "admin", web_path(req), "denied", web_client_addr(req),
			     "%s without the admin role", web_method(req));
		broker_user_free(u);
		web_reply_error(req, 403, "forbidden", "administrators only");
		return false;
	}
	if (token_out)
		snprintf(token_out, TOKEN_LEN + 1, "%s", token);
	return true;
}

/* ---- sessions ---- */

static const struct json_field login_fields[] = {
    {"username", JSON_FIELD_STRING, true},
    {"password", JSON_FIELD_STRING, true},
    {"bearer", JSON_FIELD_BOOL, false},
    JSON_FIELDS_END,
};

static void login(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	char token[TOKEN_LEN + 1];
	struct broker_result res;
	json_t *body, *out = NULL;
	const char *user, *pw;
	bool bearer;

	if (!web_origin_ok(req, own_origin(b))) {
		web_reply_error(req, 403, "csrf", "cross-origin login refused");
		return;
	}
	body = web_json_body(req, login_fields, false);
	if (!body)
		return;
	user = json_string_value(json_object_get(body, "username"));
	pw = json_string_value(json_object_get(body, "password"));
	bearer = json_is_true(json_object_get(body, "bearer"));
	broker_login(b, user, json_string_length(json_object_get(body, "username")), pw,
		     json_string_length(json_object_get(body, "password")), web_client_addr(req),
		     bearer, &out, token, &res);
	broker_metrics_login(res.br_outcome);
	json_decref(body);
	if (res.br_outcome != BROKER_OK)
		reply_result(req, &res);
	else if (!bearer &&
		 web_set_cookie(req, COOKIE, token, broker_config(b)->bc_session_lifetime) < 0) {
		json_decref(out);
		web_reply_error(req, 500, "internal", "internal error");
	} else {
		web_reply_json(req, 200, out);
	}
	explicit_bzero(token, sizeof(token));
}

static const struct json_field password_fields[] = {
    {"username", JSON_FIELD_STRING, true},
    {"password", JSON_FIELD_STRING, true},
    {"new_password", JSON_FIELD_STRING, true},
    JSON_FIELDS_END,
};

/* POST /api/v1/password: without a session (a user whose password must be changed
 * has none), the old password proves who asks. */
static void change_password(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res;
	json_t *body;

	if (!web_origin_ok(req, own_origin(b))) {
		web_reply_error(req, 403, "csrf", "cross-origin password change refused");
		return;
	}
	body = web_json_body(req, password_fields, false);
	if (!body)
		return;
	broker_change_password(
	    b, jstr(body, "username"), json_string_length(json_object_get(body, "username")),
	    jstr(body, "password"), json_string_length(json_object_get(body, "password")),
	    jstr(body, "new_password"), json_string_length(json_object_get(body, "new_password")),
	    web_client_addr(req), &res);
	json_decref(body);
	if (res.br_outcome != BROKER_OK)
		reply_result(req, &res);
	else
		web_reply_empty(req, 204);
}

static void logout(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	char token[TOKEN_LEN + 1];
	struct broker_user u;

	if (!authenticate(b, req, &u, false, token))
		return;
	broker_logout(b, token, &u, web_client_addr(req));
	if (!u.bu_bearer)
		web_set_cookie(req, COOKIE, "deleted", 0);
	broker_user_free(&u);
	web_reply_empty(req, 204);
}

static void session(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_user u;

	if (!authenticate(b, req, &u, false, NULL))
		return;
	web_reply_json(req, 200, broker_user_json(&u));
	broker_user_free(&u);
}

/* ---- desktops ---- */

static void desktops(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_user u;
	json_t *out;

	if (!authenticate(b, req, &u, false, NULL))
		return;
	out = broker_desktops(b, &u, web_client_addr(req));
	if (out)
		web_reply_json(req, 200, out);
	else
		web_reply_error(req, 503, "unavailable", "the broker's store is unavailable");
	broker_user_free(&u);
}

static const struct json_field no_fields[] = {JSON_FIELDS_END};

/* A connect's answer: 200 with the ticket and the gateway's URL, 202 while starting. */
static void reply_connection(struct web_request *req, const struct broker_connection *cn,
			     const struct broker_result *res, const char *gateway_host)
{
	char url[1024];

	if (res->br_outcome == BROKER_STARTING) {
		add_retry_after(req, res->br_retry_after);
		web_reply_json(req, 202,
			       json_pack("{s:s, s:s, s:i, s:s, s:s}", "state", "starting", "stage",
					 cn->cn_stage ? cn->cn_stage : "booting", "retry_after",
					 res->br_retry_after, "session", cn->cn_session, "desktop",
					 cn->cn_desktop));
		return;
	}
	snprintf(url, sizeof(url), "wss://%s/gateway?ticket=%s", gateway_host, cn->cn_ticket);
	web_reply_json(req, 200,
		       json_pack("{s:s, s:I, s:s, s:s, s:s}", "ticket", cn->cn_ticket, "expires",
				 (json_int_t)cn->cn_expires, "gateway_url", url, "session",
				 cn->cn_session, "desktop", cn->cn_desktop));
	explicit_bzero(url, sizeof(url));
}

static void connect(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_connection cn;
	struct broker_result res;
	struct broker_user u;
	char host[300];
	json_t *body;
	double t0;

	if (!authenticate(b, req, &u, false, NULL))
		return;
	body = web_json_body(req, no_fields, true);
	if (!body) {
		broker_user_free(&u);
		return;
	}
	json_decref(body);
	if (!pool_id_valid(web_param(req, 0), 24)) {
		broker_user_free(&u);
		web_reply_error(req, 404, "not_found", "no such pool");
		return;
	}
	gateway_host(b, req, host, sizeof(host));
	t0 = monotonic_seconds();
	broker_connect(b, &u, web_param(req, 0), web_client_addr(req), &cn, &res);
	broker_metrics_connect(res.br_outcome, monotonic_seconds() - t0);
	if (res.br_outcome == BROKER_OK || res.br_outcome == BROKER_STARTING)
		reply_connection(req, &cn, &res, host);
	else
		reply_result(req, &res);
	explicit_bzero(&cn, sizeof(cn));
	broker_user_free(&u);
}

static void session_event(struct broker *b, struct web_request *req, bool admin, int event)
{
	struct broker_result res = {0};
	struct broker_user u;

	if (!authenticate(b, req, &u, admin, NULL))
		return;
	if (strlen(web_param(req, 0)) > 64) {
		broker_result_set(&res, BROKER_NOT_FOUND, NULL, "no such session");
	} else {
		json_t *body = web_json_body(req, no_fields, true);

		if (!body) {
			broker_user_free(&u);
			return;
		}
		json_decref(body);
		broker_session_event(b, &u, web_param(req, 0), event, web_client_addr(req), &res);
	}
	broker_user_free(&u);
	if (res.br_outcome == BROKER_OK)
		web_reply_empty(req, 204);
	else
		reply_result(req, &res);
}

static void disconnect(void *ctx, struct web_request *req)
{
	session_event(ctx, req, false, POLICY_EVENT_DISCONNECT);
}

static void logoff(void *ctx, struct web_request *req)
{
	session_event(ctx, req, false, POLICY_EVENT_LOGOFF);
}

static void admin_disconnect(void *ctx, struct web_request *req)
{
	session_event(ctx, req, true, POLICY_EVENT_DISCONNECT);
}

static void admin_logoff(void *ctx, struct web_request *req)
{
	session_event(ctx, req, true, POLICY_EVENT_LOGOFF);
}

/* GET /gateway?ticket=: the display gateway (broker/gateway.c). */
static void gateway(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;

	gateway_handle(broker_gateway(b), req, own_origin(b));
}

/* ---- administration (admin.c) ---- */

/* Fills u with an admin caller, or answers and returns false. */
/* An administrator's request: signed in as an admin, by the account and groups the
 * directory has now (a user removed from the admin group loses the role at their next
 * request, not at the next periodic check). */
static bool admin_begin(struct broker *b, struct web_request *req, struct broker_user *u)
{
	if (!authenticate(b, req, u, true, NULL))
		return false;
	if (broker_account_recheck(b, u->bu_name) == -ENOENT) {
		broker_user_free(u);
		web_reply_error(req, 401, "not_logged_in", "the account no longer exists");
		return false;
	}
	broker_user_free(u);
	return authenticate(b, req, u, true, NULL);
}

static void reply_list(struct web_request *req, const char *key, json_t *list)
{
	if (list)
		web_reply_json(req, 200, json_pack("{s:o}", key, list));
	else
		web_reply_error(req, 503, "unavailable", "the broker's store is unavailable");
}

/* Answers an admin write: status (201, 204...) with body (or none) when it was done. */
static void reply_admin(struct web_request *req, const struct broker_result *res, unsigned status,
			json_t *body)
{
	if (res->br_outcome != BROKER_OK) {
		json_decref(body);
		reply_result(req, res);
	} else if (body) {
		web_reply_json(req, status, body);
	} else {
		web_reply_empty(req, status);
	}
}

/* GET of an admin list: {key: list}. */
static void admin_list(struct broker *b, struct web_request *req, const char *key,
		       json_t *(*list)(struct broker *b))
{
	struct broker_user u;

	if (!admin_begin(b, req, &u))
		return;
	broker_user_free(&u);
	reply_list(req, key, list(b));
}

typedef enum broker_outcome admin_remove_fn(struct broker *b, const struct broker_user *u,
					    const char *addr, const char *id,
					    struct broker_result *res);

/* DELETE of the thing the path names: 204, or why not. */
static void admin_remove(struct broker *b, struct web_request *req, admin_remove_fn *remove)
{
	struct broker_result res = {0};
	struct broker_user u;

	if (!admin_begin(b, req, &u))
		return;
	remove(b, &u, web_client_addr(req), web_param(req, 0), &res);
	reply_admin(req, &res, 204, NULL);
	broker_user_free(&u);
}

static void admin_hosts(void *ctx, struct web_request *req)
{
	admin_list(ctx, req, "hosts", broker_admin_hosts);
}

static const struct json_field host_fields[] = {
    {"id", JSON_FIELD_STRING, true},
    {"url", JSON_FIELD_STRING, true},
    {"relay", JSON_FIELD_STRING, false},
    JSON_FIELDS_END,
};

static void admin_host_add(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res = {0};
	struct broker_user u;
	json_t *body, *out = NULL;

	if (!admin_begin(b, req, &u))
		return;
	body = web_json_body(req, host_fields, false);
	if (body) {
		broker_admin_host_add(b, &u, web_client_addr(req), body, &out, &res);
		if (res.br_outcome == BROKER_OK)
			web_reply_json(req, 201, out);
		else
			reply_result(req, &res);
	}
	json_decref(body);
	broker_user_free(&u);
}

static void admin_host_delete(void *ctx, struct web_request *req)
{
	admin_remove(ctx, req, broker_admin_host_remove);
}

/* POST /admin/hosts/{id}/drain or /resume: 200 with the host. */
static void host_drain(struct broker *b, struct web_request *req, bool drain)
{
	struct broker_result res = {0};
	struct broker_user u;
	json_t *out = NULL;

	if (!admin_begin(b, req, &u))
		return;
	broker_admin_host_drain(b, &u, web_client_addr(req), web_param(req, 0), drain, &out, &res);
	reply_admin(req, &res, 200, out);
	broker_user_free(&u);
}

static void admin_host_drain(void *ctx, struct web_request *req)
{
	host_drain(ctx, req, true);
}

static void admin_host_resume(void *ctx, struct web_request *req)
{
	host_drain(ctx, req, false);
}

static void admin_host_stop_desktops(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res = {0};
	struct broker_user u;
	json_t *out = NULL;

	if (!admin_begin(b, req, &u))
		return;
	broker_admin_host_stop_desktops(b, &u, web_client_addr(req), web_param(req, 0), &out, &res);
	reply_admin(req, &res, 202, out);
	broker_user_free(&u);
}

static void admin_pools(void *ctx, struct web_request *req)
{
	admin_list(ctx, req, "pools", broker_admin_pools);
}

static void admin_pool_get(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res = {0};
	struct broker_user u;
	json_t *out;

	if (!admin_begin(b, req, &u))
		return;
	broker_user_free(&u);
	broker_admin_pool_get(b, web_param(req, 0), &out, &res);
	reply_admin(req, &res, 200, out);
}

static void pool_write(struct broker *b, struct web_request *req, bool create)
{
	struct broker_result res = {0};
	struct broker_user u;
	json_t *body, *out = NULL;

	if (!admin_begin(b, req, &u))
		return;
	body = web_json_body(req, NULL, false);
	if (body) {
		broker_admin_pool_write(b, &u, web_client_addr(req),
					create ? NULL : web_param(req, 0), body, &out, &res);
		reply_admin(req, &res, create ? 201 : 200, out);
	}
	json_decref(body);
	broker_user_free(&u);
}

static void admin_pool_create(void *ctx, struct web_request *req)
{
	pool_write(ctx, req, true);
}

static void admin_pool_update(void *ctx, struct web_request *req)
{
	pool_write(ctx, req, false);
}

static void admin_pool_delete(void *ctx, struct web_request *req)
{
	admin_remove(ctx, req, broker_admin_pool_delete);
}

static const struct json_field entitlement_fields[] = {
    {"kind", JSON_FIELD_STRING, true},
    {"name", JSON_FIELD_STRING, true},
    JSON_FIELDS_END,
};

static void admin_entitle(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	const char *pool = web_param(req, 0);
	struct broker_result res = {0};
	struct broker_user u;
	json_t *body;

	if (!admin_begin(b, req, &u))
		return;
	body = web_json_body(req, entitlement_fields, false);
	if (body) {
		broker_admin_entitle(b, &u, web_client_addr(req), pool, jstr(body, "kind"),
				     jstr(body, "name"), &res);
		reply_admin(req, &res, 201,
			    json_pack("{s:s, s:s, s:s}", "pool", pool, "kind", jstr(body, "kind"),
				      "name", jstr(body, "name")));
	}
	json_decref(body);
	broker_user_free(&u);
}

static void admin_unentitle(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res = {0};
	struct broker_user u;

	if (!admin_begin(b, req, &u))
		return;
	broker_admin_unentitle(b, &u, web_client_addr(req), web_param(req, 0), web_param(req, 1),
			       web_param(req, 2), &res);
	reply_admin(req, &res, 204, NULL);
	broker_user_free(&u);
}

static void admin_desktop_add(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res = {0};
	struct broker_user u;
	json_t *body;

	if (!admin_begin(b, req, &u))
		return;
	body = web_json_body(req, NULL, false);
	if (body) {
		broker_admin_desktop_add(b, &u, web_client_addr(req), web_param(req, 0), body,
					 &res);
		reply_admin(req, &res, 201, NULL);
	}
	json_decref(body);
	broker_user_free(&u);
}

static void admin_sessions(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_user u;
	char all[8];

	if (!admin_begin(b, req, &u))
		return;
	broker_user_free(&u);
	reply_list(req, "sessions",
		   broker_admin_sessions(b, web_query(req, "all", all, sizeof(all))));
}

static void admin_users(void *ctx, struct web_request *req)
{
	admin_list(ctx, req, "users", broker_admin_users);
}

static const struct json_field user_fields[] = {
    {"username", JSON_FIELD_STRING, true},	{"password", JSON_FIELD_STRING, true},
    {"display_name", JSON_FIELD_STRING, false}, {"mail", JSON_FIELD_STRING, false},
    {"groups", JSON_FIELD_ANY, false},		JSON_FIELDS_END,
};

static void admin_user_add(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res = {0};
	struct broker_user u;
	json_t *body;

	if (!admin_begin(b, req, &u))
		return;
	body = web_json_body(req, user_fields, false);
	if (body) {
		broker_admin_user_add(b, &u, web_client_addr(req), body, &res);
		reply_admin(req, &res, 201, json_pack("{s:s}", "username", jstr(body, "username")));
	}
	json_decref(body);
	broker_user_free(&u);
}

static void admin_user_delete(void *ctx, struct web_request *req)
{
	admin_remove(ctx, req, broker_admin_user_delete);
}

/* GET /admin/directory: 200 the user directory's servers and how they answer. */
static void admin_directory(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_user u;

	if (!admin_begin(b, req, &u))
		return;
	broker_user_free(&u);
	web_reply_json(req, 200, broker_admin_directory(b));
}

/* GET /admin/users/{name}/web-sessions: 200 {"web_sessions": [...]}. */
static void admin_user_websessions(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_user u;

	if (!admin_begin(b, req, &u))
		return;
	broker_user_free(&u);
	reply_list(req, "web_sessions", broker_admin_user_websessions(b, web_param(req, 0)));
}

/* DELETE /admin/users/{name}/web-sessions: 204, every one ended. */
static void admin_user_revoke(void *ctx, struct web_request *req)
{
	admin_remove(ctx, req, broker_admin_user_revoke);
}

static void admin_audit(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_user u;
	char buf[32], *end;
	long long limit = 100, before = 0;

	if (!admin_begin(b, req, &u))
		return;
	broker_user_free(&u);
	if (web_query(req, "limit", buf, sizeof(buf))) {
		limit = strtoll(buf, &end, 10);
		if (*end || limit < 1 || limit > 1000) {
			web_reply_error(req, 400, "bad_request", "limit must be 1 to 1000");
			return;
		}
	}
	if (web_query(req, "before", buf, sizeof(buf))) {
		before = strtoll(buf, &end, 10);
		if (*end || before < 1) {
			web_reply_error(req, 400, "bad_request", "before must be an entry id");
			return;
		}
	}
	reply_list(req, "entries", broker_admin_audit(b, (int)limit, before));
}

/* ---- monitoring (metrics.c) ---- */

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* GET /healthz: the process answers. */
static void healthz(void *ctx, struct web_request *req)
{
	(void)ctx;
	web_reply_text(req, 200, "text/plain; charset=utf-8", strdup("ok\n"));
}

/* GET /readyz: 200 "ready" when the store answers, else 503 with the reason. */
static void readyz(void *ctx, struct web_request *req)
{
	char why[200], *text = NULL;

	if (broker_ready(ctx, why, sizeof(why))) {
		web_reply_text(req, 200, "text/plain; charset=utf-8", strdup("ready\n"));
		return;
	}
	if (asprintf(&text, "not ready: %s\n", why) < 0)
		text = NULL;
	web_reply_text(req, 503, "text/plain; charset=utf-8", text);
}

/* GET /metrics on [http] listen: administrators only (bearer token or session). */
static void metrics_admin(void *ctx, struct web_request *req)
{
	struct broker_user u;

	if (!authenticate(ctx, req, &u, true, NULL))
		return;
	broker_user_free(&u);
	web_reply_text(req, 200, METRICS_TYPE, broker_metrics_text(ctx));
}

/* GET /metrics on [metrics] listen: anyone who reaches that address. */
static void metrics_open(void *ctx, struct web_request *req)
{
	web_reply_text(req, 200, METRICS_TYPE, broker_metrics_text(ctx));
}

/* ---- hosts ---- */

static void heartbeat(void *ctx, struct web_request *req)
{
	struct broker *b = ctx;
	struct broker_result res;
	json_t *body;

	if (!web_client_verified(req)) {
		web_reply_error(req, 403, "forbidden", "a host certificate is required");
		return;
	}
	body = web_json_body(req, NULL, false);
	if (!body)
		return;
	broker_heartbeat(b, body, web_client_name(req), &res);
	json_decref(body);
	if (res.br_outcome == BROKER_OK)
		web_reply_empty(req, 204);
	else
		reply_result(req, &res);
}

static const struct web_route routes[] = {
    {"POST", "/api/v1/login", login},
    {"POST", "/api/v1/logout", logout},
    {"GET", "/api/v1/session", session},
    {"POST", "/api/v1/password", change_password},
    {"GET", "/api/v1/desktops", desktops},
    {"POST", "/api/v1/desktops/{}/connect", connect},
    {"POST", "/api/v1/sessions/{}/disconnect", disconnect},
    {"POST", "/api/v1/sessions/{}/logoff", logoff},
    {"GET", "/gateway", gateway},
    {"GET", "/api/v1/admin/hosts", admin_hosts},
    {"POST", "/api/v1/admin/hosts", admin_host_add},
    {"DELETE", "/api/v1/admin/hosts/{}", admin_host_delete},
    {"POST", "/api/v1/admin/hosts/{}/drain", admin_host_drain},
    {"POST", "/api/v1/admin/hosts/{}/resume", admin_host_resume},
    {"POST", "/api/v1/admin/hosts/{}/stop-desktops", admin_host_stop_desktops},
    {"GET", "/api/v1/admin/pools", admin_pools},
    {"POST", "/api/v1/admin/pools", admin_pool_create},
    {"GET", "/api/v1/admin/pools/{}", admin_pool_get},
    {"PUT", "/api/v1/admin/pools/{}", admin_pool_update},
    {"DELETE", "/api/v1/admin/pools/{}", admin_pool_delete},
    {"POST", "/api/v1/admin/pools/{}/entitlements", admin_entitle},
    {"DELETE", "/api/v1/admin/pools/{}/entitlements/{}/{}", admin_unentitle},
    {"POST", "/api/v1/admin/pools/{}/desktops", admin_desktop_add},
    {"GET", "/api/v1/admin/sessions", admin_sessions},
    {"POST", "/api/v1/admin/sessions/{}/disconnect", admin_disconnect},
    {"POST", "/api/v1/admin/sessions/{}/logoff", admin_logoff},
    {"GET", "/api/v1/admin/users", admin_users},
    {"POST", "/api/v1/admin/users", admin_user_add},
    {"DELETE", "/api/v1/admin/users/{}", admin_user_delete},
    {"GET", "/api/v1/admin/users/{}/web-sessions", admin_user_websessions},
    {"GET", "/api/v1/admin/directory", admin_directory},
    {"DELETE", "/api/v1/admin/users/{}/web-sessions", admin_user_revoke},
    {"GET", "/api/v1/admin/audit", admin_audit},
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {"GET", "/metrics", metrics_admin},
    {NULL, NULL, NULL},
};

static const struct web_route metrics_routes[] = {
    {"GET", "/metrics", metrics_open},
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {NULL, NULL, NULL},
};

static const struct web_route heartbeat_routes[] = {
    {"POST", "/api/v1/hosts/heartbeat", heartbeat},
    {NULL, NULL, NULL},
};

struct api *api_start(struct broker *b, char *err, size_t errlen)
{
	const struct broker_config *c = broker_config(b);
	struct api *a = calloc(1, sizeof(*a));
	char *cert = NULL, *key = NULL, *ca = NULL;
	struct gateway *gw;
	struct web_config wc = {
	    .wc_max_body = (size_t)c->bc_max_body,
	    .wc_max_connections = (unsigned)c->bc_max_connections,
	    .wc_max_per_address = (unsigned)c->bc_max_per_address,
	    .wc_timeout = (unsigned)c->bc_http_idle,
	    .wc_request_timeout = (unsigned)c->bc_request_timeout,
	};

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->a_broker = b;
	gw = gateway_new(b, err, errlen);
	if (!gw)
		goto out_fail;
	broker_set_gateway(b, gw);
	if (c->bc_cert[0]) {
		cert = pem_read(c->bc_cert, err, errlen);
		key = cert ? pem_read(c->bc_key, err, errlen) : NULL;
	} else if (cert_self_signed(c->bc_state_dir, &cert, &key, err, errlen) < 0) {
		goto out_fail;
	}
	if (!cert || !key)
		goto out_fail;
	wc.wc_listen = c->bc_listen;
	wc.wc_cert_pem = cert;
	wc.wc_key_pem = key;
	wc.wc_static_dir = c->bc_static_dir[0] ? c->bc_static_dir : NULL;
	wc.wc_name = "http";
	a->a_http = web_start(&wc, routes, b, err, errlen);
	if (!a->a_http)
		goto out_fail;
	log_info("listening on https://%s%s", c->bc_listen,
		 c->bc_cert[0] ? "" : " (self-signed certificate)");
	if (c->bc_metrics_listen[0]) {
		struct web_config mc = wc;

		mc.wc_listen = c->bc_metrics_listen;
		mc.wc_static_dir = NULL;
		mc.wc_max_connections = 16;
		mc.wc_max_body = 1024;
		mc.wc_name = "metrics";
		a->a_metrics = web_start(&mc, metrics_routes, b, err, errlen);
		if (!a->a_metrics)
			goto out_fail;
		log_info("metrics on https://%s/metrics (no authentication: anyone who reaches "
			 "this address reads them)",
			 c->bc_metrics_listen);
	}
	if (c->bc_heartbeat_listen[0]) {
		free(cert);
		explicit_bzero(key, strlen(key));
		free(key);
		cert = pem_read(c->bc_host_cert, err, errlen);
		key = cert ? pem_read(c->bc_host_key, err, errlen) : NULL;
		ca = key ? pem_read(c->bc_host_ca, err, errlen) : NULL;
		if (!ca)
			goto out_fail;
		wc.wc_listen = c->bc_heartbeat_listen;
		wc.wc_cert_pem = cert;
		wc.wc_key_pem = key;
		wc.wc_trust_pem = ca;
		wc.wc_static_dir = NULL;
		wc.wc_max_connections = 256;
		wc.wc_max_body = 1 << 20;
		wc.wc_name = "heartbeat";
		a->a_heartbeat = web_start(&wc, heartbeat_routes, b, err, errlen);
		if (!a->a_heartbeat)
			goto out_fail;
		log_info("heartbeats on https://%s (host certificates required)",
			 c->bc_heartbeat_listen);
	}
	free(cert);
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	free(ca);
	return a;

out_fail:
	free(cert);
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	free(ca);
	api_stop(a);
	return NULL;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	web_stop(a->a_metrics);
	web_stop(a->a_heartbeat);
	/* upgraded connections first: the server waits for them */
	gateway_free(broker_gateway(a->a_broker));
	broker_set_gateway(a->a_broker, NULL);
	web_stop(a->a_http);
	free(a);
}
