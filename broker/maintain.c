/* The maintenance thread: every maintenance_interval (or when kicked) it marks silent
 * hosts down and their desktops lost, times out disconnected sessions (and sessions
 * whose ticket was never used), sizes automated pools (policy_maintain + placement),
 * and drives each desktop towards its state on its host through vdi-hostd's API:
 * provisioning = created and running, refreshing = stopped, deleted and created anew,
 * deleting = stopped and deleted. Host calls happen outside store transactions; each
 * write afterwards checks the desktop is still in the state the call was made for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/hostclient.h"
#include "broker/internal.h"
#include "broker/pool.h"
#include "lib/log.h"
#include "policy/maintain.h"
#include "policy/placement.h"

#define PURGE_EVERY_S 60

void broker_kick(struct broker *b)
{
	pthread_mutex_lock(&b->b_lock);
	b->b_kicked = true;
	pthread_cond_signal(&b->b_wake);
	pthread_mutex_unlock(&b->b_lock);
}

/* ---- hosts that went silent ---- */

static void host_lost(struct broker *b, const char *host, int64_t now)
{
	json_t *desktops, *d, *sessions, *s, *pool;
	struct pool_view pv;
	size_t i, j;

	log_warnx("host=%s down: no heartbeat for %ds; its desktops are lost", host,
		  b->b_cfg->bc_host_timeout);
	if (store_begin(b->b_store) < 0)
		return;
	broker_audit(b, NULL, "host_down", host, "success", NULL, "no heartbeat for %ds",
		     b->b_cfg->bc_host_timeout);
	desktops = store_desktops_list(b->b_store, NULL, host);
	json_array_foreach (desktops, i, d) {
		if (!strcmp(jstr(d, "state"), "deleting"))
			continue;
		pool = store_pool_get(b->b_store, jstr(d, "pool_id"));
		if (pool && pool_view_init(&pv, pool) != -ENOMEM) {
			sessions = store_sessions_list(b->b_store, NULL, jstr(d, "pool_id"), true);
			json_array_foreach (sessions, j, s) {
				struct policy_session ps = {
				    .sess_id = jstr(s, "id"),
				    .sess_state = pool_session_state(jstr(s, "state")),
				    .sess_since = jint(s, "since"),
				};
				struct policy_transition t;

				if (strcmp(jstr(s, "desktop_id"), jstr(d, "id")))
					continue;
				t = policy_session_event(&pv.pv_pool, &ps,
							 POLICY_EVENT_DESKTOP_LOST, now);
				t.pt_desktop =
				    POLICY_DESKTOP_KEEP; /* decided when the host returns */
				apply_transition(b, s, &pv, &t, now);
				broker_audit(b, jstr(s, "username"), "session_lost", jstr(s, "id"),
					     "success", NULL, "desktop=%s host=%s down",
					     jstr(d, "id"), host);
			}
			json_decref(sessions);
			pool_view_free(&pv);
		}
		json_decref(pool);
		store_desktop_set_state(b->b_store, jstr(d, "id"), NULL, "lost", now);
		log_warnx("desktop=%s host=%s: lost", jstr(d, "id"), host);
	}
	json_decref(desktops);
	if (store_commit(b->b_store) < 0)
		log_warnx("host=%s: cannot record it down", host);
}

/* ---- session timers ---- */

static void sessions_tick(struct broker *b, int64_t now)
{
	json_t *sessions = store_sessions_list(b->b_store, NULL, NULL, true), *s;
	size_t i;

	json_array_foreach (sessions, i, s) {
		const char *id = jstr(s, "id");
		enum policy_session_event ev = POLICY_EVENT_TICK;
		struct policy_transition t;
		struct policy_session ps;
		struct pool_view pv;
		json_t *cur, *pool, *d;

		if (!strcmp(jstr(s, "state"), "connected")) {
			/* Handed out but never opened: once its tickets are gone it is a
			 * disconnected session. */
			if (json_is_true(json_object_get(s, "attached")) ||
			    jint(s, "since") + b->b_cfg->bc_ticket_lifetime > now ||
			    store_tickets_live(b->b_store, id, now) != 0)
				continue;
			d = store_desktop_get(b->b_store, jstr(s, "desktop_id"));
			if (!d || strcmp(jstr(d, "state"), "ready") ||
			    jint(d, "since") + b->b_cfg->bc_ticket_lifetime > now) {
				json_decref(d);
				continue;
			}
			json_decref(d);
			ev = POLICY_EVENT_DISCONNECT;
		}
		if (store_begin(b->b_store) < 0)
			break;
		cur = store_session_get(b->b_store, id);
		pool = cur ? store_pool_get(b->b_store, jstr(cur, "pool_id")) : NULL;
		if (!cur || !pool || strcmp(jstr(cur, "state"), jstr(s, "state")) ||
		    pool_view_init(&pv, pool) == -ENOMEM) {
			store_rollback(b->b_store);
			json_decref(cur);
			json_decref(pool);
			continue;
		}
		ps = (struct policy_session){
		    .sess_id = id,
		    .sess_state = pool_session_state(jstr(cur, "state")),
		    .sess_since = jint(cur, "since"),
		};
		t = policy_session_event(&pv.pv_pool, &ps, ev, now);
		if (t.pt_changed) {
			apply_transition(b, cur, &pv, &t, now);
			broker_audit(b, jstr(cur, "username"),
				     ev == POLICY_EVENT_TICK ? "logoff" : "disconnect", id,
				     "success", NULL, "%s, desktop=%s",
				     policy_reason_name(t.pt_reason), jstr(cur, "desktop_id"));
			log_info("session=%s user=%s: %s (%s)", id, jstr(cur, "username"),
				 pool_session_state_name(t.pt_state),
				 policy_reason_name(t.pt_reason));
		}
		if (store_commit(b->b_store) < 0)
			log_warnx("session=%s: cannot record its timeout", id);
		pool_view_free(&pv);
		json_decref(pool);
		json_decref(cur);
	}
	json_decref(sessions);
}

/* ---- pool sizing ---- */

static void size_pool(struct broker *b, json_t *pool, int64_t now)
{
	const char *pid = jstr(pool, "id");
	struct policy_desktop *pd = NULL;
	const struct policy_host **where = NULL;
	struct policy_host *ph = NULL;
	struct policy_pool_counts c;
	struct policy_maintenance m;
	enum policy_reason why;
	struct pool_view pv;
	json_t *desktops = NULL, *hosts = NULL, *h, *d;
	size_t i, n, placed;

	if (store_begin(b->b_store) < 0)
		return;
	if (pool_view_init(&pv, pool) < 0)
		goto out;
	desktops = store_desktops_list(b->b_store, pid, NULL);
	hosts = store_hosts_list(b->b_store);
	if (!desktops || !hosts)
		goto out;
	n = json_array_size(desktops);
	pd = calloc(n + 1, sizeof(*pd));
	if (!pd)
		goto out;
	pool_desktops_view(desktops, pd);
	c = policy_count_desktops(pd, n);
	m = policy_maintain(&pv.pv_pool, &c);
	if (m.pm_create > 0) {
		ph = calloc(json_array_size(hosts) + 1, sizeof(*ph));
		where = calloc((size_t)m.pm_create, sizeof(*where));
		if (!ph || !where)
			goto out;
		json_array_foreach (hosts, i, h)
			ph[i] = host_view(h);
		placed = policy_place_many(&pv.pv_pool, ph, json_array_size(hosts),
					   (size_t)m.pm_create, where, &why);
		for (i = 0; i < placed; i++) {
			char id[48];

			snprintf(id, sizeof(id), "%s-", pid);
			if (random_hex(id + strlen(id), 4) < 0 ||
			    store_desktop_add(b->b_store, id, pid, where[i]->host_id, NULL, NULL,
					      NULL, "provisioning", now) < 0)
				break;
			log_info("pool=%s: desktop=%s to be created on host=%s (%s)", pid, id,
				 where[i]->host_id, policy_reason_name(m.pm_reason));
		}
		if (placed < (size_t)m.pm_create)
			log_debug("pool=%s: %d desktop(s) wanted, %zu placed: %s", pid, m.pm_create,
				  placed, policy_reason_name(why));
	}
	for (int k = 0; k < m.pm_destroy; k++) {
		json_array_foreach (desktops, i, d) {
			if (!strcmp(jstr(d, "state"), "ready") &&
			    !json_is_true(json_object_get(d, "in_use")) && !jstr(d, "owner")) {
				store_desktop_set_state(b->b_store, jstr(d, "id"), "ready",
							"deleting", now);
				json_object_set_new(d, "state", json_string("deleting"));
				log_info("pool=%s: desktop=%s to be deleted (%s)", pid,
					 jstr(d, "id"), policy_reason_name(m.pm_reason));
				break;
			}
		}
	}
out:
	if (store_commit(b->b_store) < 0)
		log_warnx("pool=%s: cannot record its maintenance", pid);
	free(pd);
	free(ph);
	free((void *)where);
	json_decref(desktops);
	json_decref(hosts);
	pool_view_free(&pv);
}

/* A deleting pool: its desktops go; once none is left, the pool. */
static void retire_pool(struct broker *b, const char *pid, int64_t now)
{
	json_t *desktops;
	json_t *d;
	size_t i;

	if (store_begin(b->b_store) < 0)
		return;
	desktops = store_desktops_list(b->b_store, pid, NULL);
	json_array_foreach (desktops, i, d) {
		if (!jstr(d, "host_id") || (!json_is_true(json_object_get(d, "on_host")) &&
					    strcmp(jstr(d, "state"), "deleting")))
			store_desktop_delete(b->b_store, jstr(d, "id"));
		else if (strcmp(jstr(d, "state"), "deleting"))
			store_desktop_set_state(b->b_store, jstr(d, "id"), NULL, "deleting", now);
	}
	json_decref(desktops);
	desktops = store_desktops_list(b->b_store, pid, NULL);
	if (desktops && json_array_size(desktops) == 0) {
		store_pool_delete(b->b_store, pid);
		log_info("pool=%s deleted", pid);
	}
	json_decref(desktops);
	if (store_commit(b->b_store) < 0)
		log_warnx("pool=%s: cannot record its deletion", pid);
}

static void pools_tick(struct broker *b, int64_t now)
{
	json_t *pools = store_pools_list(b->b_store), *p;
	json_t *all = store_desktops_list(b->b_store, NULL, NULL), *d;
	size_t i;

	json_array_foreach (pools, i, p)
		if (!pool_is_manual(p))
			size_pool(b, p, now);
	/* pools being deleted are not listed: find them through their desktops */
	json_array_foreach (all, i, d) {
		json_t *pool = store_pool_get(b->b_store, jstr(d, "pool_id"));

		if (pool && json_is_true(json_object_get(pool, "deleting")))
			retire_pool(b, jstr(pool, "id"), now);
		json_decref(pool);
	}
	json_decref(all);
	json_decref(pools);
}

/* ---- desktops on hosts ---- */

static bool one_of(const char *v, const char *const *list)
{
	for (; v && *list; list++)
		if (!strcmp(v, *list))
			return true;
	return false;
}

/* Calls the host; returns the status or a negative errno (logged). */
static int call(struct broker *b, const json_t *host, const char *method, const char *did,
		const char *action, const json_t *body, json_t **reply)
{
	char path[160], err[512];
	int r;

	*reply = NULL;
	if (!b->b_hosts)
		return -ENOTCONN;
	snprintf(path, sizeof(path), "/api/v1/desktops%s%s%s%s", did ? "/" : "", did ? did : "",
		 action ? "/" : "", action ? action : "");
	r = hostclient_call(b->b_hosts, jstr(host, "url"), method, path, body, reply, err,
			    sizeof(err));
	if (r < 0 || r >= 400)
		log_warnx("desktop=%s host=%s: %s", did ? did : "-", jstr(host, "id"), err);
	return r;
}

static void set_host_state(struct broker *b, const char *id, const json_t *reply)
{
	const char *st = jstr(reply, "state");

	if (st)
		store_desktop_set_host_state(b->b_store, id, st);
}

static json_t *create_request(const json_t *d, const json_t *pool)
{
	json_t *req = json_deep_copy(json_object_get(pool, "template"));

	if (!req)
		return NULL;
	json_object_set(req, "id", json_object_get(d, "id"));
	json_object_set(req, "memory_mib", json_object_get(pool, "memory_mib"));
	json_object_set(req, "vcpus", json_object_get(pool, "vcpus"));
	return req;
}

/* A ready desktop its host no longer runs: sessions on it end; floating and unowned
 * desktops go, an owner's is started again. */
static void desktop_gone(struct broker *b, const json_t *d, const json_t *pool, int64_t now)
{
	json_t *sessions, *s;
	struct pool_view pv;
	size_t i;

	if (store_begin(b->b_store) < 0)
		return;
	if (pool_view_init(&pv, (json_t *)pool) == -ENOMEM) {
		store_rollback(b->b_store);
		return;
	}
	sessions = store_sessions_list(b->b_store, NULL, jstr(d, "pool_id"), true);
	json_array_foreach (sessions, i, s) {
		struct policy_session ps = {
		    .sess_id = jstr(s, "id"),
		    .sess_state = pool_session_state(jstr(s, "state")),
		    .sess_since = jint(s, "since"),
		};
		struct policy_transition t;

		if (strcmp(jstr(s, "desktop_id"), jstr(d, "id")))
			continue;
		t = policy_session_event(&pv.pv_pool, &ps, POLICY_EVENT_DESKTOP_LOST, now);
		t.pt_desktop = POLICY_DESKTOP_KEEP;
		apply_transition(b, s, &pv, &t, now);
		broker_audit(b, jstr(s, "username"), "session_lost", jstr(s, "id"), "success", NULL,
			     "desktop=%s %s on its host", jstr(d, "id"), jstr(d, "host_state"));
	}
	json_decref(sessions);
	store_desktop_set_state(b->b_store, jstr(d, "id"), jstr(d, "state"),
				jstr(d, "owner") ? "provisioning" : "deleting", now);
	log_warnx("desktop=%s is %s on host=%s: %s", jstr(d, "id"), jstr(d, "host_state"),
		  jstr(d, "host_id"), jstr(d, "owner") ? "starting it again" : "replacing it");
	if (store_commit(b->b_store) < 0)
		log_warnx("desktop=%s: cannot record its loss", jstr(d, "id"));
	pool_view_free(&pv);
}

static void reconcile(struct broker *b, json_t *d, const json_t *host, const json_t *pool,
		      int64_t now)
{
	static const char *const down[] = {"stopped", "failed", "missing", NULL};
	static const char *const live[] = {"running", "starting", NULL};
	const char *id = jstr(d, "id"), *state = jstr(d, "state"), *hs = jstr(d, "host_state");
	bool on = json_is_true(json_object_get(d, "on_host"));
	json_t *reply = NULL, *req;
	int r;

	if (!strcmp(state, "provisioning")) {
		if (now - jint(d, "since") > b->b_cfg->bc_provision_timeout) {
			if (store_desktop_set_state(b->b_store, id, "provisioning", "error", now) >
			    0) {
				log_warnx("desktop=%s: not running after %ds; in error", id,
					  b->b_cfg->bc_provision_timeout);
				broker_audit(b, NULL, "desktop_error", id, "failure", NULL,
					     "not running after provision_timeout");
			}
		} else if (!on) {
			/* on the host until it says otherwise: a create whose answer is lost
			 * must not leave an orphan there (a later start or delete finds out) */
			store_desktop_set_on_host(b->b_store, id, true);
			req = create_request(d, pool);
			r = req ? call(b, host, "POST", NULL, NULL, req, &reply) : -ENOMEM;
			json_decref(req);
			if (r >= 400 && r != 409)
				store_desktop_set_on_host(b->b_store, id, false);
			if (r == 201 || r == 409) {
				store_desktop_set_on_host(b->b_store, id, true);
				store_desktop_set_host_state(b->b_store, id, "stopped");
				json_decref(reply);
				r = call(b, host, "POST", id, "start", NULL, &reply);
				if (r == 202)
					set_host_state(b, id, reply);
			}
		} else if (!hs || one_of(hs, down)) {
			r = call(b, host, "POST", id, "start", NULL, &reply);
			if (r == 202)
				set_host_state(b, id, reply);
			else if (r == 404)
				store_desktop_set_on_host(b->b_store, id, false);
		} else if (!strcmp(hs, "running")) {
			if (store_desktop_set_state(b->b_store, id, "provisioning", "ready", now) >
			    0)
				log_info("desktop=%s ready on host=%s", id, jstr(host, "id"));
		}
	} else if (!strcmp(state, "refreshing") || !strcmp(state, "deleting")) {
		if (on && one_of(hs, live)) {
			req = json_pack("{s:b}", "force", 1);
			r = req ? call(b, host, "POST", id, "stop", req, &reply) : -ENOMEM;
			json_decref(req);
			if (r == 202)
				set_host_state(b, id, reply);
		} else if (on && (!hs || one_of(hs, down))) {
			r = call(b, host, "DELETE", id, NULL, NULL, &reply);
			if (r == 200 || r == 404) {
				store_desktop_set_on_host(b->b_store, id, false);
				store_desktop_set_host_state(b->b_store, id, NULL);
			}
		} else if (!on && !strcmp(state, "refreshing")) {
			store_desktop_set_state(b->b_store, id, "refreshing", "provisioning", now);
		} else if (!on && !json_is_true(json_object_get(d, "in_use"))) {
			store_desktop_delete(b->b_store, id);
			log_info("desktop=%s deleted", id);
			if (json_is_true(json_object_get(pool, "deleting")))
				retire_pool(b, jstr(pool, "id"), now);
		}
	} else if (!strcmp(state, "ready") && on && one_of(hs, down)) {
		desktop_gone(b, d, pool, now);
	} else if (!strcmp(state, "lost")) {
		/* its host is back */
		store_desktop_set_state(b->b_store, id, "lost",
					jstr(d, "owner") ? "provisioning" : "deleting", now);
	}
	json_decref(reply);
}

static void desktops_tick(struct broker *b, int64_t now)
{
	json_t *desktops = store_desktops_list(b->b_store, NULL, NULL), *d;
	size_t i;

	json_array_foreach (desktops, i, d) {
		json_t *host, *pool;

		if (!jstr(d, "host_id"))
			continue; /* manual */
		host = store_host_get(b->b_store, jstr(d, "host_id"));
		pool = store_pool_get(b->b_store, jstr(d, "pool_id"));
		if (host && pool && json_is_true(json_object_get(host, "up")))
			reconcile(b, d, host, pool, now);
		else if (!host && !strcmp(jstr(d, "state"), "deleting"))
			store_desktop_delete(b->b_store, jstr(d, "id")); /* its host was removed */
		json_decref(host);
		json_decref(pool);
	}
	json_decref(desktops);
}

void broker_maintain(struct broker *b, int64_t now)
{
	json_t *down = store_hosts_expire(b->b_store, now - b->b_cfg->bc_host_timeout), *h;
	size_t i;

	json_array_foreach (down, i, h)
		host_lost(b, json_string_value(h), now);
	json_decref(down);
	sessions_tick(b, now);
	pools_tick(b, now);
	desktops_tick(b, now);
	if (now - b->b_last_purge >= PURGE_EVERY_S) {
		store_purge(b->b_store, now, now - 3600);
		b->b_last_purge = now;
	}
}

static void *maintenance_main(void *arg)
{
	struct broker *b = arg;

	pthread_mutex_lock(&b->b_lock);
	while (!b->b_stop) {
		struct timespec until;

		b->b_kicked = false;
		pthread_mutex_unlock(&b->b_lock);
		broker_maintain(b, (int64_t)time(NULL));
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += b->b_cfg->bc_maintenance_interval;
		pthread_mutex_lock(&b->b_lock);
		while (!b->b_stop && !b->b_kicked &&
		       pthread_cond_timedwait(&b->b_wake, &b->b_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&b->b_lock);
	return NULL;
}

int broker_start(struct broker *b)
{
	if (pthread_create(&b->b_thread, NULL, maintenance_main, b) != 0)
		return -EAGAIN;
	b->b_thread_running = true;
	return 0;
}

void broker_stop(struct broker *b)
{
	if (!b->b_thread_running)
		return;
	pthread_mutex_lock(&b->b_lock);
	b->b_stop = true;
	pthread_cond_signal(&b->b_wake);
	pthread_mutex_unlock(&b->b_lock);
	pthread_join(b->b_thread, NULL);
	b->b_thread_running = false;
}
