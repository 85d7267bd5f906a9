/* Host selection by free capacity with deterministic tie-breaks. */
#include "policy/placement.h"

#include <stdbool.h>
#include <string.h>

/* Capacity of a host after `taken` desktops of the pool were placed on it. */
struct room {
	int64_t r_mem;
	int64_t r_vcpus;
	int64_t r_desktops;
};

static bool allowed(const struct policy_pool *pool, const struct policy_host *h)
{
	if (!h->host_up || !h->host_enabled)
		return false;
	if (pool->pool_nhosts == 0)
		return true;
	for (size_t i = 0; i < pool->pool_nhosts; i++)
		if (h->host_id && pool->pool_hosts[i] && !strcmp(h->host_id, pool->pool_hosts[i]))
			return true;
	return false;
}

static struct room room_of(const struct policy_pool *pool, const struct policy_host *h,
			   size_t taken)
{
	return (struct room){
	    .r_mem = h->host_mem_free_mb - (int64_t)taken * pool->pool_memory_mb,
	    .r_vcpus = (int64_t)h->host_vcpus_free - (int64_t)taken * pool->pool_vcpus,
	    .r_desktops = (int64_t)h->host_desktops + (int64_t)taken,
	};
}

static bool fits(const struct policy_pool *pool, const struct policy_host *h, struct room r)
{
	return r.r_mem >= pool->pool_memory_mb && r.r_vcpus >= pool->pool_vcpus &&
	       (h->host_max_desktops <= 0 || r.r_desktops < h->host_max_desktops);
}

/* True when host a (with room ra) is a better choice than b (rb). */
static bool better(const struct policy_host *a, struct room ra, const struct policy_host *b,
		   struct room rb)
{
	if (ra.r_mem != rb.r_mem)
		return ra.r_mem > rb.r_mem;
	if (ra.r_vcpus != rb.r_vcpus)
		return ra.r_vcpus > rb.r_vcpus;
	if (ra.r_desktops != rb.r_desktops)
		return ra.r_desktops < rb.r_desktops;
	return strcmp(a->host_id ? a->host_id : "", b->host_id ? b->host_id : "") < 0;
}

/* One placement given how many desktops each host already got in this batch. */
static const struct policy_host *choose(const struct policy_pool *pool,
					const struct policy_host *hosts, size_t nhosts,
					const struct policy_host *const *placed, size_t nplaced,
					enum policy_reason *reason)
{
	const struct policy_host *best = NULL;
	struct room best_room = {0};
	bool any_allowed = false, any_engine = false;

	for (size_t i = 0; i < nhosts; i++) {
		const struct policy_host *h = &hosts[i];
		size_t taken = 0;
		struct room r;

		if (!allowed(pool, h))
			continue;
		any_allowed = true;
		if (pool->pool_engine && !(h->host_engines & pool->pool_engine))
			continue;
		any_engine = true;
		for (size_t j = 0; j < nplaced; j++)
			taken += placed[j] == h;
		r = room_of(pool, h, taken);
		if (!fits(pool, h, r))
			continue;
		if (!best || better(h, r, best, best_room)) {
			best = h;
			best_room = r;
		}
	}
	*reason = best		? POLICY_OK
		  : any_engine	? POLICY_NO_CAPACITY
		  : any_allowed ? POLICY_NO_ENGINE
				: POLICY_NO_HOST;
	return best;
}

struct policy_placement policy_place(const struct policy_pool *pool,
				     const struct policy_host *hosts, size_t nhosts)
{
	struct policy_placement p;

	p.pl_host = choose(pool, hosts, nhosts, NULL, 0, &p.pl_reason);
	return p;
}

size_t policy_place_many(const struct policy_pool *pool, const struct policy_host *hosts,
			 size_t nhosts, size_t count, const struct policy_host **out,
			 enum policy_reason *reason)
{
	size_t n;

	*reason = POLICY_OK;
	for (n = 0; n < count; n++) {
		out[n] = choose(pool, hosts, nhosts, out, n, reason);
		if (!out[n])
			break;
	}
	return n;
}
