/* Unit tests for hostd/tickets: format, single use, expiry, one live ticket per
 * desktop, revocation, and the table's limit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hostd/tickets.h"

#define NOW 1700000000LL

static void test_format(void **state)
{
	(void)state;
	assert_true(tickets_valid("abcdefghijklmnop"));
	assert_true(tickets_valid("A-Z_a-z_0-9_-----"));
	assert_false(tickets_valid("short"));
	assert_false(tickets_valid("abcdefghijklmnop qrs"));
	assert_false(tickets_valid("abcdefghijklmnop\n"));
	assert_false(tickets_valid("abcdefghijklmnop/.."));
	char longer[TICKET_MAX_LEN + 2];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_false(tickets_valid(longer));
	longer[TICKET_MAX_LEN] = '\0';
	assert_true(tickets_valid(longer));
}

static void test_single_use_and_expiry(void **state)
{
	struct tickets *t = tickets_create();
	char id[DESKTOP_ID_MAX + 1];
	bool view_only = true;

	(void)state;
	assert_non_null(t);
	assert_int_equal(tickets_add(t, "ticket-one-0000001", "d1", NOW + 60, false, NOW), 0);
	assert_int_equal(tickets_add(t, "ticket-one-0000001", "d2", NOW + 60, false, NOW), -EEXIST);
	assert_int_equal(tickets_add(t, "bad ticket!", "d1", NOW + 60, false, NOW), -EINVAL);
	assert_int_equal(tickets_add(t, "ticket-two-0000002", "../x", NOW + 60, false, NOW),
			 -EINVAL);
	assert_int_equal(tickets_redeem(t, "ticket-unknown-000", NOW, id, &view_only), -ENOENT);
	assert_int_equal(tickets_redeem(t, "ticket-one-0000001", NOW + 1, id, &view_only), 0);
	assert_string_equal(id, "d1");
	assert_false(view_only);
	/* Used: gone. */
	assert_int_equal(tickets_redeem(t, "ticket-one-0000001", NOW + 1, id, &view_only), -ENOENT);
	/* Expired: refused and removed. */
	assert_int_equal(tickets_add(t, "ticket-three-00003", "d3", NOW + 5, true, NOW), 0);
	assert_int_equal(tickets_redeem(t, "ticket-three-00003", NOW + 5, id, &view_only),
			 -ETIMEDOUT);
	assert_int_equal(tickets_count(t), 0);
	tickets_free(t);
}

static void test_one_ticket_per_desktop_and_revoke(void **state)
{
	struct tickets *t = tickets_create();
	char id[DESKTOP_ID_MAX + 1];
	bool view_only = false;

	(void)state;
	assert_int_equal(tickets_add(t, "first-ticket-00001", "d1", NOW + 60, false, NOW), 0);
	assert_int_equal(tickets_add(t, "second-ticket-0002", "d1", NOW + 60, true, NOW), 0);
	assert_int_equal(tickets_add(t, "other-ticket-00003", "d2", NOW + 60, false, NOW), 0);
	assert_int_equal(tickets_count(t), 2);
	/* The newer one replaced the older: the VNC password changed with it. */
	assert_int_equal(tickets_redeem(t, "first-ticket-00001", NOW, id, &view_only), -ENOENT);
	assert_int_equal(tickets_redeem(t, "second-ticket-0002", NOW, id, &view_only), 0);
	assert_true(view_only);
	tickets_revoke(t, "d2");
	assert_int_equal(tickets_redeem(t, "other-ticket-00003", NOW, id, &view_only), -ENOENT);
	tickets_free(t);
}

static void test_table_limit_and_expired_cleanup(void **state)
{
	struct tickets *t = tickets_create();
	char ticket[32], desktop[16];
	int i;

	(void)state;
	for (i = 0; i < TICKETS_MAX; i++) {
		snprintf(ticket, sizeof(ticket), "ticket-%010d", i);
		snprintf(desktop, sizeof(desktop), "d%d", i);
		assert_int_equal(tickets_add(t, ticket, desktop, NOW + 10, false, NOW), 0);
	}
	assert_int_equal(tickets_add(t, "one-too-many-00000", "dx", NOW + 10, false, NOW), -ENOSPC);
	/* Once they expire, adding sweeps them out. */
	assert_int_equal(tickets_add(t, "one-too-many-00000", "dx", NOW + 30, false, NOW + 20), 0);
	assert_int_equal(tickets_count(t), 1);
	tickets_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_single_use_and_expiry),
	    cmocka_unit_test(test_one_ticket_per_desktop_and_revoke),
	    cmocka_unit_test(test_table_limit_and_expired_cleanup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
