/* Reason names and name comparison shared by the policy modules. */
#include "policy/policy.h"

#include <strings.h>

static const char *const reason_names[POLICY_REASON_COUNT] = {
    [POLICY_OK] = "ok",
    [POLICY_NOT_ENTITLED] = "not_entitled",
    [POLICY_POOL_DISABLED] = "pool_disabled",
    [POLICY_ADDRESS_DENIED] = "address_denied",
    [POLICY_OUTSIDE_HOURS] = "outside_hours",
    [POLICY_RECONNECT] = "reconnect",
    [POLICY_OWN_DESKTOP] = "own_desktop",
    [POLICY_FREE_DESKTOP] = "free_desktop",
    [POLICY_NEW_DESKTOP] = "new_desktop",
    [POLICY_SESSION_LIMIT] = "session_limit",
    [POLICY_DESKTOP_BUSY] = "desktop_busy",
    [POLICY_DESKTOP_FAILED] = "desktop_failed",
    [POLICY_DESKTOPS_PREPARING] = "desktops_preparing",
    [POLICY_NO_DESKTOP] = "no_desktop_available",
    [POLICY_NO_HOST] = "no_host",
    [POLICY_NO_ENGINE] = "engine_unavailable",
    [POLICY_NO_CAPACITY] = "no_capacity",
    [POLICY_STEADY] = "steady",
    [POLICY_BELOW_MINIMUM] = "below_minimum",
    [POLICY_SPARE_LOW] = "spare_low",
    [POLICY_SPARE_EXCESS] = "spare_excess",
    [POLICY_ABOVE_MAXIMUM] = "above_maximum",
    [POLICY_MANUAL_POOL] = "manual_pool",
    [POLICY_CONNECTED] = "connected",
    [POLICY_TAKEOVER] = "takeover",
    [POLICY_DISCONNECTED] = "disconnected",
    [POLICY_LOGGED_OFF] = "logged_off",
    [POLICY_DISCONNECT_TIMEOUT] = "disconnect_timeout",
    [POLICY_DESKTOP_LOST] = "desktop_lost",
    [POLICY_INVALID_TRANSITION] = "invalid_transition",
};

const char *policy_reason_name(enum policy_reason reason)
{
	if ((unsigned)reason >= POLICY_REASON_COUNT || !reason_names[reason])
		return "unknown";
	return reason_names[reason];
}

bool policy_name_equal(const char *a, const char *b)
{
	return a && b && !strcasecmp(a, b);
}
