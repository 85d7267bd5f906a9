/* Entitlement and rule checks for one user and pool. */
#include "policy/access.h"

#include "policy/rules.h"

bool policy_is_entitled(const struct policy_pool *pool, const struct policy_user *user)
{
	for (size_t i = 0; i < pool->pool_nentitlements; i++) {
		const struct policy_entitlement *e = &pool->pool_entitlements[i];

		if (e->pe_kind == POLICY_PRINCIPAL_USER &&
		    policy_name_equal(e->pe_name, user->pu_name))
			return true;
		if (e->pe_kind != POLICY_PRINCIPAL_GROUP)
			continue;
		for (size_t g = 0; g < user->pu_ngroups; g++)
			if (policy_name_equal(e->pe_name, user->pu_groups[g]))
				return true;
	}
	return false;
}

static bool address_allowed(const struct policy_rules *rules, const struct policy_addr *addr)
{
	if (rules->pr_nnetworks == 0)
		return true;
	if (!addr)
		return false;
	for (size_t i = 0; i < rules->pr_nnetworks; i++)
		if (policy_cidr_contains(&rules->pr_networks[i], addr))
			return true;
	return false;
}

static bool time_allowed(const struct policy_rules *rules, int64_t now)
{
	if (rules->pr_nwindows == 0)
		return true;
	for (size_t i = 0; i < rules->pr_nwindows; i++)
		if (policy_window_contains(&rules->pr_windows[i], now, rules->pr_utc_offset))
			return true;
	return false;
}

struct policy_access policy_check_access(const struct policy_pool *pool,
					 const struct policy_user *user,
					 const struct policy_client *client)
{
	struct policy_access a = {.pa_allowed = false};

	if (!policy_is_entitled(pool, user))
		a.pa_reason = POLICY_NOT_ENTITLED;
	else if (!pool->pool_enabled)
		a.pa_reason = POLICY_POOL_DISABLED;
	else if (!address_allowed(&pool->pool_rules, client->pc_addr))
		a.pa_reason = POLICY_ADDRESS_DENIED;
	else if (!time_allowed(&pool->pool_rules, client->pc_now))
		a.pa_reason = POLICY_OUTSIDE_HOURS;
	else
		a = (struct policy_access){.pa_allowed = true, .pa_reason = POLICY_OK};
	return a;
}
