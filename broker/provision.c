/* Desktops driven towards their state on their hosts through vdi-hostd's API:
 * provisioning = created and running, refreshing = stopped, deleted and created anew,
 * deleting = stopped and deleted, stopped = stopped (kept on the host); a ready desktop its host no
 * longer runs ends its sessions. Host calls happen outside store transactions; each write
 * afterwards checks the desktop is still in the state the call was made for. Runs in the
 * maintenance pass. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker/hostclient.h"
#include "broker/internal.h"
#include "broker/metrics.h"
#include "lib/log.h"

static bool one_of(const char *v, const char *const *list)
{
	for (; v && *list; list++)
		if (!strcmp(v, *list))
			return true;
	return false;
}

/* Calls the host; returns the status or a negative errno (logged). */
static int call(struct broker *b, const struct host_rec *host, const char *method, const char *did,
		const char *action, const json_t *body, json_t **reply)
{
	char path[160], err[512];
	int r;

	*reply = NULL;
	if (!b->b_hosts)
		return -ENOTCONN;
	snprintf(path, sizeof(path), "/api/v1/desktops%s%s%s%s", did ? "/" : "", did ? did : "",
		 action ? "/" : "", action ? action : "");
	r = hostclient_call(b->b_hosts, host->hr_id, host->hr_url, method, path, body, reply, err,
			    sizeof(err));
	if (r == -EPERM)
		hosts_identity_refused(b, host->hr_id, "desktop=%s: %s", did ? did : "-", err);
	else if (r < 0 || r >= 400)
		log_warnx("desktop=%s host=%s: %s", did ? did : "-", host->hr_id, err);
	if (r >= 0)
		hosts_identity_proven(b, host->hr_id);
	return r;
}

static void set_host_state(struct broker *b, const char *id, const json_t *reply)
{
	const char *st = jstr(reply, "state");

	if (st)
		store_desktop_set_host_state(b->b_store, id, st);
}

static json_t *create_request(const struct desktop_rec *d, const struct pool_rec *pool)
{
	json_t *req = json_deep_copy(pool->pr_template);

	if (!req)
		return NULL;
	json_object_set_new(req, "id", json_string(d->dr_id));
	json_object_set_new(req, "memory_mib", json_integer(pool->pr_memory_mib));
	json_object_set_new(req, "vcpus", json_integer(pool->pr_vcpus));
	return req;
}

/* A ready desktop its host no longer runs: sessions on it end; floating and unowned
 * desktops go, an owner's is started again. */
static void desktop_gone(struct broker *b, const struct desktop_rec *d, const struct pool_rec *pool,
			 int64_t now)
{
	char detail[200];

	if (store_begin(b->b_store) < 0)
		return;
	snprintf(detail, sizeof(detail), "desktop=%s %s on its host", d->dr_id, d->dr_host_state);
	desktop_out_of_service(b, d, pool, d->dr_owner ? DESKTOP_PROVISIONING : DESKTOP_DELETING,
			       now, detail);
	broker_metrics_desktop_gone(d->dr_host_state);
	if (d->dr_owner)
		broker_metrics_desktop_restart();
	log_warnx("desktop=%s is %s on host=%s: %s", d->dr_id, d->dr_host_state, d->dr_host,
		  d->dr_owner ? "starting it again" : "replacing it");
	if (store_commit(b->b_store) < 0)
		log_warnx("desktop=%s: cannot record its loss", d->dr_id);
}

static const char *const down[] = {"stopped", "failed", "missing", NULL};
static const char *const live[] = {"running", "starting", NULL};

/* Starts desktop id on host; its host state from the answer. Returns the status, with
 * the answer in *reply when reply is not NULL (json_decref() it). */
static int start(struct broker *b, const struct host_rec *host, const char *id, json_t **reply)
{
	json_t *answer = NULL;
	int r = call(b, host, "POST", id, "start", NULL, &answer);

	if (r == 202)
		set_host_state(b, id, answer);
	if (reply)
		*reply = answer;
	else
		json_decref(answer);
	return r;
}

/* Whether a host's answer to a create or start refuses the desktop's template: 400
 * (what a create carries is the pool's template, and a start re-checks its files) or
 * 422 (a file of the template is wrong). Asking again would fail the same way. */
static bool template_refused(int status)
{
	return status == 400 || status == 422;
}

void pool_count_failure(struct broker *b, const struct desktop_rec *d, const char *cause,
			int64_t now)
{
	int n = store_pool_failed(b->b_store, d->dr_pool, cause, now);

	if (n < 0)
		return;
	log_warnx("desktop=%s pool=%s failed (%d in a row): %s", d->dr_id, d->dr_pool, n, cause);
	if (n == b->b_cfg->bc_degraded_after) {
		log_warnx("pool=%s degraded: %d desktops failed in a row; the last: %s", d->dr_pool,
			  n, cause);
		broker_audit(b, NULL, "pool_degraded", d->dr_pool, "failure", NULL,
			     "%d desktops failed in a row; the last, %s: %s", n, d->dr_id, cause);
	}
}

/* A provisioning desktop whose host refused its template: in error with the host's
 * reason as its failure (the admin API's desktop and pool views show it), audited and
 * logged once, instead of being asked again every pass; its pool counts one more
 * failure (and waits before its next start). */
static void template_error(struct broker *b, const struct desktop_rec *d,
			   const struct host_rec *host, const json_t *reply, int64_t now)
{
	const char *why = jstr(reply, "error");
	char reason[700];

	snprintf(reason, sizeof(reason), "host %s refused the template: %.600s", host->hr_id,
		 why ? why : "no reason given");
	if (store_desktop_set_error(b->b_store, d->dr_id, DESKTOP_PROVISIONING, reason, now) > 0) {
		log_warnx("desktop=%s pool=%s host=%s: in error: %s", d->dr_id, d->dr_pool,
			  host->hr_id, reason);
		broker_audit(b, NULL, "desktop_error", d->dr_id, "failure", NULL, "pool=%s %s",
			     d->dr_pool, reason);
		broker_metrics_desktop_failure(BROKER_FAILURE_TEMPLATE);
		pool_count_failure(b, d, reason, now);
	}
}

/* Creates desktop d on host from pool's template, then starts it. */
static void create(struct broker *b, const struct desktop_rec *d, const struct host_rec *host,
		   const struct pool_rec *pool, int64_t now)
{
	const char *id = d->dr_id;
	json_t *req, *reply = NULL;
	int r;

	/* on the host until it says otherwise: a create whose answer is lost must not leave
	 * an orphan there (a later start or delete finds out) */
	store_desktop_set_on_host(b->b_store, id, true);
	req = create_request(d, pool);
	r = req ? call(b, host, "POST", NULL, NULL, req, &reply) : -ENOMEM;
	json_decref(req);
	if (r >= 400 && r != 409)
		store_desktop_set_on_host(b->b_store, id, false);
	if (template_refused(r))
		template_error(b, d, host, reply, now);
	json_decref(reply);
	reply = NULL;
	if (r == 201 || r == 409) {
		store_desktop_set_on_host(b->b_store, id, true);
		store_desktop_set_host_state(b->b_store, id, "stopped");
		r = start(b, host, id, &reply);
		if (template_refused(r))
			template_error(b, d, host, reply, now);
		json_decref(reply);
	}
}

/* A provisioning desktop: in error after provision_timeout, else created, started, and
 * ready once its host runs it. While its pool backs off after failures (pr_retry_at)
 * nothing is created or started. */
static void provision(struct broker *b, const struct desktop_rec *d, const struct host_rec *host,
		      const struct pool_rec *pool, int64_t now)
{
	const char *id = d->dr_id, *hs = d->dr_host_state;
	bool backing_off = pool->pr_retry_at > now;
	json_t *reply = NULL;
	int r;

	if (backing_off && (!d->dr_on_host || !hs || one_of(hs, down)))
		return; /* its time does not run while it waits */
	if (now - d->dr_since > b->b_cfg->bc_provision_timeout) {
		if (store_desktop_set_state(b->b_store, id, DESKTOP_PROVISIONING, DESKTOP_ERROR,
					    now) > 0) {
			log_warnx("desktop=%s: not running after %ds; in error", id,
				  b->b_cfg->bc_provision_timeout);
			broker_metrics_desktop_failure(BROKER_FAILURE_PROVISION_TIMEOUT);
			broker_audit(b, NULL, "desktop_error", id, "failure", NULL,
				     "not running after provision_timeout");
		}
	} else if (!d->dr_on_host) {
		create(b, d, host, pool, now);
	} else if (!hs || one_of(hs, down)) {
		r = start(b, host, id, &reply);
		if (r == 404)
			store_desktop_set_on_host(b->b_store, id, false);
		else if (template_refused(r))
			template_error(b, d, host, reply, now);
		json_decref(reply);
	} else if (!strcmp(hs, "running")) {
		if (store_desktop_set_state(b->b_store, id, DESKTOP_PROVISIONING, DESKTOP_READY,
					    now) > 0)
			log_info("desktop=%s ready on host=%s", id, host->hr_id);
	}
}

/* Stops desktop id on host (forced); its host state from the answer. */
static void stop(struct broker *b, const struct host_rec *host, const char *id)
{
	json_t *req = json_pack("{s:b}", "force", 1), *reply = NULL;
	int r = req ? call(b, host, "POST", id, "stop", req, &reply) : -ENOMEM;

	json_decref(req);
	if (r == 202)
		set_host_state(b, id, reply);
	json_decref(reply);
}

/* A desktop ready for POOL_HEALTHY_S ends its pool's run of failures. */
static void ready(struct broker *b, const struct desktop_rec *d, const struct pool_rec *pool,
		  int64_t now)
{
	if (pool->pr_failures > 0 && now - d->dr_since >= POOL_HEALTHY_S &&
	    store_pool_healthy(b->b_store, pool->pr_id) > 0) {
		log_info("pool=%s healthy again: desktop=%s ready for %ds after %d failures",
			 pool->pr_id, d->dr_id, POOL_HEALTHY_S, pool->pr_failures);
		if (pool->pr_failures >= b->b_cfg->bc_degraded_after)
			broker_audit(b, NULL, "pool_healthy", pool->pr_id, "success", NULL,
				     "desktop=%s ready for %ds", d->dr_id, POOL_HEALTHY_S);
	}
}

/* A refreshing or deleting desktop: stopped, deleted from its host, then provisioned
 * again (refreshing) or removed once no session is on it (deleting). */
static void remove_from_host(struct broker *b, const struct desktop_rec *d,
			     const struct host_rec *host, const struct pool_rec *pool, int64_t now)
{
	const char *id = d->dr_id, *hs = d->dr_host_state;
	bool on = d->dr_on_host;
	json_t *reply = NULL;
	int r;

	if (on && one_of(hs, live)) {
		stop(b, host, id);
	} else if (on && (!hs || one_of(hs, down))) {
		r = call(b, host, "DELETE", id, NULL, NULL, &reply);
		if (r == 200 || r == 404) {
			store_desktop_set_on_host(b->b_store, id, false);
			store_desktop_set_host_state(b->b_store, id, NULL);
		}
	} else if (!on && d->dr_state == DESKTOP_REFRESHING) {
		store_desktop_set_state(b->b_store, id, DESKTOP_REFRESHING, DESKTOP_PROVISIONING,
					now);
	} else if (!on && !d->dr_in_use) {
		store_desktop_delete(b->b_store, id);
		log_info("desktop=%s deleted", id);
		if (pool->pr_deleting)
			pool_retire(b, pool->pr_id, now);
	}
	json_decref(reply);
}

/* Moves desktop d one step towards its state on its host. */
static void reconcile(struct broker *b, const struct desktop_rec *d, const struct host_rec *host,
		      const struct pool_rec *pool, int64_t now)
{
	switch (d->dr_state) {
	case DESKTOP_PROVISIONING: provision(b, d, host, pool, now); break;
	case DESKTOP_REFRESHING:
	case DESKTOP_DELETING: remove_from_host(b, d, host, pool, now); break;
	case DESKTOP_READY:
		if (d->dr_on_host && one_of(d->dr_host_state, down))
			desktop_gone(b, d, pool, now);
		else
			ready(b, d, pool, now);
		break;
	case DESKTOP_STOPPED: /* an administrator stopped it (admin.c) */
		if (d->dr_on_host && one_of(d->dr_host_state, live))
			stop(b, host, d->dr_id);
		break;
	case DESKTOP_LOST: /* its host is back */
		if (store_desktop_set_state(b->b_store, d->dr_id, DESKTOP_LOST,
					    d->dr_owner ? DESKTOP_PROVISIONING : DESKTOP_DELETING,
					    now) > 0 &&
		    d->dr_owner)
			broker_metrics_desktop_restart();
		break;
	default: break;
	}
}

void desktops_tick(struct broker *b, int64_t now)
{
	struct desktop_list desktops;

	store_desktops_list(b->b_store, NULL, NULL, &desktops);
	for (size_t i = 0; i < desktops.dl_n; i++) {
		const struct desktop_rec *d = &desktops.dl_recs[i];
		struct host_rec host;
		bool have_host;
		struct pool_rec pool;
		bool have_pool;

		if (!d->dr_host)
			continue; /* manual */
		have_host = store_host_get(b->b_store, d->dr_host, &host) == 0;
		have_pool = store_pool_get(b->b_store, d->dr_pool, &pool) == 0;
		if (have_host && have_pool && host.hr_state == HOST_UP)
			reconcile(b, d, &host, &pool, now);
		else if (!have_host && d->dr_state == DESKTOP_DELETING)
			store_desktop_delete(b->b_store, d->dr_id); /* its host was removed */
		host_rec_release(&host);
		pool_rec_release(&pool);
	}
	desktop_list_free(&desktops);
}
