/* Which pools a user may use, from where and when: entitlements (the user, or any of
 * their groups, nested ones included) and the pool's rules (client networks, weekly
 * time windows). Pure functions. */
#ifndef VDI_POLICY_ACCESS_H
#define VDI_POLICY_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

struct policy_access {
	bool pa_allowed;
	enum policy_reason pa_reason; /* POLICY_OK when allowed */
};

/* True when one of the pool's entitlements names the user or one of their groups. */
bool policy_is_entitled(const struct policy_pool *pool, const struct policy_user *user);

/* Whether user may use pool now from client. Checked in this order, the first failure
 * being the reason: not_entitled, pool_disabled, address_denied, outside_hours (a user
 * who is not entitled learns nothing else about the pool). */
struct policy_access policy_check_access(const struct policy_pool *pool,
					 const struct policy_user *user,
					 const struct policy_client *client);

#endif
