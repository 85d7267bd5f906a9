/* Unit tests for hostd/vmm's exit descriptions: a VMM killed by SIGSYS (a seccomp
 * filter's answer to a forbidden system call) is told apart from other signals and exit
 * statuses, whether hostd sees the signal itself or the 128 + 31 a launcher such as
 * `kvmbox run` exits with. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "hostd/vmm.h"

/* Wait statuses as the kernel encodes them (what W* macros decode). */
#define EXITED(code)   (((code)&0xff) << 8)
#define SIGNALLED(sig) ((sig)&0x7f)

static void test_sigsys_is_the_sandbox(void **state)
{
	char buf[160];

	(void)state;
	assert_true(vmm_killed_by_sandbox(SIGNALLED(SIGSYS)));
	assert_true(vmm_killed_by_sandbox(EXITED(128 + SIGSYS)));
	vmm_describe_status(SIGNALLED(SIGSYS), buf, sizeof(buf));
	assert_string_equal(buf, "was killed by its sandbox (forbidden system call; signal 31)");
	vmm_describe_status(EXITED(128 + SIGSYS), buf, sizeof(buf));
	assert_string_equal(buf,
			    "was killed by its sandbox (forbidden system call; exit status 159)");
}

static void test_other_endings(void **state)
{
	char buf[160];

	(void)state;
	assert_false(vmm_killed_by_sandbox(EXITED(0)));
	assert_false(vmm_killed_by_sandbox(EXITED(1)));
	assert_false(vmm_killed_by_sandbox(SIGNALLED(SIGKILL)));
	assert_false(vmm_killed_by_sandbox(EXITED(128 + SIGKILL)));
	vmm_describe_status(EXITED(1), buf, sizeof(buf));
	assert_string_equal(buf, "exited with status 1");
	vmm_describe_status(SIGNALLED(SIGKILL), buf, sizeof(buf));
	assert_non_null(strstr(buf, "killed by signal 9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sigsys_is_the_sandbox),
	    cmocka_unit_test(test_other_endings),
	};

	return cmocka_run_group_tests_name("hostd_vmm", tests, NULL, NULL);
}
