/* Pool sizing for automated pools: how many desktops to create or destroy so that the
 * pool holds at least pool_min, at most pool_max, and pool_spare free desktops ready
 * (or on their way) for the next users. Pure functions over the pool's desktops. */
#ifndef VDI_POLICY_MAINTAIN_H
#define VDI_POLICY_MAINTAIN_H

#include <stddef.h>

#include "policy/policy.h"

struct policy_pool_counts {
	int pc_total;	   /* every desktop but those being deleted */
	int pc_free_ready; /* ready, unused, unowned: can take a new user now */
	int pc_preparing;  /* provisioning or refreshing, unused, unowned: free soon */
	int pc_in_use;	   /* holding a session */
	int pc_owned_idle; /* dedicated: assigned to a user, no session (never destroyed) */
	int pc_stopped;	   /* stopped, unowned */
	int pc_failed;	   /* in error (left to an administrator) */
};

struct policy_maintenance {
	int pm_create;	/* desktops to create (place them with policy_place_many()) */
	int pm_destroy; /* free ready desktops to destroy */
	enum policy_reason pm_reason;
};

/* Counts the pool's n desktops. */
struct policy_pool_counts policy_count_desktops(const struct policy_desktop *desktops, size_t n);

/* What maintenance should do now:
 *   create = max(pool_min - total, pool_spare - (free_ready + preparing), 0), at most
 *            pool_max - total;                       reason below_minimum or spare_low
 *   destroy = total - pool_max when above the maximum (above_maximum), else the free
 *            ready desktops beyond pool_spare while total stays >= pool_min
 *            (spare_excess); never more than free_ready.
 * Manual pools: nothing (manual_pool); disabled pools: no creation. Else steady. */
struct policy_maintenance policy_maintain(const struct policy_pool *pool,
					  const struct policy_pool_counts *counts);

#endif
