/* The broker's metrics and readiness (see metrics.h): the counters other files bump, and
 * the scrape, which adds what the store says now. Not HTTP (api.c serves it) and no
 * decisions: it only counts and reads. */
#include "broker/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/internal.h"
#include "broker/store.h"
#include "lib/metrics.h"

/* What each outcome is called in a result label. */
static const char *const outcome_names[BROKER_OUTCOMES] = {
    [BROKER_OK] = "ok",
    [BROKER_STARTING] = "starting",
    [BROKER_BAD_REQUEST] = "bad_request",
    [BROKER_BAD_CREDENTIALS] = "bad_credentials",
    [BROKER_DENIED] = "denied",
    [BROKER_NOT_FOUND] = "not_found",
    [BROKER_UNKNOWN_HOST] = "unknown_host",
    [BROKER_WRONG_HOST] = "wrong_host",
    [BROKER_EXISTS] = "exists",
    [BROKER_BUSY] = "busy",
    [BROKER_LOGGED_OFF] = "logged_off",
    [BROKER_AUTOMATED_POOL] = "automated_pool",
    [BROKER_LIMIT] = "limit",
    [BROKER_THROTTLED] = "throttled",
    [BROKER_INTERNAL] = "internal",
    [BROKER_UNAVAILABLE] = "unavailable",
    [BROKER_NO_CAPACITY] = "no_capacity",
    [BROKER_HOST_UNAVAILABLE] = "host_unavailable",
    [BROKER_DIRECTORY_UNAVAILABLE] = "directory_unavailable",
    [BROKER_PASSWORD_CHANGE] = "password_change_required",
    [BROKER_ACCOUNT_DISABLED] = "account_disabled",
    [BROKER_ACCOUNT_EXPIRED] = "account_expired",
    [BROKER_ACCOUNT_LOCKED] = "account_locked",
    [BROKER_PASSWORD_REJECTED] = "password_rejected",
    [BROKER_PASSWORD_FIXED] = "password_change_not_allowed",
    [BROKER_LOGINS_BUSY] = "logins_busy",
    [BROKER_DESKTOP_FAILED] = "desktop_failed",
};

/* An outcome's label value; "other" for one without a name here yet. */
static const char *outcome_name(int o)
{
	return o >= 0 && o < BROKER_OUTCOMES && outcome_names[o] ? outcome_names[o] : "other";
}

/* Results shown even before they happen (so a rate over them starts at 0). */
static const enum broker_outcome login_results[] = {
    BROKER_OK,		BROKER_BAD_CREDENTIALS,	      BROKER_THROTTLED,
    BROKER_LOGINS_BUSY, BROKER_DIRECTORY_UNAVAILABLE, BROKER_UNAVAILABLE,
};
static const enum broker_outcome connect_results[] = {
    BROKER_OK,		BROKER_STARTING,	 BROKER_DENIED,
    BROKER_NO_CAPACITY, BROKER_HOST_UNAVAILABLE, BROKER_DESKTOP_FAILED,
};

static const char *const failure_names[BROKER_FAILURES] = {
    [BROKER_FAILURE_STOPPED] = "stopped",
    [BROKER_FAILURE_FAILED] = "failed",
    [BROKER_FAILURE_MISSING] = "missing",
    [BROKER_FAILURE_PROVISION_TIMEOUT] = "provision_timeout",
    [BROKER_FAILURE_HOST_DOWN] = "host_down",
    [BROKER_FAILURE_TEMPLATE] = "template",
};

static const double connect_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static struct {
	struct metrics_counter logins[BROKER_OUTCOMES];
	struct metrics_counter connects[BROKER_OUTCOMES];
	struct metrics_histogram connect_seconds;
	struct metrics_counter failures[BROKER_FAILURES];
	struct metrics_counter restarts;
	struct metrics_counter gw_websocket, gw_tunnel;
	struct metrics_gauge gw_open;
	struct metrics_counter gw_from_client, gw_to_client;
} m = {
    .connect_seconds = METRICS_HISTOGRAM(connect_bounds),
};

void broker_metrics_login(enum broker_outcome o)
{
	if (o < BROKER_OUTCOMES)
		metrics_counter_add(&m.logins[o], 1);
}

void broker_metrics_connect(enum broker_outcome o, double seconds)
{
	if (o < BROKER_OUTCOMES)
		metrics_counter_add(&m.connects[o], 1);
	metrics_histogram_observe(&m.connect_seconds, seconds);
}

void broker_metrics_desktop_gone(const char *host_state)
{
	/* "failed" was counted when the heartbeat said so (broker_metrics_desktop_failure) */
	if (host_state && !strcmp(host_state, failure_names[BROKER_FAILURE_STOPPED]))
		broker_metrics_desktop_failure(BROKER_FAILURE_STOPPED);
	else if (host_state && !strcmp(host_state, failure_names[BROKER_FAILURE_MISSING]))
		broker_metrics_desktop_failure(BROKER_FAILURE_MISSING);
}

void broker_metrics_desktop_failure(enum broker_desktop_failure why)
{
	if (why < BROKER_FAILURES)
		metrics_counter_add(&m.failures[why], 1);
}

void broker_metrics_desktop_restart(void)
{
	metrics_counter_add(&m.restarts, 1);
}

void broker_metrics_gateway_open(bool websocket)
{
	metrics_counter_add(websocket ? &m.gw_websocket : &m.gw_tunnel, 1);
	metrics_gauge_add(&m.gw_open, 1);
}

void broker_metrics_gateway_close(uint64_t from_client, uint64_t to_client)
{
	metrics_gauge_add(&m.gw_open, -1);
	metrics_counter_add(&m.gw_from_client, from_client);
	metrics_counter_add(&m.gw_to_client, to_client);
}

/* ---- the scrape ---- */

static bool listed(const enum broker_outcome *list, size_t n, enum broker_outcome o)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == o)
			return true;
	return false;
}

static void outcomes(struct metrics_text *t, const char *name, struct metrics_counter *c,
		     const enum broker_outcome *always, size_t nalways)
{
	uint64_t other = 0;

	for (int o = 0; o < BROKER_OUTCOMES; o++) {
		uint64_t v = metrics_counter_get(&c[o]);

		if (!outcome_names[o])
			other += v; /* one sample for all of them: names are unique */
		else if (v || listed(always, nalways, (enum broker_outcome)o))
			metrics_sample(t, name, (double)v, "result", outcome_name(o), NULL);
	}
	if (other)
		metrics_sample(t, name, (double)other, "result", "other", NULL);
}

static void events(struct metrics_text *t, struct broker *b)
{
	metrics_family(t, "vdi_broker_logins_total", "counter",
		       "Login requests by result (ok, bad_credentials: wrong user name or "
		       "password, throttled, logins_busy, directory_unavailable, unavailable...).");
	outcomes(t, "vdi_broker_logins_total", m.logins, login_results,
		 sizeof(login_results) / sizeof(login_results[0]));
	metrics_family(t, "vdi_broker_connects_total", "counter",
		       "Desktop connect requests by result (ok: a ticket, starting: retry "
		       "later, or why not).");
	outcomes(t, "vdi_broker_connects_total", m.connects, connect_results,
		 sizeof(connect_results) / sizeof(connect_results[0]));
	metrics_family(t, "vdi_broker_connect_seconds", "histogram",
		       "Time to answer a desktop connect request.");
	metrics_histogram_write(t, "vdi_broker_connect_seconds", &m.connect_seconds, NULL, NULL);
	metrics_family(t, "vdi_broker_desktop_failures_total", "counter",
		       "Desktops found not running that should have: stopped, failed or missing "
		       "on their host, provision_timeout, host_down.");
	for (int i = 0; i < BROKER_FAILURES; i++)
		metrics_sample(t, "vdi_broker_desktop_failures_total",
			       (double)metrics_counter_get(&m.failures[i]), "reason",
			       failure_names[i], NULL);
	metrics_family(t, "vdi_broker_desktop_restarts_total", "counter",
		       "Owned desktops provisioned again after a failure or a lost host.");
	metrics_sample(t, "vdi_broker_desktop_restarts_total",
		       (double)metrics_counter_get(&m.restarts), NULL);
	metrics_family(t, "vdi_broker_gateway_connections_total", "counter",
		       "Display connections through the gateway, by protocol.");
	metrics_sample(t, "vdi_broker_gateway_connections_total",
		       (double)metrics_counter_get(&m.gw_websocket), "protocol", "websocket", NULL);
	metrics_sample(t, "vdi_broker_gateway_connections_total",
		       (double)metrics_counter_get(&m.gw_tunnel), "protocol", "tunnel", NULL);
	metrics_family(t, "vdi_broker_gateway_connections_open", "gauge",
		       "Display connections through the gateway now.");
	metrics_sample(t, "vdi_broker_gateway_connections_open",
		       (double)metrics_gauge_get(&m.gw_open), NULL);
	metrics_family(t, "vdi_broker_gateway_bytes_total", "counter",
		       "Bytes through the gateway (client side, framing included), counted "
		       "when a connection ends.");
	metrics_sample(t, "vdi_broker_gateway_bytes_total",
		       (double)metrics_counter_get(&m.gw_from_client), "direction", "from_client",
		       NULL);
	metrics_sample(t, "vdi_broker_gateway_bytes_total",
		       (double)metrics_counter_get(&m.gw_to_client), "direction", "to_client",
		       NULL);
	metrics_family(t, "vdi_broker_store_transaction_seconds", "histogram",
		       "Store write transactions, from begin (waiting for the lock included) to "
		       "commit or rollback.");
	metrics_histogram_write(t, "vdi_broker_store_transaction_seconds",
				store_transaction_seconds(b->b_store), NULL, NULL);
}

static void sessions(struct metrics_text *t, struct broker *b)
{
	struct session_list l;
	int n[2] = {0, 0};

	if (store_sessions_list(b->b_store, NULL, NULL, true, &l) < 0) {
		session_list_free(&l);
		return;
	}
	for (size_t i = 0; i < l.sl_n; i++)
		if (l.sl_recs[i].sr_state == SESSION_CONNECTED ||
		    l.sl_recs[i].sr_state == SESSION_DISCONNECTED)
			n[l.sl_recs[i].sr_state]++;
	session_list_free(&l);
	metrics_family(t, "vdi_broker_sessions", "gauge",
		       "Live desktop sessions by state (connected, disconnected).");
	metrics_sample(t, "vdi_broker_sessions", n[SESSION_CONNECTED], "state",
		       session_state_name(SESSION_CONNECTED), NULL);
	metrics_sample(t, "vdi_broker_sessions", n[SESSION_DISCONNECTED], "state",
		       session_state_name(SESSION_DISCONNECTED), NULL);
}

#define ENGINES_MAX 8

/* The engine of pool's desktops: "manual", the template's, or "default" (the host's
 * default_engine). */
static const char *pool_engine(const struct pool_rec *p)
{
	const char *e;

	if (p->pr_source == POOL_MANUAL)
		return "manual";
	e = p->pr_template ? json_string_value(json_object_get(p->pr_template, "engine")) : NULL;
	return e && (!strcmp(e, "qemu") || !strcmp(e, "vdi-hv")) ? e : "default";
}

static const struct pool_rec *find_pool(const struct pool_list *pools, const char *id)
{
	for (size_t i = 0; id && i < pools->pl_n; i++)
		if (!strcmp(pools->pl_recs[i].pr_id, id))
			return &pools->pl_recs[i];
	return NULL;
}

static const enum desktop_state desktop_states[] = {
    DESKTOP_PROVISIONING, DESKTOP_READY, DESKTOP_STOPPED, DESKTOP_REFRESHING,
    DESKTOP_DELETING,	  DESKTOP_ERROR, DESKTOP_LOST,
};
#define NSTATES (sizeof(desktop_states) / sizeof(desktop_states[0]))

static void desktops_and_pools(struct metrics_text *t, struct broker *b)
{
	static const char *const engine_names[] = {"qemu", "vdi-hv", "default", "manual",
						   "unknown"};
	enum { NENGINES = sizeof(engine_names) / sizeof(engine_names[0]) };
	int count[NENGINES][NSTATES] = {{0}};
	struct desktop_list dl = {0};
	struct pool_list pl = {0};

	if (store_pools_list(b->b_store, &pl) < 0 ||
	    store_desktops_list(b->b_store, NULL, NULL, &dl) < 0) {
		desktop_list_free(&dl);
		pool_list_free(&pl);
		return;
	}
	for (size_t i = 0; i < dl.dl_n; i++) {
		const struct pool_rec *p = find_pool(&pl, dl.dl_recs[i].dr_pool);
		const char *e = p ? pool_engine(p) : "unknown";
		size_t ei = 0, si = 0;

		while (ei < NENGINES - 1 && strcmp(engine_names[ei], e))
			ei++;
		while (si < NSTATES && desktop_states[si] != dl.dl_recs[i].dr_state)
			si++;
		if (si < NSTATES)
			count[ei][si]++;
	}
	metrics_family(t, "vdi_broker_desktops", "gauge",
		       "Desktops by the state the broker wants (provisioning, ready, stopped, "
		       "refreshing, deleting, error, lost) and engine (qemu, vdi-hv, default: "
		       "the host's default, manual).");
	for (size_t ei = 0; ei < NENGINES; ei++) {
		bool used = ei < 2; /* qemu and vdi-hv always, the others when they occur */

		for (size_t si = 0; si < NSTATES; si++)
			used = used || count[ei][si];
		for (size_t si = 0; used && si < NSTATES; si++)
			metrics_sample(t, "vdi_broker_desktops", count[ei][si], "state",
				       desktop_state_name(desktop_states[si]), "engine",
				       engine_names[ei], NULL);
	}

	metrics_family(t, "vdi_broker_pool_desktops", "gauge", "Desktops of each pool.");
	for (size_t p = 0; p < pl.pl_n; p++) {
		int n = 0;

		for (size_t i = 0; i < dl.dl_n; i++)
			n += !strcmp(dl.dl_recs[i].dr_pool, pl.pl_recs[p].pr_id);
		metrics_sample(t, "vdi_broker_pool_desktops", n, "pool", pl.pl_recs[p].pr_id, NULL);
	}
	metrics_family(t, "vdi_broker_pool_spare_desktops", "gauge",
		       "Spare desktops of each pool: ready, without an owner and not in use.");
	for (size_t p = 0; p < pl.pl_n; p++) {
		int n = 0;

		for (size_t i = 0; i < dl.dl_n; i++) {
			const struct desktop_rec *d = &dl.dl_recs[i];

			n += !strcmp(d->dr_pool, pl.pl_recs[p].pr_id) &&
			     d->dr_state == DESKTOP_READY && !d->dr_owner && !d->dr_in_use;
		}
		metrics_sample(t, "vdi_broker_pool_spare_desktops", n, "pool", pl.pl_recs[p].pr_id,
			       NULL);
	}
	metrics_family(t, "vdi_broker_pool_failures", "gauge",
		       "Desktops of each pool that failed on their host in a row (none ready "
		       "since); degraded_after or more: the pool is degraded.");
	for (size_t p = 0; p < pl.pl_n; p++)
		metrics_sample(t, "vdi_broker_pool_failures", pl.pl_recs[p].pr_failures, "pool",
			       pl.pl_recs[p].pr_id, NULL);
	metrics_family(t, "vdi_broker_pool_spare_target", "gauge",
		       "Spare desktops each automated pool is configured to keep (spare).");
	for (size_t p = 0; p < pl.pl_n; p++)
		metrics_sample(t, "vdi_broker_pool_spare_target",
			       pl.pl_recs[p].pr_source == POOL_AUTOMATED ? pl.pl_recs[p].pr_spare
									 : 0,
			       "pool", pl.pl_recs[p].pr_id, NULL);
	desktop_list_free(&dl);
	pool_list_free(&pl);
}

/* A number from the host's last capacity report, or -1. */
static double capacity(const struct host_rec *h, const char *key)
{
	json_t *v = h->hr_capacity ? json_object_get(h->hr_capacity, key) : NULL;

	return json_is_integer(v) ? (double)json_integer_value(v) : -1;
}

static void hosts(struct metrics_text *t, struct broker *b)
{
	static const struct {
		const char *name, *help, *key;
		double scale;
	} figures[] = {
	    {"vdi_broker_host_cpus", "CPUs of each host (its last heartbeat; -1: unknown).", "cpus",
	     1},
	    {"vdi_broker_host_memory_total_bytes", "Memory of each host (-1: unknown).",
	     "memory_total_mib", 1048576},
	    {"vdi_broker_host_memory_available_bytes",
	     "Memory available on each host (-1: unknown).", "memory_available_mib", 1048576},
	    {"vdi_broker_host_desktops_running", "Desktops with a VMM on each host.",
	     "desktops_running", 1},
	    {"vdi_broker_host_max_desktops", "Desktops each host takes at most.", "max_desktops",
	     1},
	};
	struct host_list l;

	if (store_hosts_list(b->b_store, &l) < 0) {
		host_list_free(&l);
		return;
	}
	metrics_family(t, "vdi_broker_host_up", "gauge",
		       "Whether each registered host sends heartbeats (1) or is down (0).");
	for (size_t i = 0; i < l.hl_n; i++)
		metrics_sample(t, "vdi_broker_host_up", l.hl_recs[i].hr_state == HOST_UP, "host",
			       l.hl_recs[i].hr_id, NULL);
	metrics_family(t, "vdi_broker_host_vcpus_free", "gauge",
		       "vCPUs placement may still use on each host (4 per CPU, less those "
		       "running).");
	for (size_t i = 0; i < l.hl_n; i++)
		metrics_sample(t, "vdi_broker_host_vcpus_free", l.hl_recs[i].hr_vcpus_free, "host",
			       l.hl_recs[i].hr_id, NULL);
	for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
		metrics_family(t, figures[f].name, "gauge", figures[f].help);
		for (size_t i = 0; i < l.hl_n; i++) {
			double v = capacity(&l.hl_recs[i], figures[f].key);

			metrics_sample(t, figures[f].name, v < 0 ? -1 : v * figures[f].scale,
				       "host", l.hl_recs[i].hr_id, NULL);
		}
	}
	host_list_free(&l);
}

char *broker_metrics_text(struct broker *b)
{
	struct metrics_text t;
	bool up = store_schema_version(b->b_store) >= 0;

	metrics_text_init(&t);
	metrics_family(&t, "vdi_broker_store_up", "gauge",
		       "Whether the store answers (1) or not (0); the figures read from it are "
		       "left out when not.");
	metrics_sample(&t, "vdi_broker_store_up", up, NULL);
	events(&t, b);
	if (up) {
		sessions(&t, b);
		desktops_and_pools(&t, b);
		hosts(&t, b);
	}
	return metrics_text_take(&t);
}

bool broker_ready(struct broker *b, char *why, size_t len)
{
	if (!b->b_store) {
		snprintf(why, len, "the store is not open");
		return false;
	}
	if (store_schema_version(b->b_store) < 0) {
		snprintf(why, len, "the store does not answer");
		return false;
	}
	return true;
}
