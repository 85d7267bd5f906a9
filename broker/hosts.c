/* Hosts: their heartbeats (capacity, the desktops they run), hosts that went silent
 * (their desktops lost), and what placement sees of them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/internal.h"
#include "lib/json.h"
#include "lib/log.h"
#include "policy/placement.h"

/* The host a new desktop of pool goes to, or NULL with *why. Returns a new string. */
char *hosts_place(struct broker *b, struct pool_view *pv, enum policy_reason *why)
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

/* Integer key of o held to [lo, hi]: what a host reports is not trusted to be sane. */
static int64_t jint_clamped(const json_t *o, const char *key, int64_t lo, int64_t hi)
{
	int64_t v = jint(o, key);

	return v < lo ? lo : v > hi ? hi : v;
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

struct policy_host host_view(const json_t *h)
{
	/* The store holds clamped figures; clamped again so that a row written by an
	 * older broker cannot be truncated into something else by the casts. */
	return (struct policy_host){
	    .host_id = jstr(h, "id"),
	    .host_up = json_is_true(json_object_get(h, "up")),
	    .host_enabled = json_is_true(json_object_get(h, "enabled")),
	    .host_mem_free_mb = jint_clamped(h, "mem_free_mib", 0, HOST_MEMORY_MAX_MIB),
	    .host_vcpus_free = (int)jint_clamped(h, "vcpus_free", -HOST_DESKTOPS_MAX,
						 (int64_t)HOST_CPUS_MAX * HOST_VCPU_OVERCOMMIT),
	    .host_desktops = (int)jint_clamped(h, "desktops", 0, HOST_DESKTOPS_MAX),
	    .host_max_desktops = (int)jint_clamped(h, "max_desktops", 0, HOST_DESKTOPS_MAX),
	};
}

/* Desktop d of a host gone silent: its sessions end, it is lost (what becomes of it is
 * decided when the host returns). Inside a transaction. */
static void desktop_lost(struct broker *b, const struct desktop_rec *d, const char *host,
			 int64_t now)
{
	json_t *pool = store_pool_get(b->b_store, d->dr_pool);
	struct pool_view pv;
	char detail[200];

	if (pool && pool_view_init(&pv, pool) != -ENOMEM) {
		snprintf(detail, sizeof(detail), "desktop=%s host=%s down", d->dr_id, host);
		sessions_desktop_lost(b, d, &pv, now, detail);
		pool_view_free(&pv);
	}
	json_decref(pool);
	store_desktop_set_state(b->b_store, d->dr_id, DESKTOP_ANY, DESKTOP_LOST, now);
	log_warnx("desktop=%s host=%s: lost", d->dr_id, host);
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
	json_t *down = store_hosts_expire(b->b_store, now - b->b_cfg->bc_host_timeout), *h;
	size_t i;

	json_array_foreach (down, i, h)
		host_lost(b, json_string_value(h), now);
	json_decref(down);
}

static const struct json_field heartbeat_fields[] = {
    {"host_id", JSON_FIELD_STRING, true},
    {"time", JSON_FIELD_INT, false},
    {"capacity", JSON_FIELD_ANY, false},
    {"desktops", JSON_FIELD_ANY, false},
    JSON_FIELDS_END,
};

/* What the host says of each of its desktops ("missing" when it does not list one the
 * broker put there), recorded where it changed. Returns whether anything did. */
static bool record_desktop_states(struct broker *b, const char *host, const json_t *listed)
{
	struct desktop_list ours;
	bool changed = false;
	json_t *item;
	size_t j;

	if (store_desktops_list(b->b_store, NULL, host, &ours) < 0)
		return false;
	for (size_t i = 0; i < ours.dl_n; i++) {
		const struct desktop_rec *d = &ours.dl_recs[i];
		const char *state = "missing";

		json_array_foreach ((json_t *)listed, j, item)
			if (jstr(item, "id") && !strcmp(jstr(item, "id"), d->dr_id) &&
			    jstr(item, "state"))
				state = jstr(item, "state");
		if (!d->dr_on_host && !strcmp(state, "missing"))
			continue;
		if (!d->dr_host_state || strcmp(d->dr_host_state, state)) {
			store_desktop_set_host_state(b->b_store, d->dr_id, state);
			changed = true;
		}
	}
	desktop_list_free(&ours);
	return changed;
}

enum broker_outcome broker_heartbeat(struct broker *b, const json_t *body,
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
