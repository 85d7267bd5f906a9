/* Logins, the user's pools, connect and tickets, session events and heartbeats. Every
 * decision that writes runs in one store transaction with the reads it depends on
 * (store_begin() takes the write lock first), so two requests cannot claim one desktop;
 * calls to hosts happen outside transactions. The maintenance thread is in
 * broker/maintain.c. */
#include "broker/broker.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/identity.h"
#include "auth/password.h"
#include "broker/hostclient.h"
#include "broker/internal.h"
#include "broker/pool.h"
#include "lib/json.h"
#include "lib/log.h"
#include "policy/access.h"
#include "policy/assign.h"
#include "policy/lifecycle.h"
#include "policy/placement.h"
#include "policy/rules.h"

#define RETRY_AFTER_S 2

/* ---- small helpers shared with maintain.c and api.c (internal.h) ---- */

const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int64_t jint(const json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

int random_hex(char *out, size_t bytes)
{
	unsigned char buf[32];

	if (bytes > sizeof(buf) || RAND_bytes(buf, (int)bytes) != 1)
		return -EIO;
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", buf[i]);
	return 0;
}

int ticket_hash(const char *ticket, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (!EVP_Digest(ticket, strlen(ticket), md, &len, EVP_sha256(), NULL) || len != 32)
		return -EIO;
	for (unsigned i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return 0;
}

bool ticket_well_formed(const char *t)
{
	return t && strlen(t) == BROKER_TICKET_LEN &&
	       strspn(t, "0123456789abcdef") == BROKER_TICKET_LEN;
}

void broker_audit(struct broker *b, const char *actor, const char *action, const char *target,
		  const char *result, const char *addr, const char *fmt, ...)
{
	char detail[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	if (store_audit(b->b_store, (int64_t)time(NULL), actor, action, target, result, addr,
			detail[0] ? detail : NULL) < 0)
		log_warnx("audit: cannot record %s %s", action, target ? target : "");
}

/* ---- set-up ---- */

static int lookup_user(void *ctx, const char *username, struct identity **id, char **hash)
{
	struct broker *b = ctx;
	json_t *u = store_user_get(b->b_store, username), *g;
	size_t i;

	if (!u)
		return errno == ENOENT ? -ENOENT : -EIO;
	*id = identity_new(jstr(u, "username"), NULL, jstr(u, "display_name"), jstr(u, "mail"));
	*hash = strdup(jstr(u, "password_hash") ? jstr(u, "password_hash") : "");
	if (!*id || !*hash)
		goto out_nomem;
	json_array_foreach (json_object_get(u, "groups"), i, g)
		if (json_is_string(g) && identity_add_group(*id, json_string_value(g)) == -ENOMEM)
			goto out_nomem;
	json_decref(u);
	return 0;
out_nomem:
	identity_free(*id);
	free(*hash);
	*id = NULL;
	*hash = NULL;
	json_decref(u);
	return -ENOMEM;
}

struct broker *broker_open(const struct broker_config *cfg, char *err, size_t errlen)
{
	struct broker *b = calloc(1, sizeof(*b));
	struct auth_user_source source = {0};
	char path[4200];

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->b_cfg = cfg;
	pthread_mutex_init(&b->b_lock, NULL);
	pthread_cond_init(&b->b_wake, NULL);
	if (mkdir(cfg->bc_state_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", cfg->bc_state_dir, strerror(errno));
		goto out_close;
	}
	snprintf(path, sizeof(path), "%s/broker.db", cfg->bc_state_dir);
	b->b_store = store_open(path, err, errlen);
	if (!b->b_store)
		goto out_close;
	source.aus_lookup = lookup_user;
	source.aus_ctx = b;
	b->b_auth = auth_open(&cfg->bc_auth, &source, err, errlen);
	if (!b->b_auth)
		goto out_close;
	if (cfg->bc_host_cert[0]) {
		b->b_hosts = hostclient_new(cfg->bc_host_cert, cfg->bc_host_key, cfg->bc_host_ca,
					    cfg->bc_host_request_timeout);
		if (!b->b_hosts) {
			snprintf(err, errlen, "out of memory");
			goto out_close;
		}
	}
	return b;

out_close:
	broker_close(b);
	return NULL;
}

void broker_close(struct broker *b)
{
	if (!b)
		return;
	broker_stop(b);
	hostclient_free(b->b_hosts);
	auth_close(b->b_auth);
	store_close(b->b_store);
	pthread_cond_destroy(&b->b_wake);
	pthread_mutex_destroy(&b->b_lock);
	free(b);
}

/* ---- logins and web sessions ---- */

static bool is_admin(const struct broker_config *cfg, const struct identity *id)
{
	if (broker_config_list_has(cfg->bc_admin_users, id->id_username))
		return true;
	for (size_t i = 0; i < id->id_ngroups; i++)
		if (broker_config_list_has(cfg->bc_admin_groups, id->id_groups[i]))
			return true;
	return false;
}

/* A printable copy of what the client sent as a user name, for the audit log. */
static void printable_name(const char *user, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)user[i];

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

json_t *broker_user_json(const struct broker_user *u)
{
	return json_pack("{s:{s:s, s:s, s:b}, s:s}", "user", "username", u->bu_name, "display_name",
			 u->bu_display_name ? u->bu_display_name : u->bu_name, "admin", u->bu_admin,
			 "csrf_token", u->bu_csrf);
}

int broker_login(struct broker *b, const char *user, size_t user_len, const char *password,
		 size_t password_len, const char *addr, bool bearer, json_t **out,
		 char token[TOKEN_LEN + 1], int *retry_after)
{
	int64_t now = (int64_t)time(NULL);
	char err[512] = "", shown[300], hash[TOKEN_HASH_LEN + 1], csrf[TOKEN_LEN + 1];
	struct auth_request req = {
	    .ar_username = user,
	    .ar_username_len = user_len,
	    .ar_password = password,
	    .ar_password_len = password_len,
	    .ar_client_addr = addr,
	    .ar_now = now,
	};
	struct identity *id = NULL;
	json_t *groups;
	bool admin;
	int r;

	*out = NULL;
	printable_name(user, user_len < 256 ? user_len : 256, shown, sizeof(shown));
	r = auth_login(b->b_auth, &req, &id, retry_after, err, sizeof(err));
	if (r < 0) {
		broker_audit(b, shown, "login", shown, "failure", addr, "%s", err);
		return r;
	}
	admin = is_admin(b->b_cfg, id);
	groups = json_array();
	for (size_t i = 0; groups && i < id->id_ngroups; i++)
		json_array_append_new(groups, json_string(id->id_groups[i]));
	if (!groups || token_generate(token) < 0 || token_generate(csrf) < 0 ||
	    token_hash(token, hash) < 0) {
		r = -EIO;
		goto out;
	}
	r = store_websession_add(b->b_store, hash, id->id_username, id->id_display_name, groups,
				 admin, csrf, bearer, addr, now,
				 now + b->b_cfg->bc_session_lifetime);
	if (r < 0) {
		r = -EIO;
		goto out;
	}
	*out = json_pack("{s:{s:s, s:s, s:b}, s:s}", "user", "username", id->id_username,
			 "display_name", id->id_display_name, "admin", admin, "csrf_token", csrf);
	if (*out && bearer)
		json_object_set_new(*out, "token", json_string(token));
	if (!*out) {
		store_websession_delete(b->b_store, hash);
		r = -ENOMEM;
		goto out;
	}
	broker_audit(b, id->id_username, "login", id->id_username, "success", addr,
		     "%s session%s, %zu group(s)", bearer ? "bearer" : "cookie",
		     admin ? ", admin" : "", id->id_ngroups);
out:
	explicit_bzero(csrf, sizeof(csrf));
	json_decref(groups);
	identity_free(id);
	return r;
}

int broker_user_load(struct broker *b, const char *token, bool bearer, struct broker_user *u)
{
	char hash[TOKEN_HASH_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	json_t *groups, *g;
	size_t i;

	memset(u, 0, sizeof(*u));
	if (!token || !token_well_formed(token) || token_hash(token, hash) < 0)
		return -EACCES;
	u->bu_record = store_websession_get(b->b_store, hash, now, now - b->b_cfg->bc_session_idle);
	if (!u->bu_record)
		return -EACCES;
	if (json_is_true(json_object_get(u->bu_record, "bearer")) != bearer) {
		broker_user_free(u);
		return -EACCES;
	}
	u->bu_name = jstr(u->bu_record, "username");
	u->bu_display_name = jstr(u->bu_record, "display_name");
	u->bu_csrf = jstr(u->bu_record, "csrf");
	u->bu_admin = json_is_true(json_object_get(u->bu_record, "admin"));
	u->bu_bearer = bearer;
	groups = json_object_get(u->bu_record, "groups");
	u->bu_groups = calloc(json_array_size(groups) + 1, sizeof(*u->bu_groups));
	if (!u->bu_groups) {
		broker_user_free(u);
		return -ENOMEM;
	}
	json_array_foreach (groups, i, g)
		if (json_is_string(g))
			u->bu_groups[u->bu_ngroups++] = json_string_value(g);
	return 0;
}

void broker_user_free(struct broker_user *u)
{
	free(u->bu_groups);
	json_decref(u->bu_record);
	memset(u, 0, sizeof(*u));
}

int broker_logout(struct broker *b, const char *token, const struct broker_user *u,
		  const char *addr)
{
	char hash[TOKEN_HASH_LEN + 1];
	int r = token_hash(token, hash);

	if (r == 0)
		r = store_websession_delete(b->b_store, hash);
	broker_audit(b, u->bu_name, "logout", u->bu_name, r == 0 ? "success" : "failure", addr,
		     NULL);
	return r;
}

int broker_user_add(struct broker *b, const char *username, const char *password,
		    const char *display_name, const char *mail, const json_t *groups, char *err,
		    size_t errlen)
{
	struct password_params params = password_default_params;
	char hash[PASSWORD_HASH_MAX];
	int r;

	params.pp_ln = b->b_cfg->bc_password_cost;
	if (!identity_valid_username(username, strlen(username))) {
		snprintf(err, errlen, "invalid username");
		return -EINVAL;
	}
	r = password_hash_with(password, &params, hash, sizeof(hash));
	if (r < 0) {
		snprintf(err, errlen,
			 r == -EINVAL ? "the password must be 1 to %d bytes"
				      : "cannot hash the password",
			 PASSWORD_MAX_LEN);
		return r;
	}
	r = store_user_add(b->b_store, username, hash, display_name, mail, groups,
			   (int64_t)time(NULL));
	explicit_bzero(hash, sizeof(hash));
	if (r == -EEXIST)
		snprintf(err, errlen, "user '%s' exists already", username);
	else if (r < 0)
		snprintf(err, errlen, "cannot store the user");
	return r;
}

/* ---- the user's view ---- */

static void policy_user_of(const struct broker_user *u, struct policy_user *pu)
{
	pu->pu_name = u->bu_name;
	pu->pu_groups = u->bu_groups;
	pu->pu_ngroups = u->bu_ngroups;
}

static void client_of(const char *addr, int64_t now, struct policy_addr *pa,
		      struct policy_client *pc)
{
	pc->pc_addr = addr && policy_addr_parse(addr, pa) == 0 ? pa : NULL;
	pc->pc_now = now;
}

/* Arrays of policy views over the store's records, for policy_assign(). */
struct snapshot {
	json_t *sn_desktops, *sn_sessions;
	struct policy_desktop *sn_pd;
	struct policy_session *sn_ps;
};

static int snapshot_load(struct broker *b, const char *pool, const char *user, struct snapshot *sn)
{
	memset(sn, 0, sizeof(*sn));
	sn->sn_desktops = store_desktops_list(b->b_store, pool, NULL);
	sn->sn_sessions = store_sessions_list(b->b_store, user, NULL, true);
	if (!sn->sn_desktops || !sn->sn_sessions)
		return -EIO;
	sn->sn_pd = calloc(json_array_size(sn->sn_desktops) + 1, sizeof(*sn->sn_pd));
	sn->sn_ps = calloc(json_array_size(sn->sn_sessions) + 1, sizeof(*sn->sn_ps));
	if (!sn->sn_pd || !sn->sn_ps)
		return -ENOMEM;
	pool_desktops_view(sn->sn_desktops, sn->sn_pd);
	pool_sessions_view(sn->sn_sessions, sn->sn_ps);
	return 0;
}

static void snapshot_free(struct snapshot *sn)
{
	json_decref(sn->sn_desktops);
	json_decref(sn->sn_sessions);
	free(sn->sn_pd);
	free(sn->sn_ps);
}

static struct policy_assignment assign(struct broker *b, struct pool_view *pv,
				       const struct broker_user *u, const struct policy_client *pc,
				       struct snapshot *sn)
{
	struct policy_user pu;

	policy_user_of(u, &pu);
	return policy_assign(&(struct policy_assign_request){
	    .ar_pool = &pv->pv_pool,
	    .ar_user = &pu,
	    .ar_client = pc,
	    .ar_desktops = sn->sn_pd,
	    .ar_ndesktops = json_array_size(sn->sn_desktops),
	    .ar_sessions = sn->sn_ps,
	    .ar_nsessions = json_array_size(sn->sn_sessions),
	    .ar_max_sessions = b->b_cfg->bc_max_sessions,
	});
}

static json_t *desktop_record(struct snapshot *sn, const char *id)
{
	size_t i;
	json_t *d;

	json_array_foreach (sn->sn_desktops, i, d)
		if (id && !strcmp(jstr(d, "id"), id))
			return d;
	return NULL;
}

json_t *broker_desktops(struct broker *b, const struct broker_user *u, const char *addr)
{
	json_t *pools = store_pools_list(b->b_store), *out = json_array(), *p;
	struct policy_client pc;
	struct policy_addr pa;
	struct policy_user pu;
	size_t i;

	if (!pools || !out) {
		json_decref(pools);
		json_decref(out);
		return NULL;
	}
	client_of(addr, (int64_t)time(NULL), &pa, &pc);
	policy_user_of(u, &pu);
	json_array_foreach (pools, i, p) {
		struct pool_view pv;
		struct snapshot sn;
		struct policy_assignment a;
		const char *state = "ready", *reason = NULL;
		json_t *session = json_null(), *item;

		if (pool_view_init(&pv, p) == -ENOMEM)
			break;
		if (!policy_check_access(&pv.pv_pool, &pu, &pc).pa_allowed) {
			pool_view_free(&pv);
			continue;
		}
		if (snapshot_load(b, jstr(p, "id"), u->bu_name, &sn) < 0) {
			snapshot_free(&sn);
			pool_view_free(&pv);
			continue;
		}
		a = assign(b, &pv, u, &pc, &sn);
		if (a.as_action == POLICY_ASSIGN_RECONNECT) {
			json_t *d = desktop_record(&sn, a.as_session->sess_desktop);
			bool ready = d && !strcmp(jstr(d, "state"), "ready");

			state = !ready ? "starting"
				: a.as_session->sess_state == POLICY_SESSION_CONNECTED
				    ? "running"
				    : "disconnected";
			session = json_pack("{s:s, s:s, s:s}", "id", a.as_session->sess_id, "state",
					    pool_session_state_name(a.as_session->sess_state),
					    "desktop", a.as_session->sess_desktop);
		} else if (a.as_action == POLICY_ASSIGN_WAIT) {
			state = "starting";
			reason = policy_reason_name(a.as_reason);
		} else if (a.as_action == POLICY_ASSIGN_DENY) {
			state = "unavailable";
			reason = policy_reason_name(a.as_reason);
		}
		item =
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", jstr(p, "id"), "name",
			      jstr(p, "name"), "kind", jstr(p, "kind"), "source", jstr(p, "source"),
			      "state", state, "session", session ? session : json_null());
		if (item && reason)
			json_object_set_new(item, "reason", json_string(reason));
		json_array_append_new(out, item);
		snapshot_free(&sn);
		pool_view_free(&pv);
	}
	json_decref(pools);
	return json_pack("{s:o}", "pools", out);
}

/* ---- connect ---- */

static json_t *error_body(const char *code, const char *msg)
{
	return json_pack("{s:s, s:s}", "error", msg, "code", code);
}

static const char *deny_message(enum policy_reason r)
{
	switch (r) {
	case POLICY_NOT_ENTITLED: return "you are not entitled to this pool";
	case POLICY_POOL_DISABLED: return "this pool is disabled";
	case POLICY_ADDRESS_DENIED: return "this pool is not available from your address";
	case POLICY_OUTSIDE_HOURS: return "this pool is not available at this time";
	case POLICY_SESSION_LIMIT: return "you have as many sessions as allowed";
	case POLICY_DESKTOP_FAILED: return "your desktop has failed; contact an administrator";
	default: return "no desktop is available";
	}
}

static unsigned deny_status(enum policy_reason r)
{
	switch (r) {
	case POLICY_SESSION_LIMIT: return 409;
	case POLICY_DESKTOP_FAILED:
	case POLICY_NO_DESKTOP:
	case POLICY_NO_HOST:
	case POLICY_NO_CAPACITY: return 503;
	default: return 403;
	}
}

/* Inserts a ticket for session; the clear ticket goes to out (33 bytes). */
static int issue_ticket(struct broker *b, const char *session, const char *user,
			const char *desktop, int64_t now, char *ticket, int64_t *expires)
{
	char hash[65];

	*expires = now + b->b_cfg->bc_ticket_lifetime;
	if (random_hex(ticket, BROKER_TICKET_LEN / 2) < 0 || ticket_hash(ticket, hash) < 0)
		return -EIO;
	return store_ticket_add(b->b_store, hash, session, user, desktop, now, *expires);
}

/* A new session on desktop for u; its id goes to id (room for 20). */
static int new_session(struct broker *b, const struct broker_user *u, const char *pool,
		       const char *desktop, const char *addr, int64_t now, char *id)
{
	strcpy(id, "s-");
	if (random_hex(id + 2, 8) < 0)
		return -EIO;
	return store_session_add(b->b_store, id, u->bu_name, pool, desktop, "connected", addr, now);
}

/* The host a new desktop of pool goes to, or NULL with *why. Returns a new string. */
static char *place(struct broker *b, struct pool_view *pv, enum policy_reason *why)
{
	json_t *hosts = store_hosts_list(b->b_store), *h;
	struct policy_host *ph;
	struct policy_placement pl;
	char *id = NULL;
	size_t i;

	*why = POLICY_NO_HOST;
	if (!hosts)
		return NULL;
	ph = calloc(json_array_size(hosts) + 1, sizeof(*ph));
	if (ph) {
		json_array_foreach (hosts, i, h)
			ph[i] = host_view(h);
		pl = policy_place(&pv->pv_pool, ph, json_array_size(hosts));
		*why = pl.pl_reason;
		if (pl.pl_host)
			id = strdup(pl.pl_host->host_id);
	}
	free(ph);
	json_decref(hosts);
	return id;
}

struct policy_host host_view(const json_t *h)
{
	return (struct policy_host){
	    .host_id = jstr(h, "id"),
	    .host_up = json_is_true(json_object_get(h, "up")),
	    .host_enabled = json_is_true(json_object_get(h, "enabled")),
	    .host_mem_free_mb = jint(h, "mem_free_mib"),
	    .host_vcpus_free = (int)jint(h, "vcpus_free"),
	    .host_desktops = (int)jint(h, "desktops"),
	    .host_max_desktops = (int)jint(h, "max_desktops"),
	};
}

/* What connect does after the transaction: register the ticket with the host. */
struct connect_plan {
	char cp_session[24], cp_desktop[48], cp_ticket[BROKER_TICKET_LEN + 1];
	int64_t cp_expires;
	bool cp_ticket_issued;
	char *cp_host_url; /* NULL: a manual desktop */
};

int broker_connect(struct broker *b, const struct broker_user *u, const char *pool_id,
		   const char *addr, const char *gateway_host, json_t **out)
{
	int64_t now = (int64_t)time(NULL);
	struct connect_plan plan;
	struct policy_assignment a;
	struct policy_client pc;
	struct policy_addr pa;
	struct pool_view pv;
	struct snapshot sn;
	json_t *pool, *d;
	char err[512], url[1024];
	unsigned status = 200;
	int r;

	memset(&plan, 0, sizeof(plan));
	memset(&sn, 0, sizeof(sn));
	*out = NULL;
	client_of(addr, now, &pa, &pc);
	if (store_begin(b->b_store) < 0) {
		*out = error_body("unavailable", "the broker's store is unavailable");
		return 503;
	}
	pool = store_pool_get(b->b_store, pool_id);
	if (!pool || json_is_true(json_object_get(pool, "deleting"))) {
		store_rollback(b->b_store);
		json_decref(pool);
		*out = error_body("not_found", "no such pool");
		return 404;
	}
	r = pool_view_init(&pv, pool);
	json_decref(pool);
	if (r == -ENOMEM || snapshot_load(b, pool_id, u->bu_name, &sn) < 0) {
		status = 503;
		*out = error_body("unavailable", "the broker's store is unavailable");
		goto out_rollback;
	}
	a = assign(b, &pv, u, &pc, &sn);
	switch (a.as_action) {
	case POLICY_ASSIGN_DENY:
		status = deny_status(a.as_reason);
		*out = error_body(policy_reason_name(a.as_reason), deny_message(a.as_reason));
		broker_audit(b, u->bu_name, "assign", pool_id, "denied", addr, "%s",
			     policy_reason_name(a.as_reason));
		if (store_commit(b->b_store) < 0)
			status = 503;
		goto out;
	case POLICY_ASSIGN_WAIT:
		status = 503;
		*out = json_pack("{s:s, s:s, s:i}", "error", "desktops are being prepared; retry",
				 "code", policy_reason_name(a.as_reason), "retry_after",
				 RETRY_AFTER_S);
		goto out_rollback;
	case POLICY_ASSIGN_RECONNECT:
		snprintf(plan.cp_session, sizeof(plan.cp_session), "%s", a.as_session->sess_id);
		snprintf(plan.cp_desktop, sizeof(plan.cp_desktop), "%s",
			 a.as_session->sess_desktop);
		if (a.as_session->sess_state != POLICY_SESSION_CONNECTED)
			r = store_session_set_state(b->b_store, plan.cp_session, "connected", now);
		else
			r = 0;
		break;
	case POLICY_ASSIGN_CONNECT:
	case POLICY_ASSIGN_START:
		snprintf(plan.cp_desktop, sizeof(plan.cp_desktop), "%s", a.as_desktop->desk_id);
		r = new_session(b, u, pool_id, plan.cp_desktop, addr, now, plan.cp_session);
		if (r == 0 && a.as_claim)
			r = store_desktop_set_owner(b->b_store, plan.cp_desktop, u->bu_name);
		if (r == 0 && a.as_action == POLICY_ASSIGN_START)
			r = store_desktop_set_state(b->b_store, plan.cp_desktop, "stopped",
						    "provisioning", now) < 0
				? -EIO
				: 0;
		break;
	case POLICY_ASSIGN_CREATE: {
		enum policy_reason why;
		char *host = place(b, &pv, &why);

		if (!host) {
			status = 503;
			*out = error_body(policy_reason_name(why), "no host can run a new desktop");
			broker_audit(b, u->bu_name, "assign", pool_id, "failure", addr, "%s",
				     policy_reason_name(why));
			if (store_commit(b->b_store) < 0)
				status = 503;
			goto out;
		}
		snprintf(plan.cp_desktop, sizeof(plan.cp_desktop), "%s-", pool_id);
		r = random_hex(plan.cp_desktop + strlen(plan.cp_desktop), 4);
		if (r == 0)
			r = store_desktop_add(b->b_store, plan.cp_desktop, pool_id, host, NULL,
					      NULL, a.as_claim ? u->bu_name : NULL, "provisioning",
					      now);
		free(host);
		if (r == 0)
			r = new_session(b, u, pool_id, plan.cp_desktop, addr, now, plan.cp_session);
		break;
	}
	}
	if (r < 0) {
		/* -EEXIST: the database refused a second session on a desktop */
		log_warnx("connect user=%s pool=%s: cannot record the assignment: %s", u->bu_name,
			  pool_id, strerror(-r));
		status = 503;
		*out = error_body("unavailable", "cannot record the assignment; retry");
		goto out_rollback;
	}
	d = store_desktop_get(b->b_store, plan.cp_desktop);
	if (a.as_action != POLICY_ASSIGN_RECONNECT)
		broker_audit(b, u->bu_name, "assign", plan.cp_desktop, "success", addr,
			     "pool=%s session=%s %s", pool_id, plan.cp_session,
			     policy_reason_name(a.as_reason));
	if (d && !strcmp(jstr(d, "state"), "ready")) {
		r = issue_ticket(b, plan.cp_session, u->bu_name, plan.cp_desktop, now,
				 plan.cp_ticket, &plan.cp_expires);
		plan.cp_ticket_issued = r == 0;
		if (jstr(d, "host_id")) {
			json_t *h = store_host_get(b->b_store, jstr(d, "host_id"));

			plan.cp_host_url = h ? strdup(jstr(h, "url")) : NULL;
			json_decref(h);
		}
		broker_audit(b, u->bu_name, "connect", plan.cp_desktop,
			     r == 0 ? "success" : "failure", addr,
			     "session=%s pool=%s ticket issued", plan.cp_session, pool_id);
	} else {
		status = 202;
	}
	json_decref(d);
	if (r < 0 || store_commit(b->b_store) < 0) {
		if (r < 0)
			store_rollback(b->b_store);
		status = 503;
		*out = error_body("unavailable", "cannot record the assignment; retry");
		goto out_free;
	}
	broker_kick(b);
	if (status == 202) {
		*out = json_pack("{s:s, s:i, s:s, s:s}", "state", "starting", "retry_after",
				 RETRY_AFTER_S, "session", plan.cp_session, "desktop",
				 plan.cp_desktop);
		goto out_free;
	}
	if (plan.cp_host_url) {
		json_t *body = json_pack("{s:s, s:I}", "ticket", plan.cp_ticket, "expires",
					 (json_int_t)plan.cp_expires),
		       *reply = NULL;
		char path[128];

		snprintf(path, sizeof(path), "/api/v1/desktops/%s/ticket", plan.cp_desktop);
		r = b->b_hosts ? hostclient_call(b->b_hosts, plan.cp_host_url, "POST", path, body,
						 &reply, err, sizeof(err))
			       : -ENOTCONN;
		json_decref(body);
		json_decref(reply);
		if (r != 200) {
			log_warnx("connect desktop=%s: the host did not take the ticket: %s",
				  plan.cp_desktop,
				  r == -ENOTCONN ? "no [hosts] certificates" : err);
			status = 503;
			*out = json_pack("{s:s, s:s, s:i}", "error",
					 "the desktop's host is not answering; retry", "code",
					 "host_unavailable", "retry_after", RETRY_AFTER_S);
			goto out_free;
		}
	}
	snprintf(url, sizeof(url), "wss://%s/gateway?ticket=%s", gateway_host, plan.cp_ticket);
	*out = json_pack("{s:s, s:I, s:s, s:s, s:s}", "ticket", plan.cp_ticket, "expires",
			 (json_int_t)plan.cp_expires, "gateway_url", url, "session",
			 plan.cp_session, "desktop", plan.cp_desktop);
	log_info("connect user=%s pool=%s desktop=%s session=%s: ticket issued", u->bu_name,
		 pool_id, plan.cp_desktop, plan.cp_session);
	goto out_free;

out_rollback:
	store_rollback(b->b_store);
out:
out_free:
	explicit_bzero(plan.cp_ticket, sizeof(plan.cp_ticket));
	explicit_bzero(url, sizeof(url));
	free(plan.cp_host_url);
	snapshot_free(&sn);
	pool_view_free(&pv);
	if (!*out)
		*out = error_body("internal", "internal error");
	return (int)status;
}

/* ---- session events ---- */

int apply_transition(struct broker *b, const json_t *session, const struct pool_view *pv,
		     const struct policy_transition *t, int64_t now)
{
	const char *id = jstr(session, "id"), *desktop = jstr(session, "desktop_id");
	int r = 0;

	if (t->pt_changed)
		r = store_session_set_state(b->b_store, id, pool_session_state_name(t->pt_state),
					    now);
	if (r == 0 && t->pt_state == POLICY_SESSION_LOGGED_OFF)
		r = store_session_set_attached(b->b_store, id, false);
	if (r < 0 || pv->pv_pool.pool_provisioning == POLICY_MANUAL)
		return r;
	if (t->pt_desktop == POLICY_DESKTOP_REFRESH)
		r = store_desktop_set_state(b->b_store, desktop, NULL, "refreshing", now);
	else if (t->pt_desktop == POLICY_DESKTOP_DESTROY)
		r = store_desktop_set_state(b->b_store, desktop, NULL, "deleting", now);
	return r < 0 ? r : 0;
}

int broker_session_event(struct broker *b, const struct broker_user *u, const char *id, int event,
			 const char *addr)
{
	int64_t now = (int64_t)time(NULL);
	const char *what = event == POLICY_EVENT_LOGOFF ? "logoff" : "disconnect";
	struct policy_transition t;
	struct policy_session ps;
	struct pool_view pv;
	json_t *s, *pool = NULL;
	int r;

	if (store_begin(b->b_store) < 0)
		return -EIO;
	s = store_session_get(b->b_store, id);
	if (!s || (!u->bu_admin && strcasecmp(jstr(s, "username"), u->bu_name))) {
		store_rollback(b->b_store);
		json_decref(s);
		return -ENOENT;
	}
	pool = store_pool_get(b->b_store, jstr(s, "pool_id"));
	if (!pool || pool_view_init(&pv, pool) == -ENOMEM) {
		if (pool)
			pool_view_free(&pv);
		store_rollback(b->b_store);
		json_decref(s);
		json_decref(pool);
		return -EIO;
	}
	ps = (struct policy_session){
	    .sess_id = jstr(s, "id"),
	    .sess_user = jstr(s, "username"),
	    .sess_pool = jstr(s, "pool_id"),
	    .sess_desktop = jstr(s, "desktop_id"),
	    .sess_state = pool_session_state(jstr(s, "state")),
	    .sess_since = jint(s, "since"),
	};
	t = policy_session_event(&pv.pv_pool, &ps, (enum policy_session_event)event, now);
	if (t.pt_reason == POLICY_INVALID_TRANSITION) {
		r = -EINVAL;
		store_rollback(b->b_store);
		goto out;
	}
	r = apply_transition(b, s, &pv, &t, now);
	broker_audit(b, u->bu_name, what, id, r == 0 ? "success" : "failure", addr,
		     "user=%s desktop=%s -> %s", jstr(s, "username"), jstr(s, "desktop_id"),
		     pool_session_state_name(t.pt_state));
	if (r < 0) {
		store_rollback(b->b_store);
	} else if (store_commit(b->b_store) < 0) {
		r = -EIO;
	} else {
		log_info("session=%s user=%s: %s by %s", id, jstr(s, "username"), what, u->bu_name);
		broker_kick(b);
	}
out:
	pool_view_free(&pv);
	json_decref(pool);
	json_decref(s);
	return r;
}

int broker_session_closed(struct broker *b, const char *session_id, const char *addr)
{
	struct broker_user gateway = {.bu_name = "gateway", .bu_admin = true};

	return broker_session_event(b, &gateway, session_id, POLICY_EVENT_DISCONNECT, addr);
}

/* ---- tickets ---- */

json_t *broker_ticket_redeem(struct broker *b, const char *ticket, const char *addr)
{
	int64_t now = (int64_t)time(NULL);
	json_t *t = NULL, *s = NULL, *d = NULL, *h = NULL, *pool = NULL, *out = NULL;
	struct policy_transition tr;
	struct policy_session ps;
	struct pool_view pv;
	char hash[65];
	bool have_view = false;

	if (!ticket_well_formed(ticket) || ticket_hash(ticket, hash) < 0) {
		errno = EACCES;
		return NULL;
	}
	if (store_begin(b->b_store) < 0) {
		errno = EIO;
		return NULL;
	}
	t = store_ticket_redeem(b->b_store, hash, now);
	if (!t)
		goto out_refused;
	s = store_session_get(b->b_store, jstr(t, "session_id"));
	d = store_desktop_get(b->b_store, jstr(t, "desktop_id"));
	pool = s ? store_pool_get(b->b_store, jstr(s, "pool_id")) : NULL;
	if (!s || !d || !pool || !strcmp(jstr(s, "state"), "logged_off") ||
	    strcmp(jstr(d, "state"), "ready"))
		goto out_refused;
	if (pool_view_init(&pv, pool) == -ENOMEM)
		goto out_refused;
	have_view = true;
	ps = (struct policy_session){
	    .sess_id = jstr(s, "id"),
	    .sess_state = pool_session_state(jstr(s, "state")),
	    .sess_since = jint(s, "since"),
	};
	tr = policy_session_event(&pv.pv_pool, &ps, POLICY_EVENT_CONNECT, now);
	if (apply_transition(b, s, &pv, &tr, now) < 0 ||
	    store_session_set_attached(b->b_store, jstr(s, "id"), true) < 0)
		goto out_refused;
	if (jstr(d, "host_id"))
		h = store_host_get(b->b_store, jstr(d, "host_id"));
	out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "session", jstr(s, "id"), "username",
			jstr(s, "username"), "pool", jstr(s, "pool_id"), "desktop", jstr(d, "id"),
			"kind", h ? "host" : "manual");
	if (out && h) {
		json_object_set(out, "host", json_object_get(h, "id"));
		json_object_set(out, "relay", json_object_get(h, "relay"));
	} else if (out) {
		json_object_set(out, "address", json_object_get(d, "address"));
		json_object_set(out, "vnc_password", json_object_get(d, "vnc_password"));
	}
	broker_audit(b, jstr(s, "username"), "ticket", jstr(d, "id"), "success", addr,
		     "session=%s redeemed%s", jstr(s, "id"),
		     tr.pt_reason == POLICY_TAKEOVER && json_is_true(json_object_get(s, "attached"))
			 ? " (takeover)"
			 : "");
	if (!out || store_commit(b->b_store) < 0) {
		if (!out)
			store_rollback(b->b_store);
		json_decref(out);
		out = NULL;
		errno = EIO;
	}
	goto out;

out_refused:
	broker_audit(b, t ? jstr(t, "username") : NULL, "ticket", t ? jstr(t, "desktop_id") : NULL,
		     "failure", addr,
		     t ? "session over or desktop not ready" : "unknown, used or expired ticket");
	/* The redemption itself stays: a ticket is spent even when refused afterwards. */
	if (store_commit(b->b_store) < 0)
		log_warnx("ticket: cannot record a refused redemption");
	errno = EACCES;
out:
	if (have_view)
		pool_view_free(&pv);
	json_decref(t);
	json_decref(s);
	json_decref(d);
	json_decref(h);
	json_decref(pool);
	return out;
}

/* ---- heartbeats ---- */

static const struct json_field heartbeat_fields[] = {
    {"host_id", JSON_FIELD_STRING, true},
    {"time", JSON_FIELD_INT, false},
    {"capacity", JSON_FIELD_ANY, false},
    {"desktops", JSON_FIELD_ANY, false},
    JSON_FIELDS_END,
};

int broker_heartbeat(struct broker *b, const json_t *body, char *err, size_t errlen)
{
	const char *host = jstr(body, "host_id");
	json_t *cap = json_object_get(body, "capacity"),
	       *listed = json_object_get(body, "desktops");
	json_t *ours, *d, *item;
	int64_t now = (int64_t)time(NULL);
	int cpus, running, r;
	bool changed = false;
	size_t i, j;

	if (json_check_fields(body, heartbeat_fields, err, errlen) < 0)
		return -EINVAL;
	if ((cap && !json_is_object(cap)) || (listed && !json_is_array(listed))) {
		snprintf(err, errlen, "capacity must be an object and desktops an array");
		return -EINVAL;
	}
	cpus = (int)jint(cap, "cpus");
	running = (int)jint(cap, "desktops_running");
	r = store_host_heartbeat(b->b_store, host, now, jint(cap, "memory_available_mib"),
				 cpus * HOST_VCPU_OVERCOMMIT - running,
				 (int)jint(cap, "desktops_defined"), (int)jint(cap, "max_desktops"),
				 cap);
	if (r < 0) {
		snprintf(err, errlen, "host '%.64s' is not registered", host);
		return r;
	}
	if (r == 1) {
		log_info("host=%s up", host);
		broker_audit(b, NULL, "host_up", host, "success", NULL, NULL);
		changed = true;
	}
	ours = store_desktops_list(b->b_store, NULL, host);
	json_array_foreach (ours, i, d) {
		const char *state = "missing";

		json_array_foreach (listed, j, item)
			if (jstr(item, "id") && !strcmp(jstr(item, "id"), jstr(d, "id")) &&
			    jstr(item, "state"))
				state = jstr(item, "state");
		if (!json_is_true(json_object_get(d, "on_host")) && !strcmp(state, "missing"))
			continue;
		if (!jstr(d, "host_state") || strcmp(jstr(d, "host_state"), state)) {
			store_desktop_set_host_state(b->b_store, jstr(d, "id"), state);
			changed = true;
		}
	}
	json_decref(ours);
	if (changed)
		broker_kick(b);
	return 0;
}
