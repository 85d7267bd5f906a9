/* Unit tests for policy/rules: IPv4 and IPv6 networks (parsing, prefixes, mapped
 * addresses) and weekly time windows (edges, overnight, wrapping day ranges, UTC
 * offsets), plus reason names. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "policy/rules.h"

/* 2024-01-01 00:00:00 UTC, a Monday. */
#define MONDAY	      1704067200LL
#define AT(day, h, m) (MONDAY + (day)*86400LL + (h)*3600LL + (m)*60LL)

static struct policy_addr addr(const char *text)
{
	struct policy_addr a;

	assert_int_equal(policy_addr_parse(text, &a), 0);
	return a;
}

static bool in(const char *net, const char *a)
{
	struct policy_cidr c;
	struct policy_addr x = addr(a);

	assert_int_equal(policy_cidr_parse(net, &c), 0);
	return policy_cidr_contains(&c, &x);
}

static void test_addresses(void **state)
{
	struct policy_addr a;

	(void)state;
	a = addr("192.0.2.7");
	assert_int_equal(a.pa_family, AF_INET);
	assert_memory_equal(a.pa_bytes, "\xc0\x00\x02\x07", 4);
	a = addr("::ffff:192.0.2.7"); /* IPv4-mapped: the IPv4 address */
	assert_int_equal(a.pa_family, AF_INET);
	assert_memory_equal(a.pa_bytes, "\xc0\x00\x02\x07", 4);
	a = addr("2001:db8::1");
	assert_int_equal(a.pa_family, AF_INET6);
	assert_int_equal(policy_addr_parse("", &a), -EINVAL);
	assert_int_equal(policy_addr_parse("192.0.2.256", &a), -EINVAL);
	assert_int_equal(policy_addr_parse("fe80::1%eth0", &a), -EINVAL);
	assert_int_equal(policy_addr_parse("192.0.2.7:443", &a), -EINVAL);
	assert_int_equal(policy_addr_parse("example.com", &a), -EINVAL);
	assert_int_equal(policy_addr_parse(NULL, &a), -EINVAL);
}

static void test_networks(void **state)
{
	struct policy_cidr c;

	(void)state;
	assert_true(in("10.0.0.0/8", "10.255.1.2"));
	assert_false(in("10.0.0.0/8", "11.0.0.1"));
	assert_true(in("192.168.4.0/22", "192.168.7.255"));
	assert_false(in("192.168.4.0/22", "192.168.8.0"));
	assert_false(in("192.168.4.0/22", "192.168.3.255"));
	assert_true(in("0.0.0.0/0", "203.0.113.9"));
	assert_true(in("203.0.113.9", "203.0.113.9")); /* a bare address is a /32 */
	assert_false(in("203.0.113.9", "203.0.113.8"));
	assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in("2001:db8::/32", "2001:db9::1"));
	assert_true(in("2001:db8:0:2::/63", "2001:db8:0:3:ffff::"));
	assert_false(in("2001:db8:0:2::/63", "2001:db8:0:1::1"));
	assert_true(in("2001:db8::1/128", "2001:db8::1"));
	assert_true(in("::/0", "2001:db8::1"));
	/* families never mix: an IPv6 catch-all does not admit IPv4 clients... */
	assert_false(in("::/0", "10.0.0.1"));
	assert_false(in("0.0.0.0/0", "2001:db8::1"));
	/* ...but an IPv4 client seen through an IPv6 socket is an IPv4 client */
	assert_true(in("10.0.0.0/8", "::ffff:10.1.2.3"));

	assert_int_equal(policy_cidr_parse("10.1.2.3/8", &c), -EINVAL); /* host bits */
	assert_int_equal(policy_cidr_parse("2001:db8::1/32", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("2001:db8:0:1::/63", &c), -EINVAL); /* bit 63 */
	assert_int_equal(policy_cidr_parse("10.0.0.0/33", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("2001:db8::/129", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("10.0.0.0/-1", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("10.0.0.0/", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("10.0.0.0/8x", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("/8", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("ten/8", &c), -EINVAL);
	assert_int_equal(policy_cidr_parse("2001:db8::/32", &c), 0);
	assert_int_equal(c.pc_prefix, 32);
	assert_int_equal(c.pc_net.pa_family, AF_INET6);
}

static struct policy_window window(const char *text)
{
	struct policy_window w;

	assert_int_equal(policy_window_parse(text, &w), 0);
	return w;
}

static void test_window_parse(void **state)
{
	struct policy_window w, ws[4];

	(void)state;
	w = window("Mon-Fri 07:00-19:00");
	assert_int_equal(w.pw_days, 0x1f);
	assert_int_equal(w.pw_start, 7 * 60);
	assert_int_equal(w.pw_end, 19 * 60);
	assert_int_equal(window("sat 09:30-24:00").pw_days, 0x20);
	assert_int_equal(window("SUN 00:00-24:00").pw_end, 1440);
	assert_int_equal(window("Fri-Mon 08:00-12:00").pw_days, 0x01 | 0x10 | 0x20 | 0x40);
	assert_int_equal(window("* 22:00-06:00").pw_days, 0x7f);
	const char *bad[] = {
	    "",
	    "Mon-Fri",
	    "Mon-Fri 7:00-19:00",
	    "Mon-Fri 07:00-07:00",
	    "Mon 24:00-24:00",
	    "Mon 07:00-24:30",
	    "Mon 07:60-08:00",
	    "Funday 07:00-08:00",
	    "Mon-Fri07:00-19:00",
	    "Mon-Fri 07:00 19:00",
	    "Mon-Fri 07:00-19:00 x",
	    "Mon- 07:00-08:00",
	    "Mon 25:00-26:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (policy_window_parse(bad[i], &w) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(policy_windows_parse("Mon-Fri 07:00-19:00, Sat 09:00-13:00", ws, 4), 2);
	assert_int_equal(ws[1].pw_days, 0x20);
	assert_int_equal(
	    policy_windows_parse("Mon 01:00-02:00,Tue 01:00-02:00,Wed 01:00-02:00", ws, 2), -E2BIG);
	assert_int_equal(policy_windows_parse("Mon 01:00-02:00,", ws, 4), -EINVAL);
	assert_int_equal(policy_windows_parse("Mon 01:00-02:00; Tue 01:00-02:00", ws, 4), -EINVAL);
}

static void test_window_edges(void **state)
{
	struct policy_window office = window("Mon-Fri 07:00-19:00");

	(void)state;
	assert_false(policy_window_contains(&office, AT(0, 6, 59), 0));
	assert_true(policy_window_contains(&office, AT(0, 7, 0), 0)); /* start inclusive */
	assert_true(policy_window_contains(&office, AT(0, 18, 59), 0));
	assert_false(policy_window_contains(&office, AT(0, 19, 0), 0)); /* end exclusive */
	assert_true(policy_window_contains(&office, AT(4, 12, 0), 0));	/* Friday */
	assert_false(policy_window_contains(&office, AT(5, 12, 0), 0)); /* Saturday */
	assert_false(policy_window_contains(&office, AT(6, 12, 0), 0)); /* Sunday */
	assert_true(policy_window_contains(&office, AT(7, 12, 0), 0));	/* next Monday */
	/* the last second before the end is in, the end is out */
	assert_true(policy_window_contains(&office, AT(0, 18, 59) + 59, 0));
	/* before 1970 still works (floor division): 1969-12-31 was a Wednesday */
	struct policy_window wednesday = window("Wed 00:00-24:00");
	assert_true(policy_window_contains(&wednesday, -86400LL, 0));
	assert_true(policy_window_contains(&wednesday, -1LL, 0));
	assert_false(policy_window_contains(&wednesday, 0, 0));

	struct policy_window all_day = window("Sun 00:00-24:00");
	assert_true(policy_window_contains(&all_day, AT(6, 0, 0), 0));
	assert_true(policy_window_contains(&all_day, AT(6, 23, 59), 0));
	assert_false(policy_window_contains(&all_day, AT(7, 0, 0), 0));
}

static void test_window_overnight(void **state)
{
	struct policy_window night = window("Mon-Fri 22:00-06:00");

	(void)state;
	assert_false(
	    policy_window_contains(&night, AT(0, 5, 0), 0)); /* Monday morning: Sunday night */
	assert_false(policy_window_contains(&night, AT(0, 21, 59), 0));
	assert_true(policy_window_contains(&night, AT(0, 22, 0), 0));
	assert_true(policy_window_contains(&night, AT(0, 23, 59), 0));
	assert_true(policy_window_contains(&night, AT(1, 0, 0), 0)); /* Tuesday 00:00 */
	assert_true(policy_window_contains(&night, AT(1, 5, 59), 0));
	assert_false(policy_window_contains(&night, AT(1, 6, 0), 0));
	assert_true(
	    policy_window_contains(&night, AT(5, 3, 0), 0)); /* Saturday 03:00: Friday night */
	assert_false(policy_window_contains(&night, AT(5, 22, 0), 0)); /* Saturday night */
	assert_false(policy_window_contains(&night, AT(6, 3, 0), 0));
	/* a wrapping day range */
	struct policy_window weekend = window("Fri-Mon 10:00-11:00");
	assert_true(policy_window_contains(&weekend, AT(6, 10, 30), 0));
	assert_true(policy_window_contains(&weekend, AT(0, 10, 30), 0));
	assert_false(policy_window_contains(&weekend, AT(1, 10, 30), 0));
}

static void test_window_utc_offset(void **state)
{
	struct policy_window office = window("Mon-Fri 07:00-19:00");

	(void)state;
	/* UTC+2: 05:00 UTC is 07:00 local */
	assert_true(policy_window_contains(&office, AT(0, 5, 0), 120));
	assert_false(policy_window_contains(&office, AT(0, 4, 59), 120));
	assert_false(policy_window_contains(&office, AT(0, 17, 0), 120));
	/* UTC-5: Saturday 02:00 UTC is Friday 21:00 local (outside), Monday 03:00 UTC is
	 * Sunday 22:00 local (outside), Tuesday 00:30 UTC is Monday 19:30 (outside),
	 * Monday 23:30 UTC is Monday 18:30 local (inside) */
	assert_false(policy_window_contains(&office, AT(5, 2, 0), -300));
	assert_false(policy_window_contains(&office, AT(0, 3, 0), -300));
	assert_false(policy_window_contains(&office, AT(1, 0, 30), -300));
	assert_true(policy_window_contains(&office, AT(0, 23, 30), -300));
	/* UTC+14 and a day boundary: Sunday 17:00 UTC is Monday 07:00 local */
	assert_true(policy_window_contains(&office, AT(6, 17, 0), 840));
}

static void test_reason_names(void **state)
{
	(void)state;
	assert_string_equal(policy_reason_name(POLICY_OK), "ok");
	assert_string_equal(policy_reason_name(POLICY_NOT_ENTITLED), "not_entitled");
	assert_string_equal(policy_reason_name(POLICY_NO_DESKTOP), "no_desktop_available");
	assert_string_equal(policy_reason_name(POLICY_INVALID_TRANSITION), "invalid_transition");
	assert_string_equal(policy_reason_name(POLICY_REASON_COUNT), "unknown");
	assert_string_equal(policy_reason_name((enum policy_reason) - 1), "unknown");
	for (int r = 0; r < POLICY_REASON_COUNT; r++)
		assert_string_not_equal(policy_reason_name((enum policy_reason)r), "unknown");
	assert_true(policy_name_equal("Engineering", "engineering"));
	assert_false(policy_name_equal("engineering", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addresses),	     cmocka_unit_test(test_networks),
	    cmocka_unit_test(test_window_parse),     cmocka_unit_test(test_window_edges),
	    cmocka_unit_test(test_window_overnight), cmocka_unit_test(test_window_utc_offset),
	    cmocka_unit_test(test_reason_names),
	};
	return cmocka_run_group_tests_name("policy_rules", tests, NULL, NULL);
}
