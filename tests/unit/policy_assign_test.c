/* Unit tests for policy/assign: access first, reconnect before anything (even at the
 * session limit), the per-user session limit, dedicated pools (own desktop in each
 * state, claiming a free or new one), floating pools (free ready, stopped, create
 * below the maximum, wait while desktops are prepared, refuse when full), manual
 * pools. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy/assign.h"

#define NOW 1704110400LL /* Monday 2024-01-01 12:00 UTC */

static const struct policy_entitlement everyone[] = {{POLICY_PRINCIPAL_GROUP, "staff"}};
static const char *const staff[] = {"staff"};
static const struct policy_user alice = {"alice", staff, 1};
static const struct policy_user mallory = {"mallory", NULL, 0};
static const struct policy_client client = {.pc_now = NOW};

static struct policy_pool pool(enum policy_pool_kind kind, enum policy_provisioning prov, int max)
{
	return (struct policy_pool){.pool_id = "pool1",
				    .pool_enabled = true,
				    .pool_kind = kind,
				    .pool_provisioning = prov,
				    .pool_min = 0,
				    .pool_max = max,
				    .pool_entitlements = everyone,
				    .pool_nentitlements = 1};
}

static struct policy_assignment assign(const struct policy_pool *p, const struct policy_user *u,
				       const struct policy_desktop *d, size_t nd,
				       const struct policy_session *s, size_t ns, int limit)
{
	struct policy_assign_request req = {
	    .ar_pool = p,
	    .ar_user = u,
	    .ar_client = &client,
	    .ar_desktops = d,
	    .ar_ndesktops = nd,
	    .ar_sessions = s,
	    .ar_nsessions = ns,
	    .ar_max_sessions = limit,
	};
	return policy_assign(&req);
}

#define D(id, state, owner, used)                                                                  \
	{                                                                                          \
		id, "h1", owner, state, used                                                       \
	}

static void test_access_first(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, POLICY_AUTOMATED, 5);
	struct policy_desktop d[] = {D("d1", POLICY_DESKTOP_READY, NULL, false)};
	struct policy_session s[] = {
	    {"s1", "mallory", "pool1", "d1", POLICY_SESSION_DISCONNECTED, 0}};
	struct policy_assignment a;

	(void)state;
	/* not entitled: refused, even with a session left over in the pool */
	a = assign(&p, &mallory, d, 1, s, 1, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_DENY);
	assert_int_equal(a.as_reason, POLICY_NOT_ENTITLED);
	assert_null(a.as_desktop);
	p.pool_enabled = false;
	assert_int_equal(assign(&p, &alice, d, 1, NULL, 0, 0).as_reason, POLICY_POOL_DISABLED);
}

static void test_reconnect_first(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, POLICY_AUTOMATED, 5);
	struct policy_desktop d[] = {
	    D("d1", POLICY_DESKTOP_READY, NULL, false),
	    D("d2", POLICY_DESKTOP_READY, NULL, true),
	    D("d3", POLICY_DESKTOP_READY, NULL, true),
	};
	struct policy_session s[] = {
	    {"s0", "alice", "other-pool", "x9", POLICY_SESSION_CONNECTED, NOW - 50},
	    {"s1", "alice", "pool1", "d2", POLICY_SESSION_CONNECTED, NOW - 100},
	    {"s2", "ALICE", "pool1", "d3", POLICY_SESSION_DISCONNECTED, NOW - 10},
	    {"s3", "alice", "pool1", "d1", POLICY_SESSION_LOGGED_OFF, NOW - 5},
	};
	struct policy_assignment a;

	(void)state;
	/* the disconnected session wins over the connected one and over a free desktop,
	 * and the session limit (2, reached) does not stop a reconnect */
	a = assign(&p, &alice, d, 3, s, 4, 2);
	assert_int_equal(a.as_action, POLICY_ASSIGN_RECONNECT);
	assert_int_equal(a.as_reason, POLICY_RECONNECT);
	assert_ptr_equal(a.as_session, &s[2]);
	assert_ptr_equal(a.as_desktop, &d[2]);
	/* only a connected one: take it over */
	a = assign(&p, &alice, d, 3, s, 2, 2);
	assert_int_equal(a.as_action, POLICY_ASSIGN_RECONNECT);
	assert_ptr_equal(a.as_session, &s[1]);
	/* a logged-off session is history, not something to reconnect to */
	a = assign(&p, &alice, d, 3, &s[3], 1, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CONNECT);
	assert_ptr_equal(a.as_desktop, &d[0]);
}

static void test_session_limit(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, POLICY_AUTOMATED, 5);
	struct policy_desktop d[] = {D("d1", POLICY_DESKTOP_READY, NULL, false)};
	struct policy_session s[] = {
	    {"s1", "alice", "pool2", "x1", POLICY_SESSION_CONNECTED, NOW},
	    {"s2", "alice", "pool3", "x2", POLICY_SESSION_DISCONNECTED, NOW},
	    {"s3", "alice", "pool4", "x3", POLICY_SESSION_LOGGED_OFF, NOW},
	};
	struct policy_assignment a;

	(void)state;
	a = assign(&p, &alice, d, 1, s, 3, 2);
	assert_int_equal(a.as_action, POLICY_ASSIGN_DENY);
	assert_int_equal(a.as_reason, POLICY_SESSION_LIMIT);
	/* logged-off sessions do not count; the limit is "at most", so 3 allows a third */
	assert_int_equal(assign(&p, &alice, d, 1, s, 3, 3).as_action, POLICY_ASSIGN_CONNECT);
	assert_int_equal(assign(&p, &alice, d, 1, s, 1, 2).as_action, POLICY_ASSIGN_CONNECT);
	/* 0: no limit */
	assert_int_equal(assign(&p, &alice, d, 1, s, 3, 0).as_action, POLICY_ASSIGN_CONNECT);
}

static void test_dedicated(void **state)
{
	struct policy_pool p = pool(POLICY_DEDICATED, POLICY_AUTOMATED, 3);
	struct policy_desktop d[] = {
	    D("d1", POLICY_DESKTOP_READY, NULL, false),
	    D("d2", POLICY_DESKTOP_READY, "bob", false),
	    D("d3", POLICY_DESKTOP_READY, "Alice", false),
	};
	struct policy_assignment a;

	(void)state;
	/* the user's own desktop, not the free one listed first */
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CONNECT);
	assert_int_equal(a.as_reason, POLICY_OWN_DESKTOP);
	assert_ptr_equal(a.as_desktop, &d[2]);
	assert_false(a.as_claim);
	d[2].desk_state = POLICY_DESKTOP_STOPPED;
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_START);
	assert_ptr_equal(a.as_desktop, &d[2]);
	d[2].desk_state = POLICY_DESKTOP_PROVISIONING;
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_WAIT);
	assert_int_equal(a.as_reason, POLICY_DESKTOP_BUSY);
	d[2].desk_state = POLICY_DESKTOP_ERROR;
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_DENY);
	assert_int_equal(a.as_reason, POLICY_DESKTOP_FAILED);
	/* no own desktop: the first free one, claimed for good; someone else's is never
	 * taken */
	d[2].desk_owner = "carol";
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CONNECT);
	assert_int_equal(a.as_reason, POLICY_FREE_DESKTOP);
	assert_ptr_equal(a.as_desktop, &d[0]);
	assert_true(a.as_claim);
	/* none free, pool full (3 of 3) */
	d[0].desk_owner = "dave";
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_DENY);
	assert_int_equal(a.as_reason, POLICY_NO_DESKTOP);
	/* room for one more: create it for her */
	p.pool_max = 4;
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CREATE);
	assert_int_equal(a.as_reason, POLICY_NEW_DESKTOP);
	assert_true(a.as_claim);
	assert_null(a.as_desktop);
}

static void test_floating(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, POLICY_AUTOMATED, 4);
	struct policy_desktop d[] = {
	    D("d1", POLICY_DESKTOP_READY, NULL, true),
	    D("d2", POLICY_DESKTOP_PROVISIONING, NULL, false),
	    D("d3", POLICY_DESKTOP_STOPPED, NULL, false),
	    D("d4", POLICY_DESKTOP_READY, NULL, false),
	};
	struct policy_assignment a;

	(void)state;
	/* a free ready desktop first, even after a stopped one in the list */
	a = assign(&p, &alice, d, 4, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CONNECT);
	assert_int_equal(a.as_reason, POLICY_FREE_DESKTOP);
	assert_ptr_equal(a.as_desktop, &d[3]);
	assert_false(a.as_claim);
	/* then a stopped one to start */
	d[3].desk_in_use = true;
	a = assign(&p, &alice, d, 4, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_START);
	assert_ptr_equal(a.as_desktop, &d[2]);
	/* then, at the maximum (4), wait for the one being provisioned */
	d[2].desk_in_use = true;
	a = assign(&p, &alice, d, 4, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_WAIT);
	assert_int_equal(a.as_reason, POLICY_DESKTOPS_PREPARING);
	/* below the maximum: create one */
	p.pool_max = 5;
	a = assign(&p, &alice, d, 4, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CREATE);
	/* desktops being deleted do not count toward the maximum */
	p.pool_max = 4;
	d[1].desk_state = POLICY_DESKTOP_DELETING;
	a = assign(&p, &alice, d, 4, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CREATE);
	/* full and nothing coming: no desktop */
	d[1].desk_state = POLICY_DESKTOP_ERROR;
	a = assign(&p, &alice, d, 4, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_DENY);
	assert_int_equal(a.as_reason, POLICY_NO_DESKTOP);
	/* a refreshing desktop comes back free: wait */
	d[0].desk_in_use = false;
	d[0].desk_state = POLICY_DESKTOP_REFRESHING;
	assert_int_equal(assign(&p, &alice, d, 4, NULL, 0, 0).as_reason, POLICY_DESKTOPS_PREPARING);
}

static void test_manual(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, POLICY_MANUAL, 0);
	struct policy_desktop d[] = {
	    {"pc-1", NULL, NULL, POLICY_DESKTOP_STOPPED, false},
	    {"pc-2", NULL, NULL, POLICY_DESKTOP_READY, true},
	    {"pc-3", NULL, NULL, POLICY_DESKTOP_READY, false},
	};
	struct policy_assignment a;

	(void)state;
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CONNECT);
	assert_ptr_equal(a.as_desktop, &d[2]);
	/* a manual endpoint that is off cannot be started, and none can be created */
	d[2].desk_in_use = true;
	p.pool_max = 10;
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_DENY);
	assert_int_equal(a.as_reason, POLICY_NO_DESKTOP);
	/* dedicated manual: a physical PC assigned to her */
	p.pool_kind = POLICY_DEDICATED;
	d[0].desk_owner = "alice";
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_DENY);
	assert_int_equal(a.as_reason, POLICY_DESKTOP_FAILED);
	d[0].desk_state = POLICY_DESKTOP_READY;
	a = assign(&p, &alice, d, 3, NULL, 0, 0);
	assert_int_equal(a.as_action, POLICY_ASSIGN_CONNECT);
	assert_int_equal(a.as_reason, POLICY_OWN_DESKTOP);
	assert_ptr_equal(a.as_desktop, &d[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_access_first),  cmocka_unit_test(test_reconnect_first),
	    cmocka_unit_test(test_session_limit), cmocka_unit_test(test_dedicated),
	    cmocka_unit_test(test_floating),	  cmocka_unit_test(test_manual),
	};
	return cmocka_run_group_tests_name("policy_assign", tests, NULL, NULL);
}
