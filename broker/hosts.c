/* Hosts: their heartbeats (capacity, the desktops they run), hosts that went silent
 * (their desktops lost), and what placement sees of them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/internal.h"
#include "broker/metrics.h"
#include "lib/json.h"
#include "lib/log.h"
#include "policy/placement.h"

/* The host a new desktop of pool goes to, or NULL with *why. Returns a new string. */
/* Every known host, into hosts, and what placement sees of each (hl_n entries, freed
 * by the caller with host_list_free() and free()). NULL when the store or memory fails. */
static struct policy_host *host_views(struct broker *b, struct host_list *hosts)
{
	struct policy_host *ph;

	if (store_hosts_list(b->b_store, hosts) < 0)
		return NULL;
	ph = calloc(hosts->hl_n + 1, sizeof(*ph));
	if (!ph) {
		host_list_free(hosts);
		return NULL;
	}
	for (size_t i = 0; i < hosts->hl_n; i++)
		ph[i] = host_view(&hosts->hl_recs[i]);
	return ph;
}

char *hosts_place(struct broker *b, struct pool_view *pv, enum policy_reason *why)
{
	struct host_list hosts;
	struct policy_host *ph = host_views(b, &hosts);
	struct policy_placement pl;
	char *id = NULL;

	*why = POLICY_NO_HOST;
	if (!ph)
		return NULL;
	pl = policy_place(&pv->pv_pool, ph, hosts.hl_n);
	*why = pl.pl_reason;
	if (pl.pl_host)
		id = strdup(pl.pl_host->host_id);
	free(ph);
	host_list_free(&hosts);
	return id;
}

/* Why host h (up, enabled, allowed) cannot run the pool's engine, from its capacity
 * report: "<host>: <engine>: <reason>" appended to buf. */
static void add_engine_problem(const struct host_rec *h, unsigned engine, char *buf, size_t len)
{
	const json_t *cap = h->hr_capacity, *engines = json_object_get(cap, "engines");
	const char *name = engine == POLICY_ENGINE_VDIHV  ? "vdi-hv"
			   : engine == POLICY_ENGINE_QEMU ? "qemu"
			   : jstr(cap, "default_engine")  ? jstr(cap, "default_engine")
							  : "qemu";
	const char *why = jstr(json_object_get(engines, name), "reason");
	size_t used = strlen(buf);

	if (used + 1 < len)
		snprintf(buf + used, len - used, "%s%s: %s: %s", used ? "; " : "", h->hr_id, name,
			 why ? why : "not available");
}

enum policy_reason hosts_can_run(struct broker *b, const struct pool_view *pv, char *detail,
				 size_t len)
{
	const struct policy_pool *pp = &pv->pv_pool;
	struct policy_pool any_size = *pp;
	struct host_list hosts;
	struct policy_host *ph;
	enum policy_reason why;

	detail[0] = '\0';
	ph = host_views(b, &hosts);
	if (!ph)
		return POLICY_NO_HOST;
	/* Size aside: whether some host could run it at all. */
	any_size.pool_memory_mb = any_size.pool_vcpus = 0;
	for (size_t i = 0; i < hosts.hl_n; i++)
		ph[i].host_max_desktops = 0;
	why = policy_place(&any_size, ph, hosts.hl_n).pl_reason;
	if (why == POLICY_NO_CAPACITY)
		why = POLICY_OK;
	for (size_t i = 0; why == POLICY_NO_ENGINE && i < hosts.hl_n; i++)
		if (policy_place(&any_size, &ph[i], 1).pl_reason == POLICY_NO_ENGINE)
			add_engine_problem(&hosts.hl_recs[i], pp->pool_engine, detail, len);
	free(ph);
	host_list_free(&hosts);
	return why;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Integer key of o held to [lo, hi]: what a host reports is not trusted to be sane. */
static int64_t jint_clamped(const json_t *o, const char *key, int64_t lo, int64_t hi)
{
	return clamp(jint(o, key), lo, hi);
}

struct host_capacity host_capacity_of(const json_t *cap)
{
	int64_t cpus = jint_clamped(cap, "cpus", 0, HOST_CPUS_MAX);
	int64_t running = jint_clamped(cap, "desktops_running", 0, HOST_DESKTOPS_MAX);

	/* In 64 bits and from clamped operands: cannot overflow, and the result fits an
	 * int (from -HOST_DESKTOPS_MAX to HOST_CPUS_MAX * HOST_VCPU_OVERCOMMIT). */
	return (struct host_capacity){
	    .hc_mem_free_mib = jint_clamped(cap, "memory_available_mib", 0, HOST_MEMORY_MAX_MIB),
	    .hc_vcpus_free = (int)(cpus * HOST_VCPU_OVERCOMMIT - running),
	    .hc_desktops = (int)jint_clamped(cap, "desktops_defined", 0, HOST_DESKTOPS_MAX),
	    .hc_max_desktops = (int)jint_clamped(cap, "max_desktops", 0, HOST_DESKTOPS_MAX),
	};
}

/* The engines a host's last capacity report says are available, as POLICY_ENGINE_ bits;
 * a report without engines (none yet) says nothing against any. */
static unsigned host_engines(const json_t *cap)
{
	const json_t *engines = json_object_get(cap, "engines");
	const char *def = jstr(cap, "default_engine");
	const char *name;
	json_t *e;
	unsigned bits = 0;

	if (!json_is_object(engines))
		return ~0u;
	json_object_foreach ((json_t *)engines, name, e) {
		if (!json_is_true(json_object_get(e, "available")))
			continue;
		bits |= pool_engine_bit(name);
		if (def && !strcmp(def, name))
			bits |= POLICY_ENGINE_DEFAULT;
	}
	return bits;
}

struct policy_host host_view(const struct host_rec *h)
{
	/* The store holds clamped figures; clamped again so that a row written by an
	 * older broker cannot be truncated into something else by the casts. */
	return (struct policy_host){
	    .host_id = h->hr_id,
	    .host_engines = host_engines(h->hr_capacity),
	    .host_up = h->hr_state == HOST_UP,
	    .host_enabled = h->hr_enabled,
	    .host_mem_free_mb = clamp(h->hr_mem_free_mib, 0, HOST_MEMORY_MAX_MIB),
	    .host_vcpus_free = (int)clamp(h->hr_vcpus_free, -HOST_DESKTOPS_MAX,
					  (int64_t)HOST_CPUS_MAX * HOST_VCPU_OVERCOMMIT),
	    .host_desktops = (int)clamp(h->hr_desktops, 0, HOST_DESKTOPS_MAX),
	    .host_max_desktops = (int)clamp(h->hr_max_desktops, 0, HOST_DESKTOPS_MAX),
	};
}

/* Desktop d of a host gone silent: its sessions end, it is lost (what becomes of it is
 * decided when the host returns). Inside a transaction. */
static void desktop_lost(struct broker *b, const struct desktop_rec *d, const char *host,
			 int64_t now)
{
	char detail[200];

	snprintf(detail, sizeof(detail), "desktop=%s host=%s down", d->dr_id, host);
	desktop_out_of_service(b, d, NULL, DESKTOP_LOST, now, detail);
	log_warnx("desktop=%s host=%s: lost", d->dr_id, host);
	broker_metrics_desktop_failure(BROKER_FAILURE_HOST_DOWN);
}

static void host_lost(struct broker *b, const char *host, int64_t now)
{
	struct desktop_list desktops = {0};

	log_warnx("host=%s down: no heartbeat for %ds; its desktops are lost", host,
		  b->b_cfg->bc_host_timeout);
	if (store_begin(b->b_store) < 0)
		return;
	broker_audit(b, NULL, "host_down", host, "success", NULL, "no heartbeat for %ds",
		     b->b_cfg->bc_host_timeout);
	store_desktops_list(b->b_store, NULL, host, &desktops);
	for (size_t i = 0; i < desktops.dl_n; i++)
		if (desktops.dl_recs[i].dr_state != DESKTOP_DELETING)
			desktop_lost(b, &desktops.dl_recs[i], host, now);
	desktop_list_free(&desktops);
	if (store_commit(b->b_store) < 0)
		log_warnx("host=%s: cannot record it down", host);
}

void hosts_expire(struct broker *b, int64_t now)
{
	struct host_list down;

	store_hosts_expire(b->b_store, now - b->b_cfg->bc_host_timeout, &down);
	for (size_t i = 0; i < down.hl_n; i++)
		host_lost(b, down.hl_recs[i].hr_id, now);
	host_list_free(&down);
}

/* The same refusal is logged again after this many seconds (heartbeats repeat it every
 * interval). */
#define IDENTITY_LOG_EVERY_S 60

void hosts_identity_refused(struct broker *b, const char *host, const char *fmt, ...)
{
	int64_t now = (int64_t)time(NULL), logged = now;
	struct host_rec h;
	const json_t *old;
	char msg[400];
	va_list ap;
	bool known;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* (a heartbeat may name any id: only registered hosts get an entry) */
	known = store_host_get(b->b_store, host, &h) == 0;
	host_rec_release(&h);
	if (!known) {
		log_info("host=%.64s (not registered): %s", host, msg);
		return;
	}
	pthread_mutex_lock(&b->b_alerts_lock);
	old = json_object_get(b->b_host_alerts, host);
	if (old && !strcmp(jstr(old, "message"), msg) &&
	    now - jint(old, "logged") < IDENTITY_LOG_EVERY_S)
		logged = jint(old, "logged");
	json_object_set_new(b->b_host_alerts, host,
			    json_pack("{s:s, s:I, s:I}", "message", msg, "time", (json_int_t)now,
				      "logged", (json_int_t)logged));
	pthread_mutex_unlock(&b->b_alerts_lock);
	if (logged == now)
		log_warnx("host=%.64s: %s", host, msg);
}

void hosts_identity_proven(struct broker *b, const char *host)
{
	pthread_mutex_lock(&b->b_alerts_lock);
	json_object_del(b->b_host_alerts, host);
	pthread_mutex_unlock(&b->b_alerts_lock);
}

json_t *hosts_identity_alert(struct broker *b, const char *host)
{
	json_t *a;

	pthread_mutex_lock(&b->b_alerts_lock);
	a = json_deep_copy(json_object_get(b->b_host_alerts, host));
	pthread_mutex_unlock(&b->b_alerts_lock);
	json_object_del(a, "logged");
	return a;
}

static const struct json_field heartbeat_fields[] = {
    {"host_id", JSON_FIELD_STRING, true},
    {"time", JSON_FIELD_INT, false},
    {"capacity", JSON_FIELD_ANY, false},
    {"desktops", JSON_FIELD_ANY, false},
    JSON_FIELDS_END,
};

/* Desktop d has just failed on its host, for cause: its pool's run of failures grows
 * (and with it the wait before the pool's next start); at degraded_after failures in a
 * row the pool is degraded, which the log and the audit say once. */
static void desktop_failed(struct broker *b, const struct desktop_rec *d, const char *cause,
			   const json_t *detail, int64_t now)
{
	if (!cause)
		cause = "its host reports it failed, without a reason";
	store_desktop_set_failure(b->b_store, d->dr_id, cause, detail);
	broker_metrics_desktop_failure(BROKER_FAILURE_FAILED);
	pool_count_failure(b, d, cause, now);
}

/* What a host may say of a failure, at most: the broker keeps it and shows it. */
#define FAILURE_TEXT_MAX 300
#define FAILURE_TAIL_MAX 20

static bool failure_text_ok(const char *s)
{
	return s && strnlen(s, FAILURE_TEXT_MAX + 1) <= FAILURE_TEXT_MAX;
}

/* The failure cause a heartbeat gives for a desktop ("failure": {reason, exit,
 * serial_tail}; an older hostd's "failure_reason"), or NULL; *detail gets a new object
 * with what else it says within the limits above (or NULL). */
static const char *failure_cause(const json_t *item, json_t **detail)
{
	const json_t *f = json_object_get(item, "failure"),
		     *tail = json_object_get(f, "serial_tail");
	const char *reason = jstr(f, "reason") ? jstr(f, "reason") : jstr(item, "failure_reason");
	json_t *lines = json_array(), *line;
	size_t i, from = json_array_size(tail) > FAILURE_TAIL_MAX
			     ? json_array_size(tail) - FAILURE_TAIL_MAX
			     : 0;

	*detail = NULL;
	for (i = from; lines && i < json_array_size(tail); i++) {
		line = json_array_get(tail, i);
		json_array_append_new(lines, json_string(failure_text_ok(json_string_value(line))
							     ? json_string_value(line)
							     : "(line too long)"));
	}
	if (lines && (failure_text_ok(jstr(f, "exit")) || json_array_size(lines)))
		*detail = json_pack("{s:s?, s:O}", "exit",
				    failure_text_ok(jstr(f, "exit")) ? jstr(f, "exit") : NULL,
				    "serial_tail", lines);
	json_decref(lines);
	return reason;
}

/* What the host says of each of its desktops ("missing" when it does not list one the
 * broker put there), recorded where it changed. Returns whether anything did. */
static bool record_desktop_states(struct broker *b, const char *host, const json_t *listed)
{
	int64_t now = (int64_t)time(NULL);
	struct desktop_list ours;
	bool changed = false;
	json_t *item;
	size_t j;

	if (store_desktops_list(b->b_store, NULL, host, &ours) < 0)
		return false;
	for (size_t i = 0; i < ours.dl_n; i++) {
		const struct desktop_rec *d = &ours.dl_recs[i];
		const char *state = "missing", *cause = NULL;
		json_t *detail = NULL;

		json_array_foreach ((json_t *)listed, j, item)
			if (jstr(item, "id") && !strcmp(jstr(item, "id"), d->dr_id) &&
			    jstr(item, "state")) {
				state = jstr(item, "state");
				json_decref(detail);
				cause = failure_cause(item, &detail);
			}
		if (!d->dr_on_host && !strcmp(state, "missing"))
			continue;
		if (!d->dr_host_state || strcmp(d->dr_host_state, state)) {
			store_desktop_set_host_state(b->b_store, d->dr_id, state);
			if (!strcmp(state, "failed") && d->dr_state != DESKTOP_DELETING &&
			    d->dr_state != DESKTOP_REFRESHING)
				desktop_failed(b, d, cause, detail, now);
			changed = true;
		}
		json_decref(detail);
	}
	desktop_list_free(&ours);
	return changed;
}

enum broker_outcome broker_heartbeat(struct broker *b, const json_t *body, const char *cert_name,
				     struct broker_result *res)
{
	const char *host = jstr(body, "host_id");
	json_t *cap = json_object_get(body, "capacity"),
	       *listed = json_object_get(body, "desktops");
	int64_t now = (int64_t)time(NULL);
	struct host_capacity hc;
	bool changed = false;
	int r;

	memset(res, 0, sizeof(*res));
	if (json_check_fields(body, heartbeat_fields, res->br_message, sizeof(res->br_message)) <
	    0) {
		res->br_outcome = BROKER_BAD_REQUEST;
		return res->br_outcome;
	}
	if ((cap && !json_is_object(cap)) || (listed && !json_is_array(listed)))
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL,
					 "capacity must be an object and desktops an array");
	/* Every host's certificate comes from the same CA: only its name tells which host
	 * holds it, and a host must not report (or hide) another's desktops. */
	if (!cert_name || strcmp(cert_name, host)) {
		hosts_identity_refused(b, host,
				       "heartbeat refused: the host certificate presented names "
				       "%s%.64s%s; a host sends heartbeats for its own id only",
				       cert_name ? "'" : "", cert_name ? cert_name : "no host",
				       cert_name ? "'" : "");
		return broker_result_set(res, BROKER_WRONG_HOST, NULL,
					 "the host certificate names %s%.64s%s, not host '%.64s'",
					 cert_name ? "'" : "", cert_name ? cert_name : "no host",
					 cert_name ? "'" : "", host);
	}
	hc = host_capacity_of(cap);
	r = store_host_heartbeat(b->b_store, host, now, hc.hc_mem_free_mib, hc.hc_vcpus_free,
				 hc.hc_desktops, hc.hc_max_desktops, cap);
	if (r < 0) /* (a store failure is answered the same way: the host retries) */
		return broker_result_set(res,
					 r == -ENOENT ? BROKER_UNKNOWN_HOST : BROKER_BAD_REQUEST,
					 NULL, "host '%.64s' is not registered", host);
	if (r == 1) {
		log_info("host=%s up", host);
		broker_audit(b, NULL, "host_up", host, "success", NULL, NULL);
		changed = true;
	}
	if (record_desktop_states(b, host, listed))
		changed = true;
	if (changed)
		broker_kick(b);
	return broker_result_set(res, BROKER_OK, NULL, "recorded");
}
