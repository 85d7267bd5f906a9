/* Spare-ready arithmetic for automated pools. */
#include "policy/maintain.h"

#include <stdbool.h>

struct policy_pool_counts policy_count_desktops(const struct policy_desktop *desktops, size_t n)
{
	struct policy_pool_counts c = {0};

	for (size_t i = 0; i < n; i++) {
		const struct policy_desktop *d = &desktops[i];
		bool unclaimed = !d->desk_in_use && !d->desk_owner;

		if (d->desk_state == POLICY_DESKTOP_DELETING)
			continue;
		c.pc_total++;
		if (d->desk_in_use)
			c.pc_in_use++;
		else if (d->desk_owner)
			c.pc_owned_idle++;
		switch (d->desk_state) {
		case POLICY_DESKTOP_READY: c.pc_free_ready += unclaimed; break;
		case POLICY_DESKTOP_PROVISIONING:
		case POLICY_DESKTOP_REFRESHING: c.pc_preparing += unclaimed; break;
		case POLICY_DESKTOP_STOPPED: c.pc_stopped += unclaimed; break;
		case POLICY_DESKTOP_ERROR: c.pc_failed++; break;
		case POLICY_DESKTOP_DELETING: break;
		}
	}
	return c;
}

static int max3(int a, int b, int c)
{
	int m = a > b ? a : b;

	return m > c ? m : c;
}

static int min2(int a, int b)
{
	return a < b ? a : b;
}

struct policy_maintenance policy_maintain(const struct policy_pool *pool,
					  const struct policy_pool_counts *c)
{
	struct policy_maintenance m = {.pm_reason = POLICY_STEADY};
	int min = pool->pool_min > 0 ? pool->pool_min : 0;
	int max = pool->pool_max > min ? pool->pool_max : min;
	int spare = pool->pool_spare > 0 ? pool->pool_spare : 0;
	int available = c->pc_free_ready + c->pc_preparing;

	if (pool->pool_provisioning == POLICY_MANUAL) {
		m.pm_reason = POLICY_MANUAL_POOL;
		return m;
	}
	if (c->pc_total > max) {
		m.pm_destroy = min2(c->pc_total - max, c->pc_free_ready);
		m.pm_reason = POLICY_ABOVE_MAXIMUM;
		return m;
	}
	if (pool->pool_enabled) {
		int need = max3(min - c->pc_total, spare - available, 0);

		m.pm_create = min2(need, max - c->pc_total);
		if (m.pm_create > 0) {
			m.pm_reason = c->pc_total < min ? POLICY_BELOW_MINIMUM : POLICY_SPARE_LOW;
			return m;
		}
		m.pm_create = 0;
	}
	if (available > spare && c->pc_total > min) {
		m.pm_destroy = min2(min2(available - spare, c->pc_total - min), c->pc_free_ready);
		if (m.pm_destroy > 0)
			m.pm_reason = POLICY_SPARE_EXCESS;
		else
			m.pm_destroy = 0;
	}
	return m;
}
