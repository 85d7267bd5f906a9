/* Administration, the operations behind the admin API: hosts registered and removed,
 * pools created, updated and deleted with their entitlements and manual desktops,
 * local users added and removed, hosts drained, resumed and their desktops stopped,
 * and the lists admins read (pools with their desktop counts and state, every user the
 * broker knows of). Each write is checked,
 * audited under the admin's name and answered as a domain outcome; api.c checks that
 * the caller is an admin and turns outcomes into HTTP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/localdir.h"
#include "broker/internal.h"
#include "lib/hostport.h"
#include "lib/json.h"
#include "lib/log.h"

static enum broker_outcome unavailable(struct broker_result *res)
{
	return broker_result_set(res, BROKER_UNAVAILABLE, NULL,
				 "the broker's store is unavailable");
}

/* The outcome of a store action's error about a `what` (host, pool, user...). */
static enum broker_outcome store_outcome(struct broker_result *res, int r, const char *what)
{
	if (r == -ENOENT)
		return broker_result_set(res, BROKER_NOT_FOUND, NULL, "no such %s", what);
	if (r == -EEXIST)
		return broker_result_set(res, BROKER_EXISTS, NULL, "this %s exists already", what);
	if (r == -EBUSY)
		return broker_result_set(res, BROKER_BUSY, NULL, "this %s is in use", what);
	return unavailable(res);
}

static enum broker_outcome done(struct broker_result *res)
{
	return broker_result_set(res, BROKER_OK, NULL, "done");
}

/* ---- what a valid request holds ---- */

static bool printable(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ' ')
			return false;
	return true;
}

static bool host_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n >= 1 && n <= 64 &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static bool entitlement_ok(const char *kind, const char *name)
{
	enum entitlement_kind k;

	return entitlement_kind_parse(kind, &k) == 0 && name &&
	       identity_valid_text(name, strlen(name), 256);
}

/* host:port with a numeric port. */
static bool address_ok(const char *a)
{
	char host[256];
	unsigned port;

	return a && printable(a, 256) && hostport_split(a, host, sizeof(host), &port) == 0 &&
	       port > 0;
}

static bool vnc_password_ok(const char *p)
{
	return !p || printable(p, 64);
}

/* ---- hosts ---- */

/* A host for the API: its record, state, whether it drains, alert and desktops. Returns
 * a new object or NULL. */
static json_t *host_out(struct broker *b, const struct host_rec *h)
{
	json_t *item = host_rec_json(h), *ids = json_array(), *alert;
	struct desktop_list ds;

	if (!item || !ids) {
		json_decref(item);
		json_decref(ids);
		return NULL;
	}
	json_object_set_new(item, "state", json_string(host_state_name(h->hr_state)));
	json_object_set_new(item, "draining", json_boolean(!h->hr_enabled));
	alert = hosts_identity_alert(b, h->hr_id);
	if (alert)
		json_object_set_new(item, "identity_error", alert);
	store_desktops_list(b->b_store, NULL, h->hr_id, &ds);
	for (size_t j = 0; j < ds.dl_n; j++)
		json_array_append_new(ids, json_string(ds.dl_recs[j].dr_id));
	json_object_set_new(item, "desktop_ids", ids);
	desktop_list_free(&ds);
	return item;
}

json_t *broker_admin_hosts(struct broker *b)
{
	struct host_list hosts;
	json_t *out = NULL;

	if (store_hosts_list(b->b_store, &hosts) == 0)
		out = json_array();
	for (size_t i = 0; out && i < hosts.hl_n; i++) {
		if (json_array_append_new(out, host_out(b, &hosts.hl_recs[i])) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	host_list_free(&hosts);
	return out;
}

enum broker_outcome broker_admin_host_add(struct broker *b, const struct broker_user *u,
					  const char *addr, const json_t *req, json_t **out,
					  struct broker_result *res)
{
	const char *id = jstr(req, "id"), *url = jstr(req, "url"), *relay = jstr(req, "relay");
	struct host_rec h;
	int r;

	*out = NULL;
	if (!host_id_valid(id) || !printable(url, 512) || strncmp(url, "https://", 8) ||
	    (relay && relay[0] && !printable(relay, 256)))
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL,
					 "id: 1 to 64 of A-Z a-z 0-9 . _ -; url: https://...; "
					 "relay: host:port");
	r = store_host_add(b->b_store, id, url, relay, (int64_t)time(NULL));
	broker_audit(b, u->bu_name, "host_add", id, r == 0 ? "success" : "failure", addr, "url=%s",
		     url);
	if (r < 0)
		return store_outcome(res, r, "host");
	if (store_host_get(b->b_store, id, &h) == 0)
		*out = host_rec_json(&h);
	host_rec_release(&h);
	return done(res);
}

enum broker_outcome broker_admin_host_remove(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *id,
					     struct broker_result *res)
{
	struct desktop_list ds;
	int r = store_desktops_list(b->b_store, NULL, id, &ds);

	if (r == 0 && ds.dl_n) {
		broker_result_set(res, BROKER_BUSY, NULL, "the host still has %zu desktop(s)",
				  ds.dl_n);
	} else {
		r = r == 0 ? store_host_delete(b->b_store, id) : -EIO;
		broker_audit(b, u->bu_name, "host_remove", id, r == 0 ? "success" : "failure", addr,
			     NULL);
		if (r < 0)
			store_outcome(res, r, "host");
		else
			done(res);
	}
	desktop_list_free(&ds);
	return res->br_outcome;
}

enum broker_outcome broker_admin_host_drain(struct broker *b, const struct broker_user *u,
					    const char *addr, const char *id, bool drain,
					    json_t **out, struct broker_result *res)
{
	int r = store_host_set_enabled(b->b_store, id, !drain);
	struct host_rec h;

	*out = NULL;
	broker_audit(b, u->bu_name, drain ? "host_drain" : "host_resume", id,
		     r == 0 ? "success" : "failure", addr, NULL);
	if (r < 0)
		return store_outcome(res, r, "host");
	log_info("host=%s %s by %s", id, drain ? "draining (no new desktops)" : "resumed",
		 u->bu_name);
	broker_kick(b); /* pools may be sized on it again, or elsewhere */
	if (store_host_get(b->b_store, id, &h) == 0)
		*out = host_out(b, &h);
	host_rec_release(&h);
	return done(res);
}

/* Desktop d, stopped by an administrator: its sessions end; an owner's desktop is kept,
 * stopped on its host (their next connect starts it), others go (pool sizing replaces
 * them where placement says). Inside a transaction. */
static void desktop_stop(struct broker *b, const struct desktop_rec *d, const char *admin,
			 int64_t now)
{
	char detail[200];

	snprintf(detail, sizeof(detail), "desktop=%s stopped by %s", d->dr_id, admin);
	desktop_out_of_service(b, d, NULL, d->dr_owner ? DESKTOP_STOPPED : DESKTOP_DELETING, now,
			       detail);
}

enum broker_outcome broker_admin_host_stop_desktops(struct broker *b, const struct broker_user *u,
						    const char *addr, const char *id, json_t **out,
						    struct broker_result *res)
{
	int64_t now = (int64_t)time(NULL);
	json_t *stopped = json_array();
	struct desktop_list ds = {0};
	struct host_rec h;
	int r;

	*out = NULL;
	if (!stopped || store_begin(b->b_store) < 0) {
		json_decref(stopped);
		return unavailable(res);
	}
	r = store_host_get(b->b_store, id, &h);
	host_rec_release(&h);
	if (r == 0)
		r = store_desktops_list(b->b_store, NULL, id, &ds);
	for (size_t i = 0; r == 0 && i < ds.dl_n; i++) {
		const struct desktop_rec *d = &ds.dl_recs[i];

		if (d->dr_state != DESKTOP_READY && d->dr_state != DESKTOP_PROVISIONING)
			continue;
		desktop_stop(b, d, u->bu_name, now);
		json_array_append_new(stopped, json_string(d->dr_id));
	}
	desktop_list_free(&ds);
	broker_audit(b, u->bu_name, "host_stop_desktops", id, r == 0 ? "success" : "failure", addr,
		     "%zu desktop(s)", json_array_size(stopped));
	if (r < 0 || store_commit(b->b_store) < 0) {
		if (r < 0)
			store_commit(b->b_store); /* the audit row stays */
		json_decref(stopped);
		return store_outcome(res, r < 0 ? r : -EIO, "host");
	}
	log_info("host=%s: %zu desktop(s) to stop, by %s", id, json_array_size(stopped),
		 u->bu_name);
	broker_kick(b); /* provision.c stops them on the host */
	*out = json_pack("{s:s, s:o}", "host", id, "desktops", stopped);
	return done(res);
}

/* ---- pools ---- */

/* Whether the pool can work now: {"state": ok, disabled, unavailable (no host can run
 * its desktops: "reason" no_host or engine_unavailable, "detail" each host's reason) or
 * degraded (degraded_after desktops failed in a row: "detail" the last cause)}. */
static json_t *pool_health(struct broker *b, const struct pool_rec *p)
{
	struct pool_view pv;
	enum policy_reason why = POLICY_OK;
	char detail[1024] = "";

	if (!p->pr_enabled)
		return json_pack("{s:s}", "state", "disabled");
	if (p->pr_source != POOL_MANUAL && pool_view_init(&pv, p) == 0) {
		why = hosts_can_run(b, &pv, detail, sizeof(detail));
		pool_view_free(&pv);
	}
	if (why != POLICY_OK)
		return json_pack(
		    "{s:s, s:s, s:s}", "state", "unavailable", "reason", policy_reason_name(why),
		    "detail",
		    detail[0] ? detail : "no host is up, not draining and allowed for this pool");
	if (p->pr_failures >= b->b_cfg->bc_degraded_after)
		return json_pack("{s:s, s:s, s:s}", "state", "degraded", "reason",
				 "desktops_failing", "detail",
				 p->pr_failure ? p->pr_failure : "desktops fail to start");
	return json_pack("{s:s}", "state", "ok");
}

/* Sets the desktop counts of a pool (desktops ds) in the object pool: "desktops_ready"
 * (free and ready), "desktops_in_use", "desktops_preparing", "desktops_failed" (in
 * error, or lost with their host). */
static void pool_counts(const struct desktop_list *ds, json_t *pool)
{
	int ready = 0, in_use = 0, preparing = 0, failed = 0;

	for (size_t i = 0; i < ds->dl_n; i++) {
		const struct desktop_rec *d = &ds->dl_recs[i];

		if (d->dr_in_use)
			in_use++;
		else if (d->dr_state == DESKTOP_READY)
			ready++;
		else if (d->dr_state == DESKTOP_PROVISIONING || d->dr_state == DESKTOP_REFRESHING)
			preparing++;
		if (d->dr_state == DESKTOP_ERROR || d->dr_state == DESKTOP_LOST)
			failed++;
	}
	json_object_set_new(pool, "desktops_ready", json_integer(ready));
	json_object_set_new(pool, "desktops_in_use", json_integer(in_use));
	json_object_set_new(pool, "desktops_preparing", json_integer(preparing));
	json_object_set_new(pool, "desktops_failed", json_integer(failed));
}

/* A pool for the API: its desktops listed, no VNC passwords, its health. Returns a new
 * object or NULL. */
static json_t *pool_out(struct broker *b, const struct pool_rec *p)
{
	json_t *pool = pool_rec_json(p), *out = json_array();
	struct desktop_list ds;

	if (!pool || !out) {
		json_decref(pool);
		json_decref(out);
		return NULL;
	}
	store_desktops_list(b->b_store, p->pr_id, NULL, &ds);
	for (size_t i = 0; i < ds.dl_n; i++) {
		json_t *d = desktop_rec_json(&ds.dl_recs[i]);

		json_object_del(d, "vnc_password");
		json_array_append_new(out, d);
	}
	pool_counts(&ds, pool);
	desktop_list_free(&ds);
	json_object_set_new(pool, "desktops", out);
	json_object_set_new(pool, "health", pool_health(b, p));
	json_object_del(pool, "deleting");
	return pool;
}

json_t *broker_admin_pools(struct broker *b)
{
	struct pool_list pools;
	json_t *out = NULL;

	if (store_pools_list(b->b_store, &pools) == 0)
		out = json_array();
	for (size_t i = 0; out && i < pools.pl_n; i++) {
		if (json_array_append_new(out, pool_out(b, &pools.pl_recs[i])) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	pool_list_free(&pools);
	return out;
}

enum broker_outcome broker_admin_pool_get(struct broker *b, const char *id, json_t **out,
					  struct broker_result *res)
{
	struct pool_rec p;

	*out = NULL;
	if (store_pool_get(b->b_store, id, &p) < 0 || p.pr_deleting) {
		pool_rec_release(&p);
		return broker_result_set(res, BROKER_NOT_FOUND, NULL, "no such pool");
	}
	*out = pool_out(b, &p);
	pool_rec_release(&p);
	return done(res);
}

/* Adds the manual desktops of a request (array of {id?, address, password?}). Returns
 * 0, -EINVAL, -EEXIST or -EIO with err set. */
static int add_manual_desktops(struct broker *b, const char *pool, const json_t *list, char *err,
			       size_t errlen)
{
	static const struct json_field fields[] = {{"id", JSON_FIELD_STRING, false},
						   {"address", JSON_FIELD_STRING, true},
						   {"password", JSON_FIELD_STRING, false},
						   JSON_FIELDS_END};
	int64_t now = (int64_t)time(NULL);
	json_t *d;
	size_t i;
	int r;

	if (!json_is_array(list) || json_array_size(list) > 1000) {
		snprintf(err, errlen, "desktops must be an array (at most 1000)");
		return -EINVAL;
	}
	json_array_foreach (list, i, d) {
		char id[48];

		if (!json_is_object(d) || json_check_fields(d, fields, err, errlen) < 0)
			return -EINVAL;
		if (!address_ok(jstr(d, "address")) || !vnc_password_ok(jstr(d, "password"))) {
			snprintf(err, errlen,
				 "desktop address must be host:port and its password 1 to 64 "
				 "printable characters");
			return -EINVAL;
		}
		if (jstr(d, "id")) {
			if (!pool_id_valid(jstr(d, "id"), 40)) {
				snprintf(err, errlen, "desktop id: 1 to 40 of a-z 0-9 -");
				return -EINVAL;
			}
			snprintf(id, sizeof(id), "%s", jstr(d, "id"));
		} else {
			snprintf(id, sizeof(id), "%s-", pool);
			if (random_hex(id + strlen(id), 4) < 0)
				return -EIO;
		}
		r = store_desktop_add(b->b_store, id, pool, NULL, jstr(d, "address"),
				      jstr(d, "password"), NULL, DESKTOP_READY, now);
		if (r < 0) {
			snprintf(err, errlen,
				 r == -EEXIST ? "desktop '%s' exists already"
					      : "cannot store desktop '%s'",
				 id);
			return r;
		}
	}
	return 0;
}

static int add_entitlements(struct broker *b, const char *pool, const json_t *list, char *err,
			    size_t errlen)
{
	json_t *e;
	size_t i;
	int r;

	if (!json_is_array(list)) {
		snprintf(err, errlen, "entitlements must be an array of {kind, name}");
		return -EINVAL;
	}
	json_array_foreach (list, i, e) {
		if (!entitlement_ok(jstr(e, "kind"), jstr(e, "name")) || json_object_size(e) != 2) {
			snprintf(err, errlen,
				 "entitlements: {\"kind\": \"user\"|\"group\", \"name\"}");
			return -EINVAL;
		}
		r = store_entitlement_add(b->b_store, pool, jstr(e, "kind"), jstr(e, "name"));
		if (r < 0 && r != -EEXIST) {
			snprintf(err, errlen, "cannot store an entitlement");
			return r;
		}
	}
	return 0;
}

/* The writes of a pool create (id NULL) or update, inside the transaction; the record
 * stored goes to *rec. With checked, the template's warning becomes warning (NULL:
 * none); without, it stays what it was. */
static enum broker_outcome pool_put(struct broker *b, const char *id, const json_t *body,
				    const char *warning, bool checked, json_t **rec,
				    struct broker_result *res)
{
	const json_t *ents = json_object_get(body, "entitlements"),
		     *desks = json_object_get(body, "desktops");
	struct pool_rec stored;
	json_t *existing = NULL;
	bool source_changed;
	char err[512] = "";
	int r;

	if (id) {
		if (store_pool_get(b->b_store, id, &stored) < 0 || stored.pr_deleting) {
			pool_rec_release(&stored);
			return broker_result_set(res, BROKER_NOT_FOUND, NULL, "no such pool");
		}
		existing = pool_rec_json(&stored);
		pool_rec_release(&stored);
		if (!existing)
			return unavailable(res);
		if (ents || desks) {
			json_decref(existing);
			return broker_result_set(res, BROKER_BAD_REQUEST, NULL,
						 "entitlements and desktops have their own "
						 "resources");
		}
	}
	*rec = pool_from_request(body, existing, err, sizeof(err));
	source_changed = *rec && existing && pool_is_manual(*rec) != pool_is_manual(existing);
	json_decref(existing);
	if (!*rec)
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL, "%s", err);
	if (source_changed)
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL, "source cannot change");
	if (checked || pool_is_manual(*rec))
		json_object_set_new(*rec, "template_warning",
				    warning && !pool_is_manual(*rec) ? json_string(warning)
								     : json_null());
	r = store_pool_put(b->b_store, *rec, !id, (int64_t)time(NULL));
	id = jstr(*rec, "id");
	if (r < 0)
		return store_outcome(res, r, "pool");
	/* a changed template every host accepts: desktops in error (say, refused by their
	 * host for the old one) are replaced */
	if (checked && !warning && !pool_is_manual(*rec) &&
	    store_pool_replace_failed(b->b_store, id, (int64_t)time(NULL)) > 0)
		log_info("pool=%s: its desktops in error are replaced", id);
	if (ents && add_entitlements(b, id, ents, err, sizeof(err)) < 0)
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL, "%s", err);
	if (desks && !pool_is_manual(*rec))
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL,
					 "desktops of automated pools are created by the broker");
	if (desks && add_manual_desktops(b, id, desks, err, sizeof(err)) < 0)
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL, "%s", err);
	return done(res);
}

/* Whether a pool update changes what its desktops are created from (template, memory,
 * vCPUs) or where (hosts): only then is its template checked again, so a pool whose
 * files went missing can still be disabled. */
static bool template_changed(const json_t *rec, const json_t *existing)
{
	static const char *const keys[] = {"template", "memory_mib", "vcpus", "hosts"};

	for (size_t i = 0; existing && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_equal(json_object_get(rec, keys[i]), json_object_get(existing, keys[i])))
			return true;
	return !existing;
}

/* Before a pool create (id NULL) or update is stored: its template checked with the
 * hosts that could run it, outside any transaction. BROKER_OK with *checked when it
 * was (*warning: why not on every host, or NULL); a request that does not parse is
 * left to pool_put() to refuse. */
static enum broker_outcome pool_check_template(struct broker *b, const char *id, const json_t *body,
					       bool *checked, char **warning,
					       struct broker_result *res)
{
	struct pool_rec stored;
	json_t *existing = NULL, *rec;
	char err[512];
	enum broker_outcome o = BROKER_OK;

	*checked = false;
	*warning = NULL;
	if (id && store_pool_get(b->b_store, id, &stored) == 0) {
		existing = pool_rec_json(&stored);
		pool_rec_release(&stored);
	}
	rec = pool_from_request(body, existing, err, sizeof(err));
	if (rec && !pool_is_manual(rec) && template_changed(rec, existing)) {
		o = template_check_pool(b, rec, warning, res);
		*checked = o == BROKER_OK;
	}
	json_decref(rec);
	json_decref(existing);
	return o;
}

enum broker_outcome broker_admin_pool_write(struct broker *b, const struct broker_user *u,
					    const char *addr, const char *id, const json_t *body,
					    json_t **out, struct broker_result *res)
{
	bool create = !id, checked;
	struct pool_rec stored;
	json_t *rec = NULL;
	char *warning = NULL;

	*out = NULL;
	if (pool_check_template(b, id, body, &checked, &warning, res) != BROKER_OK) {
		broker_audit(b, u->bu_name, create ? "pool_create" : "pool_update",
			     id ? id : jstr(body, "id"), "failure", addr, "%s", res->br_message);
		log_warnx("pool=%s: %s refused: %s", id ? id : jstr(body, "id"),
			  create ? "create" : "update", res->br_message);
		return res->br_outcome;
	}
	if (store_begin(b->b_store) < 0) {
		free(warning);
		return unavailable(res);
	}
	if (pool_put(b, id, body, warning, checked, &rec, res) != BROKER_OK) {
		store_rollback(b->b_store);
		goto out;
	}
	id = jstr(rec, "id");
	broker_audit(b, u->bu_name, create ? "pool_create" : "pool_update", id, "success", addr,
		     "kind=%s source=%s min=%lld max=%lld spare=%lld", jstr(rec, "kind"),
		     jstr(rec, "source"), (long long)jint(rec, "min"), (long long)jint(rec, "max"),
		     (long long)jint(rec, "spare"));
	if (store_commit(b->b_store) < 0) {
		unavailable(res);
		goto out;
	}
	log_info("pool=%s %s by %s", id, create ? "created" : "updated", u->bu_name);
	if (warning)
		log_warnx("pool=%s: %s", id, warning);
	broker_kick(b);
	if (store_pool_get(b->b_store, id, &stored) == 0)
		*out = pool_out(b, &stored);
	pool_rec_release(&stored);
	if (!*out)
		unavailable(res);
out:
	free(warning);
	json_decref(rec);
	return res->br_outcome;
}

/* Whether pool id may be deleted: it exists and has no live session. */
static enum broker_outcome pool_deletable(struct broker *b, const char *id,
					  struct broker_result *res)
{
	struct pool_rec p;
	int found = store_pool_get(b->b_store, id, &p);
	struct session_list live;
	int r = store_sessions_list(b->b_store, NULL, id, true, &live);

	if (found < 0 || p.pr_deleting)
		broker_result_set(res, BROKER_NOT_FOUND, NULL, "no such pool");
	else if (r < 0 || live.sl_n)
		broker_result_set(res, BROKER_BUSY, NULL,
				  "the pool has %zu live session(s); log them off first",
				  live.sl_n);
	else
		done(res);
	pool_rec_release(&p);
	session_list_free(&live);
	return res->br_outcome;
}

enum broker_outcome broker_admin_pool_delete(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *id,
					     struct broker_result *res)
{
	struct desktop_list ds;
	bool on_hosts = false;
	int r;

	if (store_begin(b->b_store) < 0)
		return unavailable(res);
	if (pool_deletable(b, id, res) != BROKER_OK) {
		store_rollback(b->b_store);
		return res->br_outcome;
	}
	/* Desktops on hosts go in the background (sizing.c, provision.c), then the pool; a
	 * pool without any (manual ones) goes at once, with its entitlements and desktops. */
	r = store_desktops_list(b->b_store, id, NULL, &ds);
	for (size_t i = 0; i < ds.dl_n; i++)
		if (ds.dl_recs[i].dr_host)
			on_hosts = true;
	desktop_list_free(&ds);
	r = r < 0      ? -EIO
	    : on_hosts ? store_pool_mark_deleting(b->b_store, id)
		       : store_pool_delete(b->b_store, id);
	broker_audit(b, u->bu_name, "pool_delete", id, r == 0 ? "success" : "failure", addr, NULL);
	if (r < 0 || store_commit(b->b_store) < 0) {
		if (r < 0)
			store_rollback(b->b_store);
		return unavailable(res);
	}
	log_info("pool=%s: deletion requested by %s", id, u->bu_name);
	broker_kick(b);
	return done(res);
}

enum broker_outcome broker_admin_entitle(struct broker *b, const struct broker_user *u,
					 const char *addr, const char *pool, const char *kind,
					 const char *name, struct broker_result *res)
{
	struct pool_rec p;
	int r;

	if (!entitlement_ok(kind, name))
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL,
					 "kind must be user or group, name 1 to 256 printable "
					 "characters");
	r = store_pool_get(b->b_store, pool, &p) == 0
		? store_entitlement_add(b->b_store, pool, kind, name)
		: -ENOENT;
	pool_rec_release(&p);
	broker_audit(b, u->bu_name, "entitlement_add", pool, r == 0 ? "success" : "failure", addr,
		     "%s %s", kind, name);
	if (r < 0)
		return store_outcome(res, r, r == -ENOENT ? "pool" : "entitlement");
	return done(res);
}

enum broker_outcome broker_admin_unentitle(struct broker *b, const struct broker_user *u,
					   const char *addr, const char *pool, const char *kind,
					   const char *name, struct broker_result *res)
{
	int r = store_entitlement_remove(b->b_store, pool, kind, name);

	broker_audit(b, u->bu_name, "entitlement_remove", pool, r == 0 ? "success" : "failure",
		     addr, "%s %s", kind, name);
	return r < 0 ? store_outcome(res, r, "entitlement") : done(res);
}

/* Whether manual desktops may be added to pool (inside the transaction). */
static enum broker_outcome pool_takes_desktops(struct broker *b, const char *pool,
					       struct broker_result *res)
{
	struct pool_rec p;

	if (store_pool_get(b->b_store, pool, &p) < 0 || p.pr_deleting)
		broker_result_set(res, BROKER_NOT_FOUND, NULL, "no such pool");
	else if (p.pr_source != POOL_MANUAL)
		broker_result_set(res, BROKER_AUTOMATED_POOL, NULL,
				  "desktops of automated pools are created by the broker");
	else
		done(res);
	pool_rec_release(&p);
	return res->br_outcome;
}

enum broker_outcome broker_admin_desktop_add(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *pool,
					     const json_t *desktop, struct broker_result *res)
{
	json_t *list;
	char err[256];
	int r;

	if (store_begin(b->b_store) < 0)
		return unavailable(res);
	if (pool_takes_desktops(b, pool, res) != BROKER_OK) {
		store_rollback(b->b_store);
		return res->br_outcome;
	}
	list = json_pack("[O]", desktop);
	r = list ? add_manual_desktops(b, pool, list, err, sizeof(err)) : -ENOMEM;
	json_decref(list);
	if (r < 0) {
		store_rollback(b->b_store);
		return broker_result_set(res, r == -EEXIST ? BROKER_EXISTS : BROKER_BAD_REQUEST,
					 NULL, "%s", err);
	}
	broker_audit(b, u->bu_name, "desktop_add", pool, "success", addr, "address=%s",
		     jstr(desktop, "address"));
	return store_commit(b->b_store) < 0 ? unavailable(res) : done(res);
}

/* ---- sessions, users, the audit log ---- */

json_t *broker_admin_sessions(struct broker *b, bool all)
{
	struct session_list l;
	json_t *out = NULL;

	if (store_sessions_list(b->b_store, NULL, NULL, !all, &l) == 0)
		out = json_array();
	for (size_t i = 0; out && i < l.sl_n; i++) {
		if (json_array_append_new(out, session_rec_json(&l.sl_recs[i])) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	session_list_free(&l);
	return out;
}

/* The user named name in list (ASCII case-insensitive), or NULL. Borrowed. */
static json_t *user_in(const json_t *list, const char *name)
{
	size_t i;
	json_t *u;

	json_array_foreach ((json_t *)list, i, u)
		if (name && jstr(u, "username") && !strcasecmp(jstr(u, "username"), name))
			return u;
	return NULL;
}

static int by_username(const void *a, const void *b)
{
	const char *x = jstr(*(json_t *const *)a, "username"),
		   *y = jstr(*(json_t *const *)b, "username");

	return strcasecmp(x ? x : "", y ? y : "");
}

/* Sorts a list of users by name. Returns 0 or -ENOMEM. */
static int users_sort(json_t *list)
{
	size_t n = json_array_size(list), i;
	json_t **items = calloc(n + 1, sizeof(*items)), *u;

	if (!items)
		return -ENOMEM;
	json_array_foreach (list, i, u)
		items[i] = json_incref(u);
	qsort(items, n, sizeof(*items), by_username);
	json_array_clear(list);
	for (i = 0; i < n; i++)
		json_array_append_new(list, items[i]);
	free(items);
	return 0;
}

/* The users of [auth] users_file appended to list, as source "users_file". */
static int add_file_users(struct broker *b, json_t *list)
{
	const struct localdir *dir = auth_users_file(b->b_auth);

	for (size_t i = 0; dir && i < localdir_count(dir); i++) {
		struct identity *id;
		json_t *u;

		if (localdir_user_at(dir, i, &id) < 0)
			return -ENOMEM;
		u = identity_to_json(id);
		identity_free(id);
		if (!u)
			return -ENOMEM;
		json_object_del(u, "dn");
		json_object_set_new(u, "source", json_string("users_file"));
		json_object_set_new(u, "created", json_null());
		if (user_in(list, jstr(u, "username")) || json_array_append_new(list, u) < 0)
			json_decref(u);
	}
	return 0;
}

json_t *broker_admin_users(struct broker *b)
{
	const char *backend = auth_backends[b->b_cfg->bc_auth.ac_backend];
	json_t *out = store_users_list(b->b_store), *seen = NULL, *u, *known;
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach (out, i, u)
		json_object_set_new(u, "source", json_string("local"));
	if (add_file_users(b, out) < 0)
		goto out_fail;
	/* users of the directory (LDAP) are known here once they signed in */
	seen = store_users_seen(b->b_store);
	if (!seen)
		goto out_fail;
	json_array_foreach (seen, i, u) {
		json_int_t last = json_integer_value(json_object_get(u, "last_login"));

		known = user_in(out, jstr(u, "username"));
		if (!known) {
			json_t *groups = json_object_get(u, "groups");

			known = json_pack("{s:s?, s:O?, s:n, s:[], s:n, s:s}", "username",
					  jstr(u, "username"), "display_name",
					  json_object_get(u, "display_name"), "mail", "groups",
					  "created", "source", backend);
			if (!known || json_array_append_new(out, known) < 0)
				goto out_fail;
			if (json_is_array(groups)) /* as of their newest web session */
				json_object_set(known, "groups", groups);
		}
		json_object_set_new(known, "last_login",
				    last > 0 ? json_integer(last) : json_null());
	}
	json_array_foreach (out, i, u)
		if (!json_object_get(u, "last_login"))
			json_object_set_new(u, "last_login", json_null());
	json_decref(seen);
	if (users_sort(out) < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
out_fail:
	json_decref(seen);
	json_decref(out);
	return NULL;
}

/* Whether an add-user request's fields are valid (no NUL inside, printable names). */
static bool user_request_ok(const json_t *req, struct broker_result *res)
{
	const char *name = jstr(req, "username"), *pw = jstr(req, "password"),
		   *dn = jstr(req, "display_name"), *mail = jstr(req, "mail");
	json_t *groups = json_object_get(req, "groups"), *g;
	size_t i;

	if (groups && !json_is_array(groups))
		goto bad_groups;
	json_array_foreach (groups, i, g)
		if (!json_is_string(g) ||
		    !identity_valid_text(json_string_value(g), json_string_length(g), 256))
			goto bad_groups;
	if (strlen(name) != json_string_length(json_object_get(req, "username")) ||
	    strlen(pw) != json_string_length(json_object_get(req, "password")) ||
	    (dn && !identity_valid_text(dn, strlen(dn), 256)) ||
	    (mail && !identity_valid_text(mail, strlen(mail), 256))) {
		broker_result_set(res, BROKER_BAD_REQUEST, NULL,
				  "invalid username, password or name");
		return false;
	}
	return true;
bad_groups:
	broker_result_set(res, BROKER_BAD_REQUEST, NULL, "groups must be an array of names");
	return false;
}

enum broker_outcome broker_admin_user_add(struct broker *b, const struct broker_user *u,
					  const char *addr, const json_t *req,
					  struct broker_result *res)
{
	const char *name = jstr(req, "username");
	char err[256];
	int r;

	if (!user_request_ok(req, res))
		return res->br_outcome;
	r = broker_user_add(b, name, jstr(req, "password"), jstr(req, "display_name"),
			    jstr(req, "mail"), json_object_get(req, "groups"), err, sizeof(err));
	broker_audit(b, u->bu_name, "user_add", name, r == 0 ? "success" : "failure", addr, "%s",
		     r == 0 ? "" : err);
	if (r == -EINVAL)
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL, "%s", err);
	return r < 0 ? store_outcome(res, r, "user") : done(res);
}

enum broker_outcome broker_admin_user_delete(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *name,
					     struct broker_result *res)
{
	int r = store_user_delete(b->b_store, name);

	broker_audit(b, u->bu_name, "user_delete", name, r == 0 ? "success" : "failure", addr,
		     NULL);
	if (r == 0)
		accounts_end_user(b, name, "the user was deleted");
	return r < 0 ? store_outcome(res, r, "user") : done(res);
}

json_t *broker_admin_directory(struct broker *b)
{
	const struct auth_config *ac = &b->b_cfg->bc_auth;
	struct ldapdir_server_health servers[16];
	json_t *list = json_array();
	size_t n = 0;

	if (ac->ac_backend == AUTH_BACKEND_LDAP)
		n = ldapdir_servers(&ac->ac_ldap, servers, sizeof(servers) / sizeof(servers[0]));
	for (size_t i = 0; list && i < n; i++)
		json_array_append_new(
		    list, json_pack("{s:s, s:s, s:i, s:s?}", "uri", servers[i].sh_uri, "state",
				    servers[i].sh_failing ? "failing" : "ok", "retry_in",
				    servers[i].sh_retry_in, "error",
				    servers[i].sh_error[0] ? servers[i].sh_error : NULL));
	return json_pack("{s:s, s:o}", "backend", auth_backends[ac->ac_backend], "servers",
			 list ? list : json_array());
}

json_t *broker_admin_user_websessions(struct broker *b, const char *name)
{
	return store_websessions_of_user(b->b_store, name, (int64_t)time(NULL));
}

enum broker_outcome broker_admin_user_revoke(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *name,
					     struct broker_result *res)
{
	int n = store_websessions_delete_user(b->b_store, name);

	broker_audit(b, u->bu_name, "websessions_revoke", name, n >= 0 ? "success" : "failure",
		     addr, "%d web session(s) ended", n < 0 ? 0 : n);
	if (n > 0)
		log_info("user=%s: %d web session(s) revoked by %s", name, n, u->bu_name);
	return n < 0 ? store_outcome(res, n, "user") : done(res);
}

json_t *broker_admin_audit(struct broker *b, int limit, int64_t before)
{
	return store_audit_list(b->b_store, limit, before);
}
