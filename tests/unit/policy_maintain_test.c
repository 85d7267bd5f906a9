/* Unit tests for policy/maintain: counting a pool's desktops, and the create/destroy
 * arithmetic that keeps spare-ready desktops within min and max. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy/maintain.h"

static struct policy_pool pool(int min, int max, int spare)
{
	return (struct policy_pool){.pool_id = "p",
				    .pool_enabled = true,
				    .pool_provisioning = POLICY_AUTOMATED,
				    .pool_min = min,
				    .pool_max = max,
				    .pool_spare = spare};
}

static struct policy_maintenance plan(const struct policy_pool *p, int total, int free_ready,
				      int preparing)
{
	struct policy_pool_counts c = {
	    .pc_total = total, .pc_free_ready = free_ready, .pc_preparing = preparing};

	return policy_maintain(p, &c);
}

#define EXPECT(m, create, destroy, reason)                                                         \
	do {                                                                                       \
		struct policy_maintenance m_ = (m);                                                \
		assert_int_equal(m_.pm_create, (create));                                          \
		assert_int_equal(m_.pm_destroy, (destroy));                                        \
		assert_int_equal(m_.pm_reason, (reason));                                          \
	} while (0)

static void test_counts(void **state)
{
	struct policy_desktop d[] = {
	    {"d1", "h", NULL, POLICY_DESKTOP_READY, false},	   /* free ready */
	    {"d2", "h", NULL, POLICY_DESKTOP_READY, true},	   /* in use */
	    {"d3", "h", "alice", POLICY_DESKTOP_READY, false},	   /* owned, idle */
	    {"d4", "h", NULL, POLICY_DESKTOP_PROVISIONING, false}, /* coming */
	    {"d5", "h", NULL, POLICY_DESKTOP_REFRESHING, false},   /* coming back */
	    {"d6", "h", NULL, POLICY_DESKTOP_DELETING, false},	   /* not counted */
	    {"d7", "h", NULL, POLICY_DESKTOP_ERROR, false},
	    {"d8", "h", NULL, POLICY_DESKTOP_STOPPED, false},
	    {"d9", "h", "bob", POLICY_DESKTOP_PROVISIONING, false}, /* being made for bob */
	};
	struct policy_pool_counts c = policy_count_desktops(d, 9);

	(void)state;
	assert_int_equal(c.pc_total, 8);
	assert_int_equal(c.pc_free_ready, 1);
	assert_int_equal(c.pc_preparing, 2);
	assert_int_equal(c.pc_in_use, 1);
	assert_int_equal(c.pc_owned_idle, 2);
	assert_int_equal(c.pc_failed, 1);
	assert_int_equal(c.pc_stopped, 1);
}

static void test_create(void **state)
{
	struct policy_pool p = pool(2, 10, 3);

	(void)state;
	/* empty pool: the larger need wins (3 spare > 2 minimum) */
	EXPECT(plan(&p, 0, 0, 0), 3, 0, POLICY_BELOW_MINIMUM);
	/* minimum met, spare short: 5 total, 1 free, 1 coming -> 1 more */
	EXPECT(plan(&p, 5, 1, 1), 1, 0, POLICY_SPARE_LOW);
	/* desktops on their way count as spare: nothing to do */
	EXPECT(plan(&p, 5, 0, 3), 0, 0, POLICY_STEADY);
	EXPECT(plan(&p, 5, 3, 0), 0, 0, POLICY_STEADY);
	/* never above the maximum */
	EXPECT(plan(&p, 9, 0, 0), 1, 0, POLICY_SPARE_LOW);
	EXPECT(plan(&p, 10, 0, 0), 0, 0, POLICY_STEADY);
	/* minimum larger than spare needs */
	p = pool(6, 10, 1);
	EXPECT(plan(&p, 2, 2, 0), 4, 0, POLICY_BELOW_MINIMUM);
	/* no spares wanted, min 0: an empty pool stays empty until someone asks */
	p = pool(0, 10, 0);
	EXPECT(plan(&p, 0, 0, 0), 0, 0, POLICY_STEADY);
}

static void test_destroy(void **state)
{
	struct policy_pool p = pool(2, 10, 2);

	(void)state;
	/* 8 total, 6 free ready, spare 2 -> 4 to destroy */
	EXPECT(plan(&p, 8, 6, 0), 0, 4, POLICY_SPARE_EXCESS);
	/* never below the minimum: 3 total, 3 free -> only 1 */
	EXPECT(plan(&p, 3, 3, 0), 0, 1, POLICY_SPARE_EXCESS);
	EXPECT(plan(&p, 2, 2, 0), 0, 0, POLICY_STEADY);
	/* only ready ones are destroyed, not those still being prepared */
	EXPECT(plan(&p, 8, 1, 5), 0, 1, POLICY_SPARE_EXCESS);
	EXPECT(plan(&p, 8, 0, 5), 0, 0, POLICY_STEADY);
	/* above the maximum (lowered by an admin): down to it, free ones only */
	p = pool(0, 4, 2);
	EXPECT(plan(&p, 7, 5, 0), 0, 3, POLICY_ABOVE_MAXIMUM);
	EXPECT(plan(&p, 7, 1, 0), 0, 1, POLICY_ABOVE_MAXIMUM);
}

static void test_special_pools(void **state)
{
	struct policy_pool p = pool(2, 10, 3);

	(void)state;
	p.pool_provisioning = POLICY_MANUAL;
	EXPECT(plan(&p, 0, 0, 0), 0, 0, POLICY_MANUAL_POOL);
	p.pool_provisioning = POLICY_AUTOMATED;
	p.pool_enabled = false; /* disabled: no new desktops */
	EXPECT(plan(&p, 0, 0, 0), 0, 0, POLICY_STEADY);
	/* max below min in a bad configuration: min rules */
	p = pool(3, 1, 0);
	EXPECT(plan(&p, 0, 0, 0), 3, 0, POLICY_BELOW_MINIMUM);
	/* dedicated pool: owned idle desktops are neither spare nor destroyed */
	struct policy_desktop d[] = {
	    {"d1", "h", "alice", POLICY_DESKTOP_READY, false},
	    {"d2", "h", "bob", POLICY_DESKTOP_READY, false},
	    {"d3", "h", NULL, POLICY_DESKTOP_READY, false},
	};
	struct policy_pool_counts c = policy_count_desktops(d, 3);
	p = pool(0, 10, 2);
	p.pool_kind = POLICY_DEDICATED;
	EXPECT(policy_maintain(&p, &c), 1, 0, POLICY_SPARE_LOW);
	p.pool_spare = 0;
	EXPECT(policy_maintain(&p, &c), 0, 1, POLICY_SPARE_EXCESS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_create),
	    cmocka_unit_test(test_destroy),
	    cmocka_unit_test(test_special_pools),
	};
	return cmocka_run_group_tests_name("policy_maintain", tests, NULL, NULL);
}
