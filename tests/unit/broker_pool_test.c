/* Unit tests for broker/pool: create and update requests checked and completed with
 * defaults, rules parsed as policy/ parses them, and stored records turned back into
 * policy views. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/pool.h"

static json_t *req(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_create_defaults(void **state)
{
	json_t *r = req("{\"id\": \"eng\", \"kind\": \"dedicated\", \"template\": {\"disk\": "
			"\"home.img\"}, \"networks\": \"10.0.0.0/8, ::1\", \"windows\": "
			"\"Mon-Fri 07:00-19:00\", \"entitlements\": []}");
	char err[256];
	json_t *p = pool_from_request(r, NULL, err, sizeof(err));

	(void)state;
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "name")), "eng");
	assert_string_equal(json_string_value(json_object_get(p, "kind")), "dedicated");
	assert_string_equal(json_string_value(json_object_get(p, "source")), "automated");
	assert_string_equal(json_string_value(json_object_get(p, "logoff_action")), "refresh");
	assert_int_equal(json_integer_value(json_object_get(p, "memory_mib")), 512);
	assert_true(json_is_true(json_object_get(p, "enabled")));
	assert_false(pool_is_manual(p));
	json_decref(r);
	/* an update keeps what it does not name */
	r = req("{\"spare\": 2, \"max\": 4}");
	json_t *u = pool_from_request(r, p, err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(json_integer_value(json_object_get(u, "spare")), 2);
	assert_string_equal(json_string_value(json_object_get(u, "windows")),
			    "Mon-Fri 07:00-19:00");
	json_decref(u);
	json_decref(r);
	json_decref(p);
}

/* A stored pool record as policy/ sees it. */
static void test_view(void **state)
{
	struct entitlement_rec ents[] = {{ENTITLEMENT_USER, (char *)"bob"},
					 {ENTITLEMENT_GROUP, (char *)"staff"}};
	struct pool_rec p = {
	    .pr_id = (char *)"eng",
	    .pr_kind = POOL_DEDICATED,
	    .pr_source = POOL_MANUAL,
	    .pr_enabled = true,
	    .pr_max = 4,
	    .pr_disconnect_timeout = -1,
	    .pr_logoff_action = POOL_LOGOFF_DESTROY,
	    .pr_networks = (char *)"10.0.0.0/8, ::1",
	    .pr_windows = (char *)"Mon-Fri 07:00-19:00",
	    .pr_hosts = (char *)"h1, h2",
	    .pr_utc_offset = 60,
	    .pr_ents = ents,
	    .pr_nents = 2,
	};
	struct pool_view v;

	(void)state;
	assert_int_equal(pool_view_init(&v, &p), 0);
	assert_string_equal(v.pv_pool.pool_id, "eng");
	assert_true(v.pv_pool.pool_enabled);
	assert_int_equal(v.pv_pool.pool_kind, POLICY_DEDICATED);
	assert_int_equal(v.pv_pool.pool_provisioning, POLICY_MANUAL);
	assert_int_equal(v.pv_pool.pool_logoff_action, POLICY_LOGOFF_DESTROY);
	assert_int_equal(v.pv_pool.pool_max, 4);
	assert_int_equal(v.pv_pool.pool_disconnect_timeout, -1);
	assert_int_equal(v.pv_pool.pool_rules.pr_nnetworks, 2);
	assert_int_equal(v.pv_pool.pool_rules.pr_nwindows, 1);
	assert_int_equal(v.pv_pool.pool_rules.pr_utc_offset, 60);
	assert_int_equal(v.pv_pool.pool_nhosts, 2);
	assert_string_equal(v.pv_pool.pool_hosts[1], "h2");
	assert_int_equal(v.pv_pool.pool_nentitlements, 2);
	assert_int_equal(v.pv_pool.pool_entitlements[0].pe_kind, POLICY_PRINCIPAL_USER);
	assert_int_equal(v.pv_pool.pool_entitlements[1].pe_kind, POLICY_PRINCIPAL_GROUP);
	assert_string_equal(v.pv_pool.pool_entitlements[1].pe_name, "staff");
	pool_view_free(&v);
	/* rules that no longer parse: the pool is treated as disabled */
	p.pr_windows = (char *)"Someday";
	assert_int_equal(pool_view_init(&v, &p), -EINVAL);
	assert_false(v.pv_pool.pool_enabled);
	pool_view_free(&v);
}

static void test_refusals(void **state)
{
	static const char *const bad[] = {
	    "{\"kind\": \"floating\", \"source\": \"manual\"}",
	    "{\"id\": \"-x\", \"kind\": \"floating\", \"source\": \"manual\"}",
	    "{\"id\": \"UPPER\", \"kind\": \"floating\", \"source\": \"manual\"}",
	    "{\"id\": \"x\", \"source\": \"manual\"}",
	    "{\"id\": \"x\", \"kind\": \"floating\"}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"max\": 1, "
	    "\"spare\": 2}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"vcpus\": 0}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"networks\": "
	    "\"10.1.2.3/8\"}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"windows\": "
	    "\"Someday\"}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"hosts\": \"a b\"}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"name\": \"a\\nb\"}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"color\": 1}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"automated\", \"template\": "
	    "{\"kernel\": \"k\"}}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"automated\", \"template\": "
	    "{\"disk\": \"d\", \"engine\": \"bochs\"}}",
	    "{\"id\": \"x\", \"kind\": \"floating\", \"source\": \"manual\", \"min\": true}",
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *r = req(bad[i]), *p;

		err[0] = '\0';
		p = pool_from_request(r, NULL, err, sizeof(err));
		if (p)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		json_decref(r);
	}
	assert_true(pool_id_valid("a-1", 24));
	assert_false(pool_id_valid("", 24));
	assert_false(pool_id_valid("a_1", 24));
}

static void test_states(void **state)
{
	(void)state;
	assert_int_equal(pool_desktop_state(DESKTOP_READY), POLICY_DESKTOP_READY);
	assert_int_equal(pool_desktop_state(DESKTOP_LOST), POLICY_DESKTOP_ERROR);
	assert_int_equal(pool_desktop_state(DESKTOP_ERROR), POLICY_DESKTOP_ERROR);
	/* policy's session states and the stored ones, both ways */
	assert_int_equal(pool_session_state(SESSION_CONNECTED), POLICY_SESSION_CONNECTED);
	assert_int_equal(pool_session_state(SESSION_DISCONNECTED), POLICY_SESSION_DISCONNECTED);
	assert_int_equal(pool_session_state(SESSION_LOGGED_OFF), POLICY_SESSION_LOGGED_OFF);
	for (int i = POLICY_SESSION_CONNECTED; i <= POLICY_SESSION_LOGGED_OFF; i++)
		assert_int_equal(pool_session_state(pool_stored_session_state(i)), i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_defaults),
	    cmocka_unit_test(test_view),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_states),
	};
	return cmocka_run_group_tests_name("broker_pool", tests, NULL, NULL);
}
