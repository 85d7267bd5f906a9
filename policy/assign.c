/* The assignment decision: reconnect first, then the pool's rules for picking or
 * making a desktop. */
#include "policy/assign.h"

#include <string.h>

#include "policy/access.h"

static struct policy_assignment decide(enum policy_assign_action action, enum policy_reason reason,
				       const struct policy_desktop *d)
{
	return (struct policy_assignment){
	    .as_action = action, .as_reason = reason, .as_desktop = d};
}

static bool active(const struct policy_session *s)
{
	return s->sess_state == POLICY_SESSION_CONNECTED ||
	       s->sess_state == POLICY_SESSION_DISCONNECTED;
}

static const struct policy_desktop *find_desktop(const struct policy_assign_request *req,
						 const char *id)
{
	for (size_t i = 0; id && i < req->ar_ndesktops; i++)
		if (req->ar_desktops[i].desk_id && !strcmp(req->ar_desktops[i].desk_id, id))
			return &req->ar_desktops[i];
	return NULL;
}

/* The user's session in this pool, a disconnected one preferred. */
static const struct policy_session *existing_session(const struct policy_assign_request *req)
{
	const struct policy_session *found = NULL;

	for (size_t i = 0; i < req->ar_nsessions; i++) {
		const struct policy_session *s = &req->ar_sessions[i];

		if (!active(s) || !s->sess_pool || strcmp(s->sess_pool, req->ar_pool->pool_id) ||
		    !policy_name_equal(s->sess_user, req->ar_user->pu_name))
			continue;
		if (s->sess_state == POLICY_SESSION_DISCONNECTED)
			return s;
		if (!found)
			found = s;
	}
	return found;
}

static size_t count_sessions(const struct policy_assign_request *req)
{
	size_t n = 0;

	for (size_t i = 0; i < req->ar_nsessions; i++)
		if (active(&req->ar_sessions[i]) &&
		    policy_name_equal(req->ar_sessions[i].sess_user, req->ar_user->pu_name))
			n++;
	return n;
}

static bool is_free(const struct policy_desktop *d, enum policy_desktop_state state)
{
	return d->desk_state == state && !d->desk_in_use && !d->desk_owner;
}

static bool preparing(const struct policy_desktop *d)
{
	return d->desk_state == POLICY_DESKTOP_PROVISIONING ||
	       d->desk_state == POLICY_DESKTOP_REFRESHING;
}

/* Dedicated pools: the desktop already assigned to the user, if any. */
static bool own_desktop(const struct policy_assign_request *req, struct policy_assignment *out)
{
	const struct policy_pool *pool = req->ar_pool;

	for (size_t i = 0; i < req->ar_ndesktops; i++) {
		const struct policy_desktop *d = &req->ar_desktops[i];

		if (!policy_name_equal(d->desk_owner, req->ar_user->pu_name))
			continue;
		switch (d->desk_state) {
		case POLICY_DESKTOP_READY:
			*out = d->desk_in_use
				   ? decide(POLICY_ASSIGN_WAIT, POLICY_DESKTOP_BUSY, d)
				   : decide(POLICY_ASSIGN_CONNECT, POLICY_OWN_DESKTOP, d);
			return true;
		case POLICY_DESKTOP_STOPPED:
			*out = pool->pool_provisioning == POLICY_AUTOMATED
				   ? decide(POLICY_ASSIGN_START, POLICY_OWN_DESKTOP, d)
				   : decide(POLICY_ASSIGN_DENY, POLICY_DESKTOP_FAILED, d);
			return true;
		case POLICY_DESKTOP_PROVISIONING:
		case POLICY_DESKTOP_REFRESHING:
			*out = decide(POLICY_ASSIGN_WAIT, POLICY_DESKTOP_BUSY, d);
			return true;
		case POLICY_DESKTOP_DELETING:
		case POLICY_DESKTOP_ERROR:
			*out = decide(POLICY_ASSIGN_DENY, POLICY_DESKTOP_FAILED, d);
			return true;
		}
	}
	return false;
}

struct policy_assignment policy_assign(const struct policy_assign_request *req)
{
	const struct policy_pool *pool = req->ar_pool;
	bool automated = pool->pool_provisioning == POLICY_AUTOMATED;
	bool dedicated = pool->pool_kind == POLICY_DEDICATED;
	struct policy_access access = policy_check_access(pool, req->ar_user, req->ar_client);
	const struct policy_session *session;
	struct policy_assignment a;
	size_t total = 0, being_prepared = 0;

	if (!access.pa_allowed)
		return decide(POLICY_ASSIGN_DENY, access.pa_reason, NULL);

	session = existing_session(req);
	if (session) {
		a = decide(POLICY_ASSIGN_RECONNECT, POLICY_RECONNECT,
			   find_desktop(req, session->sess_desktop));
		a.as_session = session;
		return a;
	}
	if (req->ar_max_sessions > 0 && count_sessions(req) >= (size_t)req->ar_max_sessions)
		return decide(POLICY_ASSIGN_DENY, POLICY_SESSION_LIMIT, NULL);

	if (dedicated && own_desktop(req, &a))
		return a;

	for (size_t i = 0; i < req->ar_ndesktops; i++) {
		const struct policy_desktop *d = &req->ar_desktops[i];

		if (is_free(d, POLICY_DESKTOP_READY)) {
			a = decide(POLICY_ASSIGN_CONNECT, POLICY_FREE_DESKTOP, d);
			a.as_claim = dedicated;
			return a;
		}
	}
	for (size_t i = 0; automated && i < req->ar_ndesktops; i++) {
		const struct policy_desktop *d = &req->ar_desktops[i];

		if (is_free(d, POLICY_DESKTOP_STOPPED)) {
			a = decide(POLICY_ASSIGN_START, POLICY_FREE_DESKTOP, d);
			a.as_claim = dedicated;
			return a;
		}
	}
	for (size_t i = 0; i < req->ar_ndesktops; i++) {
		const struct policy_desktop *d = &req->ar_desktops[i];

		if (d->desk_state != POLICY_DESKTOP_DELETING)
			total++;
		/* floating desktops being refreshed come back free; dedicated ones only if
		 * nobody owns them */
		if (preparing(d) && !d->desk_in_use && !d->desk_owner)
			being_prepared++;
	}
	if (automated && total < (size_t)(pool->pool_max > 0 ? pool->pool_max : 0)) {
		a = decide(POLICY_ASSIGN_CREATE, POLICY_NEW_DESKTOP, NULL);
		a.as_claim = dedicated;
		return a;
	}
	if (being_prepared)
		return decide(POLICY_ASSIGN_WAIT, POLICY_DESKTOPS_PREPARING, NULL);
	return decide(POLICY_ASSIGN_DENY, POLICY_NO_DESKTOP, NULL);
}
