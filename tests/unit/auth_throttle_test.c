/* Unit tests for auth/throttle: failures before the first delay, doubling delays and
 * their cap, the window, per-account-and-address vs per-account vs per-address counts,
 * address grouping, bounded memory with LRU eviction, and concurrent use. Time is
 * passed in. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "auth/throttle.h"

static const struct throttle_config cfg = {
    .tc_user_failures = 3,
    .tc_account_failures = 8,
    .tc_addr_failures = 10,
    .tc_window = 600,
    .tc_base_delay = 30,
    .tc_max_delay = 300,
    .tc_entries = 64,
};

static void test_account_backoff(void **state)
{
	struct throttle *t = throttle_new(&cfg);
	int64_t now = 1000000;

	(void)state;
	assert_non_null(t);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now), 0);
	throttle_failure(t, "alice", "10.0.0.1", now);
	throttle_failure(t, "alice", "10.0.0.1", now + 1);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 2), 0);
	/* the third failure starts the first delay */
	throttle_failure(t, "alice", "10.0.0.1", now + 2);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 2), 30);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 31), 1);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 32), 0);
	/* account names ignore ASCII case; each further failure doubles the delay */
	throttle_failure(t, "ALICE", "10.0.0.1", now + 32);
	assert_int_equal(throttle_check(t, "Alice", "10.0.0.1", now + 32), 60);
	throttle_failure(t, "alice", "10.0.0.1", now + 92);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 92), 120);
	throttle_failure(t, "alice", "10.0.0.1", now + 212);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 212), 240);
	/* capped */
	throttle_failure(t, "alice", "10.0.0.1", now + 452);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 452), 300);
	for (int i = 0; i < 40; i++)
		throttle_failure(t, "alice", "10.0.0.1", now + 453 + i);
	assert_int_equal(throttle_check(t, "alice", "10.0.0.1", now + 492), 300);
	/* 47 failures, past the overall limit of 8: the account waits from anywhere now */
	assert_int_equal(throttle_check(t, "alice", "198.51.100.1", now + 492), 300);
	/* another account is not affected */
	assert_int_equal(throttle_check(t, "bob", NULL, now + 492), 0);
	throttle_free(t);
}

/* One address guessing at an account delays that account there, not from elsewhere,
 * until the account's overall limit (much higher) is reached. */
static void test_account_per_address(void **state)
{
	struct throttle *t = throttle_new(&cfg);
	int64_t now = 2000;

	(void)state;
	for (int i = 0; i < 3; i++)
		throttle_failure(t, "dave", "203.0.113.9", now);
	assert_int_equal(throttle_check(t, "dave", "203.0.113.9", now), 30);
	assert_int_equal(throttle_check(t, "DAVE", "203.0.113.9", now), 30);
	/* the owner, from the office, is not locked out by the guesser behind the NAT */
	assert_int_equal(throttle_check(t, "dave", "198.51.100.20", now), 0);
	/* an IPv6 guesser is one /64, whatever address of it it uses */
	for (int i = 0; i < 3; i++) {
		char addr[64];

		snprintf(addr, sizeof(addr), "2001:db8:5:6::%x", i + 1);
		throttle_failure(t, "dave", addr, now + 1);
	}
	assert_int_equal(throttle_check(t, "dave", "2001:db8:5:6::99", now + 1), 30);
	assert_int_equal(throttle_check(t, "dave", "198.51.100.20", now + 1), 0);
	/* many addresses together reach the overall limit (8): then it waits everywhere */
	throttle_failure(t, "dave", "192.0.2.50", now + 2);
	assert_int_equal(throttle_check(t, "dave", "198.51.100.20", now + 2), 0);
	throttle_failure(t, "dave", "192.0.2.51", now + 2);
	assert_int_equal(throttle_check(t, "dave", "198.51.100.20", now + 2), 30);
	assert_int_equal(throttle_check(t, "dave", NULL, now + 2), 30);
	/* per-address lockout stays: one address guessing many accounts waits for any */
	for (int i = 0; i < 10; i++) {
		char user[32];

		snprintf(user, sizeof(user), "user%d", i);
		throttle_failure(t, user, "192.0.2.99", now + 3);
	}
	assert_int_equal(throttle_check(t, "someone", "192.0.2.99", now + 3), 30);
	assert_int_equal(throttle_check(t, "someone", "192.0.2.98", now + 3), 0);
	/* a success forgets the account from that address and overall */
	throttle_success(t, "dave", "203.0.113.9", now + 40);
	assert_int_equal(throttle_check(t, "dave", "203.0.113.9", now + 40), 0);
	assert_int_equal(throttle_check(t, "dave", "198.51.100.20", now + 40), 0);
	throttle_free(t);
}

/* Spellings a directory takes for the same account share its counts: NFKC_Casefold
 * (case, fullwidth and other compatibility forms), as typed before any lookup. */
static void test_name_folding(void **state)
{
	struct throttle *t = throttle_new(&cfg);

	(void)state;
	for (int i = 0; i < 3; i++)
		throttle_failure(t, "erin", "10.0.0.1", 100);
	assert_int_equal(throttle_check(t, "ERIN", "10.0.0.1", 100), 30);
	assert_int_equal(throttle_check(t, "\uff45\uff52\uff49\uff4e", "10.0.0.1", 100), 30);
	assert_int_equal(throttle_check(t, "\uff25\uff32\uff29\uff2e", "10.0.0.1", 100), 30);
	assert_int_equal(throttle_check(t, "e\uff52in", "10.0.0.1", 100), 30);
	/* failures typed in fullwidth count for the same account */
	throttle_failure(t, "\uff46rank", "10.0.0.1", 100);
	throttle_failure(t, "FRANK", "10.0.0.1", 100);
	throttle_failure(t, "\uff46\uff52\uff41\uff4e\uff4b", "10.0.0.1", 100);
	assert_int_equal(throttle_check(t, "frank", "10.0.0.1", 100), 30);
	/* other names stay apart: a fullwidth digit is its digit, not another one */
	assert_int_equal(throttle_check(t, "erin2", "10.0.0.1", 100), 0);
	assert_int_equal(throttle_check(t, "erin\uff12", "10.0.0.1", 100), 0);
	assert_int_equal(throttle_check(t, "er\u00efn", "10.0.0.1", 100), 0);
	/* beyond ASCII, full Unicode case folding: a capital with a diacritic, sharp s and
	 * its capital, Greek final sigma */
	for (int i = 0; i < 3; i++)
		throttle_failure(t, "\u00c9mile Stra\u00dfe", "10.0.1.1", 100);
	assert_int_equal(throttle_check(t, "\u00e9MILE STRASSE", "10.0.1.1", 100), 30);
	assert_int_equal(throttle_check(t, "\u00e9mile stra\u1e9ee", "10.0.1.1", 100), 30);
	for (int i = 0; i < 3; i++)
		throttle_failure(t, "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3", "10.0.2.1",
				 100);
	assert_int_equal(
	    throttle_check(t, "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2", "10.0.2.1", 100),
	    30);
	/* a name that is not UTF-8 is taken as it is */
	throttle_failure(t, "\xff\xfe", "10.0.3.1", 100);
	assert_int_equal(throttle_check(t, "\xff\xfe", "10.0.3.1", 100), 0);
	throttle_free(t);
}

static void test_window(void **state)
{
	struct throttle *t = throttle_new(&cfg);
	int64_t now = 5000;

	(void)state;
	throttle_failure(t, "bob", NULL, now);
	throttle_failure(t, "bob", NULL, now + 599);
	/* 600 s after the last failure the count starts again */
	throttle_failure(t, "bob", NULL, now + 1199);
	assert_int_equal(throttle_check(t, "bob", NULL, now + 1199), 0);
	throttle_failure(t, "bob", NULL, now + 1200);
	assert_int_equal(throttle_check(t, "bob", NULL, now + 1200), 0);
	throttle_failure(t, "bob", NULL, now + 1201);
	assert_int_equal(throttle_check(t, "bob", NULL, now + 1201), 30);
	throttle_free(t);
}

static void test_success_resets_account_only(void **state)
{
	struct throttle *t = throttle_new(&cfg);
	char user[32];

	(void)state;
	throttle_failure(t, "carol", "10.1.1.1", 100);
	throttle_failure(t, "carol", "10.1.1.1", 101);
	throttle_success(t, "carol", "10.1.1.1", 102);
	throttle_failure(t, "carol", "10.1.1.1", 103);
	throttle_failure(t, "carol", "10.1.1.1", 104);
	assert_int_equal(throttle_check(t, "carol", NULL, 104), 0);
	/* guessing many accounts from one address: the address is delayed, for any account,
	 * and a success there (with a valid account) does not reset it */
	for (int i = 0; i < 6; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		throttle_failure(t, user, "10.1.1.1", 105);
	}
	throttle_success(t, "carol", "10.1.1.1", 105);
	assert_int_equal(throttle_check(t, "newuser", "10.1.1.1", 105), 30);
	assert_int_equal(throttle_check(t, "newuser", "10.1.1.2", 105), 0);
	throttle_free(t);
}

static void test_address_grouping(void **state)
{
	struct throttle *t = throttle_new(&cfg);

	(void)state;
	/* an IPv6 client owns its /64: failures from one /64 add up */
	for (int i = 0; i < 10; i++) {
		char addr[64];

		snprintf(addr, sizeof(addr), "2001:db8:1:2::%x", i + 1);
		throttle_failure(t, NULL, addr, 10);
	}
	assert_int_equal(throttle_check(t, NULL, "2001:db8:1:2:ffff::1", 10), 30);
	assert_int_equal(throttle_check(t, NULL, "2001:db8:1:3::1", 10), 0);
	/* an IPv4-mapped IPv6 address is the IPv4 address */
	for (int i = 0; i < 10; i++)
		throttle_failure(t, NULL, "::ffff:192.0.2.1", 20);
	assert_int_equal(throttle_check(t, NULL, "192.0.2.1", 20), 30);
	assert_int_equal(throttle_check(t, NULL, "192.0.2.2", 20), 0);
	throttle_free(t);
}

static void test_bounded_lru(void **state)
{
	struct throttle_config small = cfg;
	struct throttle *t;
	char name[32];

	(void)state;
	small.tc_entries = 16;
	t = throttle_new(&small);
	/* an account under attack is locked... */
	for (int i = 0; i < 3; i++)
		throttle_failure(t, "victim", NULL, 100);
	assert_int_equal(throttle_check(t, "victim", NULL, 100), 30);
	/* ...and flooding the table with other names does not unlock it: eviction takes
	 * entries that are not locked first */
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "flood%d", i);
		throttle_failure(t, name, NULL, 101);
	}
	assert_int_equal(throttle_check(t, "victim", NULL, 101), 29);
	/* the table stays 16 entries: old unlocked names are forgotten */
	throttle_failure(t, "flood0", NULL, 102);
	throttle_failure(t, "flood0", NULL, 102);
	assert_int_equal(throttle_check(t, "flood0", NULL, 102), 0);
	/* recently used entries survive */
	throttle_failure(t, "flood999", NULL, 102);
	throttle_failure(t, "flood999", NULL, 102);
	assert_int_equal(throttle_check(t, "flood999", NULL, 102), 30);
	throttle_free(t);
}

static void test_bad_config(void **state)
{
	struct throttle_config bad = cfg;

	(void)state;
	bad.tc_entries = 0;
	assert_null(throttle_new(&bad));
	bad = cfg;
	bad.tc_max_delay = 10;
	assert_null(throttle_new(&bad));
	bad = cfg;
	bad.tc_user_failures = 0;
	assert_null(throttle_new(&bad));
	bad = cfg;
	bad.tc_account_failures = 0;
	assert_null(throttle_new(&bad));
}

struct worker {
	struct throttle *w_t;
	int w_id;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	char name[32];

	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "u%d-%d", w->w_id, i % 50);
		throttle_failure(w->w_t, name, "10.9.9.9", i);
		throttle_check(w->w_t, name, "10.9.9.9", i);
		if (i % 7 == 0)
			throttle_success(w->w_t, name, "10.9.9.9", i);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct throttle_config c = cfg;
	struct worker w[4];
	pthread_t th[4];
	struct throttle *t;

	(void)state;
	c.tc_entries = 32;
	t = throttle_new(&c);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.w_t = t, .w_id = i};
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* the shared address saw 8000 failures: it is delayed by the cap */
	assert_int_equal(throttle_check(t, NULL, "10.9.9.9", 1999), 300);
	throttle_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_account_backoff),
	    cmocka_unit_test(test_account_per_address),
	    cmocka_unit_test(test_name_folding),
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_success_resets_account_only),
	    cmocka_unit_test(test_address_grouping),
	    cmocka_unit_test(test_bounded_lru),
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests_name("auth_throttle", tests, NULL, NULL);
}
