/* Unit tests for display/ticket: the rules for setting tickets (length, expiry,
 * full and view-only kept apart, a bounded number of view-only ones), checks
 * through real VNC challenge-responses (libvncserver's DES), expiry and
 * clearing; and the throttle's exponential delays per source and for all
 * sources, with its times given. */
#include <errno.h>
#include <rfb/rfb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "display/vnc_ticket.h"

#define NOW 1800000000LL

/* What a viewer typing password answers to challenge. */
static void respond(const char *password, const uint8_t *challenge, uint8_t *response)
{
	char key[9] = {0};

	strncpy(key, password, 8);
	memcpy(response, challenge, 16);
	rfbEncryptBytes(response, key);
}

static enum vnc_ticket_access login(struct vnc_tickets *t, const char *password, int64_t now)
{
	uint8_t challenge[16], response[16];

	for (int i = 0; i < 16; i++)
		challenge[i] = (uint8_t)(i * 37 + 11);
	respond(password, challenge, response);
	return vnc_tickets_check(t, challenge, response, now);
}

static void test_set_rules(void **state)
{
	struct vnc_tickets *t = vnc_tickets_create();
	char long_pw[VNC_TICKET_PASSWORD_MAX + 2];

	(void)state;
	memset(long_pw, 'x', sizeof(long_pw) - 1);
	long_pw[sizeof(long_pw) - 1] = '\0';
	assert_false(vnc_tickets_any(t, NOW));
	assert_int_equal(vnc_tickets_set(t, "seven77", NOW + 60, false, NOW), -EINVAL);
	assert_int_equal(vnc_tickets_set(t, NULL, NOW + 60, false, NOW), -EINVAL);
	assert_int_equal(vnc_tickets_set(t, long_pw, NOW + 60, false, NOW), -EINVAL);
	assert_int_equal(vnc_tickets_set(t, "eight888", NOW, false, NOW), -ETIMEDOUT);
	assert_int_equal(vnc_tickets_set(t, "eight888", NOW + 60, false, NOW), 0);
	assert_true(vnc_tickets_any(t, NOW));
	/* The same first 8 bytes cannot be both kinds. */
	assert_int_equal(vnc_tickets_set(t, "eight888-view", NOW + 60, true, NOW), -EEXIST);
	assert_int_equal(vnc_tickets_set(t, "viewer01", NOW + 60, true, NOW), 0);
	assert_int_equal(vnc_tickets_set(t, "viewer01", NOW + 60, false, NOW), -EEXIST);
	/* Bounded view-only tickets; the same one again only extends it. */
	for (int i = 2; i <= VNC_TICKET_VIEW_ONLY_MAX; i++) {
		char pw[16];

		snprintf(pw, sizeof(pw), "viewer%02d", i);
		assert_int_equal(vnc_tickets_set(t, pw, NOW + 60, true, NOW), 0);
	}
	assert_int_equal(vnc_tickets_set(t, "viewer01", NOW + 120, true, NOW), 0);
	assert_int_equal(vnc_tickets_set(t, "one-more", NOW + 60, true, NOW), -ENOSPC);
	/* An expired slot is reused. */
	assert_int_equal(vnc_tickets_set(t, "one-more", NOW + 200, true, NOW + 61), 0);
	vnc_tickets_free(t);
}

static void test_check(void **state)
{
	struct vnc_tickets *t = vnc_tickets_create();

	(void)state;
	assert_int_equal(login(t, "anything", NOW), VNC_TICKET_REFUSED);
	assert_int_equal(vnc_tickets_set(t, "full-access-1", NOW + 60, false, NOW), 0);
	assert_int_equal(vnc_tickets_set(t, "look-only", NOW + 30, true, NOW), 0);
	assert_int_equal(login(t, "full-access-1", NOW), VNC_TICKET_FULL);
	assert_int_equal(login(t, "full-acc", NOW), VNC_TICKET_FULL); /* 8 bytes count */
	assert_int_equal(login(t, "full-ac", NOW), VNC_TICKET_REFUSED);
	assert_int_equal(login(t, "look-only", NOW), VNC_TICKET_VIEW_ONLY);
	assert_int_equal(login(t, "look-onl", NOW), VNC_TICKET_VIEW_ONLY);
	assert_int_equal(login(t, "wrong-pw", NOW), VNC_TICKET_REFUSED);
	/* Expiry. */
	assert_int_equal(login(t, "look-only", NOW + 30), VNC_TICKET_REFUSED);
	assert_int_equal(login(t, "full-access-1", NOW + 59), VNC_TICKET_FULL);
	assert_int_equal(login(t, "full-access-1", NOW + 60), VNC_TICKET_REFUSED);
	assert_false(vnc_tickets_any(t, NOW + 60));
	/* Rotation replaces the full ticket. */
	assert_int_equal(vnc_tickets_set(t, "rotated-1", NOW + 60, false, NOW), 0);
	assert_int_equal(login(t, "full-access-1", NOW), VNC_TICKET_REFUSED);
	assert_int_equal(login(t, "rotated-1", NOW), VNC_TICKET_FULL);
	vnc_tickets_clear(t);
	assert_int_equal(login(t, "rotated-1", NOW), VNC_TICKET_REFUSED);
	assert_false(vnc_tickets_any(t, NOW));
	vnc_tickets_free(t);
}

static void test_throttle_per_source(void **state)
{
	struct vnc_throttle th = {0};
	uint64_t retry = 0, now = 1000000;

	(void)state;
	for (int i = 0; i < VNC_THROTTLE_SOURCE_FREE; i++) {
		assert_true(vnc_throttle_allowed(&th, "10.0.0.1", now, &retry));
		vnc_throttle_failure(&th, "10.0.0.1", now);
	}
	assert_true(vnc_throttle_allowed(&th, "10.0.0.1", now, &retry));
	/* Then each failure blocks for twice as long as the one before. */
	for (uint64_t delay = VNC_THROTTLE_BASE_MS; delay <= 8 * VNC_THROTTLE_BASE_MS; delay *= 2) {
		vnc_throttle_failure(&th, "10.0.0.1", now);
		assert_false(vnc_throttle_allowed(&th, "10.0.0.1", now + delay - 1, &retry));
		assert_int_equal(retry, 1);
		assert_true(vnc_throttle_allowed(&th, "10.0.0.1", now + delay, &retry));
		/* Another source is not affected. */
		assert_true(vnc_throttle_allowed(&th, "10.0.0.2", now, &retry));
		now += delay;
	}
	/* Capped. */
	for (int i = 0; i < 30; i++)
		vnc_throttle_failure(&th, "10.0.0.1", now);
	assert_false(
	    vnc_throttle_allowed(&th, "10.0.0.1", now + VNC_THROTTLE_SOURCE_MAX_MS - 1, NULL));
	assert_true(vnc_throttle_allowed(&th, "10.0.0.1", now + VNC_THROTTLE_SOURCE_MAX_MS, NULL));
	/* A success starts over (a fresh throttle: the global count is high by now). */
	th = (struct vnc_throttle){0};
	for (int i = 0; i < VNC_THROTTLE_SOURCE_FREE + 2; i++)
		vnc_throttle_failure(&th, "10.0.0.1", now);
	assert_false(vnc_throttle_allowed(&th, "10.0.0.1", now, NULL));
	vnc_throttle_success(&th, "10.0.0.1");
	assert_true(vnc_throttle_allowed(&th, "10.0.0.1", now, NULL));
	vnc_throttle_failure(&th, "10.0.0.1", now);
	assert_true(vnc_throttle_allowed(&th, "10.0.0.1", now, NULL));
	/* And so does a source quiet for long enough. */
	for (int i = 0; i < 10; i++)
		vnc_throttle_failure(&th, "10.0.0.3", now);
	now += VNC_THROTTLE_FORGET_MS + VNC_THROTTLE_SOURCE_MAX_MS;
	vnc_throttle_failure(&th, "10.0.0.3", now);
	assert_true(vnc_throttle_allowed(&th, "10.0.0.3", now, NULL));
}

static void test_throttle_global(void **state)
{
	struct vnc_throttle th = {0};
	char source[32];
	uint64_t now = 5000000;

	(void)state;
	/* Many sources, one failure each (a distributed guess): all are slowed down.
	 */
	for (int i = 0; i < VNC_THROTTLE_GLOBAL_FREE; i++) {
		snprintf(source, sizeof(source), "192.0.2.%d", i);
		vnc_throttle_failure(&th, source, now);
	}
	assert_true(vnc_throttle_allowed(&th, "198.51.100.1", now, NULL));
	vnc_throttle_failure(&th, "198.51.100.2", now);
	assert_false(vnc_throttle_allowed(&th, "198.51.100.1", now, NULL));
	assert_true(vnc_throttle_allowed(&th, "198.51.100.1", now + VNC_THROTTLE_BASE_MS, NULL));
	/* More sources than the table holds: the oldest are forgotten, nothing
	 * breaks. */
	for (int i = 0; i < 3 * VNC_THROTTLE_SOURCES; i++) {
		snprintf(source, sizeof(source), "203.0.113.%d", i);
		vnc_throttle_failure(&th, source, now + (uint64_t)i);
	}
	assert_false(vnc_throttle_allowed(&th, "", now, NULL));
	assert_true(vnc_throttle_allowed(&th, "", now + 10 * VNC_THROTTLE_GLOBAL_MAX_MS, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_rules),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_throttle_per_source),
	    cmocka_unit_test(test_throttle_global),
	};
	return cmocka_run_group_tests_name("ticket", tests, NULL, NULL);
}
