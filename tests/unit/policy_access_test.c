/* Unit tests for policy/access: entitlements by user and by group (nested groups
 * arrive expanded in the user's list), the order of refusal reasons, client address
 * rules (IPv4, IPv6, unknown address) and time windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy/access.h"
#include "policy/rules.h"

#define MONDAY	      1704067200LL /* 2024-01-01 00:00 UTC */
#define AT(day, h, m) (MONDAY + (day)*86400LL + (h)*3600LL + (m)*60LL)

static const struct policy_entitlement eng_entitlements[] = {
    {POLICY_PRINCIPAL_GROUP, "engineering"},
    {POLICY_PRINCIPAL_USER, "Carol"},
};
static const struct policy_entitlement staff_entitlements[] = {
    {POLICY_PRINCIPAL_GROUP, "staff"},
};

/* alice is in engineering; engineering is in staff, so auth/ lists both */
static const char *const alice_groups[] = {"engineering", "staff"};
static const struct policy_user alice = {"alice", alice_groups, 2};
static const char *const bob_groups[] = {"sales"};
static const struct policy_user bob = {"bob", bob_groups, 1};
static const struct policy_user carol = {"carol", NULL, 0};

static struct policy_pool pool(const struct policy_entitlement *e, size_t n)
{
	return (struct policy_pool){
	    .pool_id = "p",
	    .pool_enabled = true,
	    .pool_entitlements = e,
	    .pool_nentitlements = n,
	};
}

static struct policy_access check(const struct policy_pool *p, const struct policy_user *u,
				  const char *addr, int64_t now)
{
	struct policy_addr a;
	struct policy_client c = {.pc_addr = NULL, .pc_now = now};

	if (addr) {
		assert_int_equal(policy_addr_parse(addr, &a), 0);
		c.pc_addr = &a;
	}
	return policy_check_access(p, u, &c);
}

static void test_entitlements(void **state)
{
	struct policy_pool eng = pool(eng_entitlements, 2);
	struct policy_pool staff = pool(staff_entitlements, 1);
	struct policy_pool nobody = pool(NULL, 0);

	(void)state;
	assert_true(policy_is_entitled(&eng, &alice)); /* by group */
	assert_true(policy_is_entitled(&eng, &carol)); /* by name, any case */
	assert_false(policy_is_entitled(&eng, &bob));
	assert_true(policy_is_entitled(&staff, &alice)); /* through the nested group */
	assert_false(policy_is_entitled(&staff, &bob));
	assert_false(policy_is_entitled(&nobody, &alice));
	/* a group entitlement does not match a user of that name, nor the reverse */
	static const char *const eng_group[] = {"carol"};
	struct policy_user group_named_carol = {"dave", eng_group, 1};
	assert_false(policy_is_entitled(&eng, &group_named_carol));
	struct policy_user user_named_engineering = {"engineering", NULL, 0};
	assert_false(policy_is_entitled(&eng, &user_named_engineering));
	assert_int_equal(check(&eng, &bob, NULL, MONDAY).pa_reason, POLICY_NOT_ENTITLED);
	assert_true(check(&eng, &alice, NULL, MONDAY).pa_allowed);
}

static void test_reason_order(void **state)
{
	struct policy_cidr office;
	struct policy_window hours;
	struct policy_pool p = pool(eng_entitlements, 2);
	struct policy_access a;

	(void)state;
	assert_int_equal(policy_cidr_parse("10.0.0.0/8", &office), 0);
	assert_int_equal(policy_window_parse("Mon-Fri 07:00-19:00", &hours), 0);
	p.pool_enabled = false;
	p.pool_rules = (struct policy_rules){
	    .pr_networks = &office, .pr_nnetworks = 1, .pr_windows = &hours, .pr_nwindows = 1};
	/* someone not entitled learns nothing else */
	a = check(&p, &bob, "192.0.2.1", AT(5, 3, 0));
	assert_false(a.pa_allowed);
	assert_int_equal(a.pa_reason, POLICY_NOT_ENTITLED);
	assert_int_equal(check(&p, &alice, "192.0.2.1", AT(5, 3, 0)).pa_reason,
			 POLICY_POOL_DISABLED);
	p.pool_enabled = true;
	assert_int_equal(check(&p, &alice, "192.0.2.1", AT(5, 3, 0)).pa_reason,
			 POLICY_ADDRESS_DENIED);
	assert_int_equal(check(&p, &alice, "10.1.1.1", AT(5, 3, 0)).pa_reason,
			 POLICY_OUTSIDE_HOURS);
	a = check(&p, &alice, "10.1.1.1", AT(2, 9, 0));
	assert_true(a.pa_allowed);
	assert_int_equal(a.pa_reason, POLICY_OK);
}

static void test_address_rules(void **state)
{
	struct policy_cidr nets[2];
	struct policy_pool p = pool(eng_entitlements, 2);

	(void)state;
	assert_int_equal(policy_cidr_parse("192.168.0.0/16", &nets[0]), 0);
	assert_int_equal(policy_cidr_parse("2001:db8:aa::/48", &nets[1]), 0);
	p.pool_rules.pr_networks = nets;
	p.pool_rules.pr_nnetworks = 2;
	assert_true(check(&p, &alice, "192.168.10.20", MONDAY).pa_allowed);
	assert_true(check(&p, &alice, "::ffff:192.168.10.20", MONDAY).pa_allowed);
	assert_true(check(&p, &alice, "2001:db8:aa:1::5", MONDAY).pa_allowed);
	assert_int_equal(check(&p, &alice, "2001:db8:ab::5", MONDAY).pa_reason,
			 POLICY_ADDRESS_DENIED);
	assert_int_equal(check(&p, &alice, "192.169.0.1", MONDAY).pa_reason, POLICY_ADDRESS_DENIED);
	/* an unknown client address never passes an address rule... */
	assert_int_equal(check(&p, &alice, NULL, MONDAY).pa_reason, POLICY_ADDRESS_DENIED);
	/* ...and without rules any address, known or not, is fine */
	p.pool_rules.pr_nnetworks = 0;
	assert_true(check(&p, &alice, NULL, MONDAY).pa_allowed);
	assert_true(check(&p, &alice, "203.0.113.1", MONDAY).pa_allowed);
}

static void test_time_rules(void **state)
{
	struct policy_window w[2];
	struct policy_pool p = pool(eng_entitlements, 2);

	(void)state;
	assert_int_equal(policy_windows_parse("Mon-Fri 07:00-19:00, Sat 22:00-02:00", w, 2), 2);
	p.pool_rules.pr_windows = w;
	p.pool_rules.pr_nwindows = 2;
	p.pool_rules.pr_utc_offset = 60;			      /* UTC+1 */
	assert_true(check(&p, &alice, NULL, AT(0, 6, 0)).pa_allowed); /* 07:00 local */
	assert_false(check(&p, &alice, NULL, AT(0, 5, 59)).pa_allowed);
	assert_false(check(&p, &alice, NULL, AT(0, 18, 0)).pa_allowed); /* 19:00 local */
	assert_true(check(&p, &alice, NULL, AT(5, 21, 0)).pa_allowed);	/* Sat 22:00 local */
	assert_true(check(&p, &alice, NULL, AT(6, 0, 59)).pa_allowed);	/* Sun 01:59 local */
	assert_int_equal(check(&p, &alice, NULL, AT(6, 1, 0)).pa_reason, POLICY_OUTSIDE_HOURS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_entitlements),
	    cmocka_unit_test(test_reason_order),
	    cmocka_unit_test(test_address_rules),
	    cmocka_unit_test(test_time_rules),
	};
	return cmocka_run_group_tests_name("policy_access", tests, NULL, NULL);
}
