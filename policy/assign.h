/* Which desktop a user's connect request gets: their existing session first, then by
 * pool type (dedicated: their own desktop or a free one claimed for good; floating: a
 * free one), a new one while the pool is below its maximum, or a refusal with a reason.
 * A pure function of the snapshot the broker passes; the broker carries it out. */
#ifndef VDI_POLICY_ASSIGN_H
#define VDI_POLICY_ASSIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

struct policy_assign_request {
	const struct policy_pool *ar_pool;
	const struct policy_user *ar_user;
	const struct policy_client *ar_client;
	const struct policy_desktop *ar_desktops; /* the pool's desktops, preferred first */
	size_t ar_ndesktops;
	const struct policy_session *ar_sessions; /* the user's sessions, in every pool */
	size_t ar_nsessions;
	int ar_max_sessions; /* connected + disconnected sessions per user; 0: no limit */
};

enum policy_assign_action {
	POLICY_ASSIGN_DENY,	 /* refused: as_reason says why */
	POLICY_ASSIGN_RECONNECT, /* to as_session on as_desktop */
	POLICY_ASSIGN_CONNECT,	 /* a new session on as_desktop, which is running */
	POLICY_ASSIGN_START,	 /* power on as_desktop, then a new session on it */
	POLICY_ASSIGN_CREATE,	 /* create a desktop in the pool (place it with policy_place()) */
	POLICY_ASSIGN_WAIT,	 /* nothing usable yet; ask again shortly */
};

struct policy_assignment {
	enum policy_assign_action as_action;
	enum policy_reason as_reason;
	const struct policy_desktop *as_desktop; /* points into ar_desktops, or NULL */
	const struct policy_session *as_session; /* points into ar_sessions, or NULL */
	bool as_claim; /* dedicated pool: record the user as the desktop's owner for good */
};

/* Decides, in this order:
 * 1. access (policy_check_access()): refused with its reason;
 * 2. reconnect: the user's connected or disconnected session in this pool (a
 *    disconnected one first), whatever the session limit;
 * 3. the session limit over the user's sessions in all pools: session_limit;
 * 4. dedicated pools: the user's own desktop (ready: connect, stopped: start, being
 *    prepared: wait with desktop_busy, failed or deleting: desktop_failed);
 * 5. a free desktop (ready, unused, unowned) in the order given: connect (claimed in
 *    dedicated pools); else a free stopped one in an automated pool: start;
 * 6. automated pools below pool_max: create (claimed in dedicated pools);
 * 7. desktops being provisioned or refreshed: wait with desktops_preparing;
 * 8. otherwise no_desktop_available. */
struct policy_assignment policy_assign(const struct policy_assign_request *req);

#endif
