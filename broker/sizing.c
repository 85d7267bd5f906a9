/* Pools kept at their size (policy_maintain() and placement create or delete desktops)
 * and pools being deleted retired once their desktops are gone. Runs in the
 * maintenance pass. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/internal.h"
#include "lib/log.h"
#include "policy/maintain.h"
#include "policy/placement.h"

/* Creates m->pm_create desktops of pool pv on the hosts placement picks (fewer when
 * they are full). Inside the transaction. Returns 0, or -errno when nothing could be
 * placed (the hosts could not be read). */
static int pool_grow(struct broker *b, struct pool_view *pv, const char *pid,
		     const struct policy_maintenance *m, int64_t now)
{
	struct host_list hosts;
	int r = store_hosts_list(b->b_store, &hosts);
	struct policy_host *ph = calloc(hosts.hl_n + 1, sizeof(*ph));
	const struct policy_host **where = calloc((size_t)m->pm_create, sizeof(*where));
	enum policy_reason why;
	size_t i, placed;

	if (r < 0 || !ph || !where) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < hosts.hl_n; i++)
		ph[i] = host_view(&hosts.hl_recs[i]);
	placed = policy_place_many(&pv->pv_pool, ph, hosts.hl_n, (size_t)m->pm_create, where, &why);
	for (i = 0; i < placed; i++) {
		char id[48];

		snprintf(id, sizeof(id), "%s-", pid);
		if (random_hex(id + strlen(id), 4) < 0 ||
		    store_desktop_add(b->b_store, id, pid, where[i]->host_id, NULL, NULL, NULL,
				      DESKTOP_PROVISIONING, now) < 0)
			break;
		log_info("pool=%s: desktop=%s to be created on host=%s (%s)", pid, id,
			 where[i]->host_id, policy_reason_name(m->pm_reason));
	}
	if (placed < (size_t)m->pm_create)
		log_debug("pool=%s: %d desktop(s) wanted, %zu placed: %s", pid, m->pm_create,
			  placed, policy_reason_name(why));
out:
	free(ph);
	free((void *)where);
	host_list_free(&hosts);
	return r;
}

/* Marks m->pm_destroy ready, unused, unowned desktops of pool pid for deletion. Inside
 * the transaction. */
static void pool_shrink(struct broker *b, struct desktop_list *desktops, const char *pid,
			const struct policy_maintenance *m, int64_t now)
{
	for (int k = 0; k < m->pm_destroy; k++) {
		for (size_t i = 0; i < desktops->dl_n; i++) {
			struct desktop_rec *d = &desktops->dl_recs[i];

			if (d->dr_state == DESKTOP_READY && !d->dr_in_use && !d->dr_owner) {
				store_desktop_set_state(b->b_store, d->dr_id, DESKTOP_READY,
							DESKTOP_DELETING, now);
				d->dr_state = DESKTOP_DELETING;
				log_info("pool=%s: desktop=%s to be deleted (%s)", pid, d->dr_id,
					 policy_reason_name(m->pm_reason));
				break;
			}
		}
	}
}

/* An automated pool brought to the size policy_maintain() asks for, in a transaction. */
static void size_pool(struct broker *b, const struct pool_rec *pool, int64_t now)
{
	const char *pid = pool->pr_id;
	struct policy_desktop *pd = NULL;
	struct policy_pool_counts c;
	struct policy_maintenance m;
	struct desktop_list desktops = {0};
	struct pool_view pv;

	if (store_begin(b->b_store) < 0)
		return;
	if (pool_view_init(&pv, pool) < 0)
		goto out;
	if (store_desktops_list(b->b_store, pid, NULL, &desktops) < 0)
		goto out;
	pd = calloc(desktops.dl_n + 1, sizeof(*pd));
	if (!pd)
		goto out;
	pool_desktops_view(&desktops, pd);
	c = policy_count_desktops(pd, desktops.dl_n);
	m = policy_maintain(&pv.pv_pool, &c);
	if (m.pm_create <= 0 || pool_grow(b, &pv, pid, &m, now) == 0)
		pool_shrink(b, &desktops, pid, &m, now);
out:
	if (store_commit(b->b_store) < 0)
		log_warnx("pool=%s: cannot record its maintenance", pid);
	free(pd);
	desktop_list_free(&desktops);
	pool_view_free(&pv);
}

/* A deleting pool: its desktops go; once none is left, the pool. */
void pool_retire(struct broker *b, const char *pid, int64_t now)
{
	struct desktop_list desktops;

	if (store_begin(b->b_store) < 0)
		return;
	store_desktops_list(b->b_store, pid, NULL, &desktops);
	for (size_t i = 0; i < desktops.dl_n; i++) {
		const struct desktop_rec *d = &desktops.dl_recs[i];

		if (!d->dr_host || (!d->dr_on_host && d->dr_state != DESKTOP_DELETING))
			store_desktop_delete(b->b_store, d->dr_id);
		else if (d->dr_state != DESKTOP_DELETING)
			store_desktop_set_state(b->b_store, d->dr_id, DESKTOP_ANY, DESKTOP_DELETING,
						now);
	}
	desktop_list_free(&desktops);
	if (store_desktops_list(b->b_store, pid, NULL, &desktops) == 0 && desktops.dl_n == 0) {
		store_pool_delete(b->b_store, pid);
		log_info("pool=%s deleted", pid);
	}
	desktop_list_free(&desktops);
	if (store_commit(b->b_store) < 0)
		log_warnx("pool=%s: cannot record its deletion", pid);
}

/* A pool stored with a template_warning (no host could check its template then) is
 * checked again: the warning goes once a host accepts the template, or says what a host
 * refuses in it (its desktops would fail). No transaction held: hosts are asked. */
static void recheck_template(struct broker *b, const struct pool_rec *pool)
{
	struct broker_result res = {0};
	json_t *rec = pool_rec_json(pool);
	char *warning = NULL;
	const char *now_says = NULL;

	if (!rec)
		return;
	if (template_check_pool(b, rec, &warning, &res) == BROKER_OK) {
		now_says = warning;
	} else if (res.br_outcome == BROKER_BAD_REQUEST) {
		now_says = res.br_message; /* "template: kernel 'k' not found ... on host h" */
	} else {
		now_says = pool->pr_template_warning; /* could not ask: as it was */
	}
	if (!now_says || strcmp(now_says, pool->pr_template_warning)) {
		if (store_pool_set_template_warning(b->b_store, pool->pr_id, now_says) == 0)
			log_info("pool=%s: template %s", pool->pr_id,
				 now_says ? now_says : "checked by the hosts now up: accepted");
	}
	free(warning);
	json_decref(rec);
}

void pools_tick(struct broker *b, int64_t now)
{
	struct pool_list pools;
	struct desktop_list all;

	store_pools_list(b->b_store, &pools);
	store_desktops_list(b->b_store, NULL, NULL, &all);
	for (size_t i = 0; i < pools.pl_n; i++) {
		if (pools.pl_recs[i].pr_source == POOL_MANUAL)
			continue;
		if (pools.pl_recs[i].pr_template_warning)
			recheck_template(b, &pools.pl_recs[i]);
		size_pool(b, &pools.pl_recs[i], now);
	}
	/* pools being deleted are not listed: find them through their desktops */
	for (size_t i = 0; i < all.dl_n; i++) {
		struct pool_rec pool;

		if (store_pool_get(b->b_store, all.dl_recs[i].dr_pool, &pool) == 0 &&
		    pool.pr_deleting)
			pool_retire(b, pool.pr_id, now);
		pool_rec_release(&pool);
	}
	desktop_list_free(&all);
	pool_list_free(&pools);
}
