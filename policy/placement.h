/* Where a new desktop runs: among hosts that are up, enabled (not draining), allowed for
 * the pool, able to run its engine now and have room for one more desktop of the pool's
 * size, the one with the most free memory; ties go to more free vCPUs, then fewer
 * desktops, then the smaller host id, so the choice is deterministic. Pure functions. */
#ifndef VDI_POLICY_PLACEMENT_H
#define VDI_POLICY_PLACEMENT_H

#include <stddef.h>

#include "policy/policy.h"

struct policy_placement {
	const struct policy_host *pl_host; /* NULL when nowhere */
	enum policy_reason pl_reason;	   /* ok, no_host, no_engine or no_capacity */
};

/* Picks the host for one new desktop of pool. */
struct policy_placement policy_place(const struct policy_pool *pool,
				     const struct policy_host *hosts, size_t nhosts);

/* Places up to count desktops one after another, each seeing the memory, vCPUs and
 * desktop slots the earlier ones took, so a batch spreads over hosts. out[i] gets the
 * host of the i-th desktop. Returns how many were placed (fewer than count when room
 * runs out; *reason then says why, else it is POLICY_OK). */
size_t policy_place_many(const struct policy_pool *pool, const struct policy_host *hosts,
			 size_t nhosts, size_t count, const struct policy_host **out,
			 enum policy_reason *reason);

#endif
