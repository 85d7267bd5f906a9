/* Unit tests for lib/desktop_life (names, hostd's VMM states as a life) and for the
 * broker's view of it, desktop_rec_life(): every broker state with what its host said. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "broker/store.h"
#include "lib/desktop_life.h"

static void test_names(void **state)
{
	static const char *const all[] = {"placing",  "booting", "ready", "in_use",
					  "stopping", "stopped", "failed"};
	enum desktop_life life;

	(void)state;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_true(desktop_life_parse(all[i], &life));
		assert_int_equal(life, i);
		assert_string_equal(desktop_life_name(life), all[i]);
	}
	assert_false(desktop_life_parse("running", &life));
	assert_false(desktop_life_parse(NULL, &life));
}

static void test_vmm_states(void **state)
{
	(void)state;
	assert_int_equal(desktop_life_of_vmm("starting"), LIFE_BOOTING);
	assert_int_equal(desktop_life_of_vmm("running"), LIFE_READY);
	assert_int_equal(desktop_life_of_vmm("stopping"), LIFE_STOPPING);
	assert_int_equal(desktop_life_of_vmm("stopped"), LIFE_STOPPED);
	assert_int_equal(desktop_life_of_vmm("failed"), LIFE_FAILED);
	assert_int_equal(desktop_life_of_vmm("missing"), LIFE_PLACING);
	assert_int_equal(desktop_life_of_vmm(NULL), LIFE_PLACING);
}

static enum desktop_life life_of(enum desktop_state st, bool on_host, const char *vmm, bool in_use)
{
	struct desktop_rec d = {.dr_state = st,
				.dr_on_host = on_host,
				.dr_host_state = (char *)vmm,
				.dr_in_use = in_use};

	return desktop_rec_life(&d);
}

static void test_broker_view(void **state)
{
	(void)state;
	/* provisioning: no host yet, then booting until the broker has seen it run */
	assert_int_equal(life_of(DESKTOP_PROVISIONING, false, NULL, false), LIFE_PLACING);
	assert_int_equal(life_of(DESKTOP_PROVISIONING, true, NULL, false), LIFE_BOOTING);
	assert_int_equal(life_of(DESKTOP_PROVISIONING, true, "starting", false), LIFE_BOOTING);
	assert_int_equal(life_of(DESKTOP_PROVISIONING, true, "running", false), LIFE_BOOTING);
	assert_int_equal(life_of(DESKTOP_PROVISIONING, true, "stopped", false), LIFE_BOOTING);
	assert_int_equal(life_of(DESKTOP_PROVISIONING, true, "failed", false), LIFE_FAILED);
	/* ready, with or without a session; what its host says when that changed */
	assert_int_equal(life_of(DESKTOP_READY, true, "running", false), LIFE_READY);
	assert_int_equal(life_of(DESKTOP_READY, true, "running", true), LIFE_IN_USE);
	assert_int_equal(life_of(DESKTOP_READY, true, "failed", true), LIFE_FAILED);
	assert_int_equal(life_of(DESKTOP_READY, true, "stopping", false), LIFE_STOPPING);
	assert_int_equal(life_of(DESKTOP_READY, true, "stopped", false), LIFE_STOPPED);
	/* on the way out */
	assert_int_equal(life_of(DESKTOP_STOPPED, true, "running", false), LIFE_STOPPING);
	assert_int_equal(life_of(DESKTOP_STOPPED, true, "stopped", false), LIFE_STOPPED);
	assert_int_equal(life_of(DESKTOP_REFRESHING, true, "stopping", false), LIFE_STOPPING);
	assert_int_equal(life_of(DESKTOP_DELETING, false, NULL, false), LIFE_STOPPED);
	/* failed: in error, or its host lost */
	assert_int_equal(life_of(DESKTOP_ERROR, true, "running", false), LIFE_FAILED);
	assert_int_equal(life_of(DESKTOP_LOST, true, "running", true), LIFE_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_vmm_states),
	    cmocka_unit_test(test_broker_view),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
