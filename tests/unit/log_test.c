/* Unit tests for lib/log: levels, errno suffix, one line per event, no control chars. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"

static int pipe_fds[2];

static int setup(void **state)
{
	(void)state;
	if (pipe(pipe_fds) < 0)
		return -1;
	log_set_fd(pipe_fds[1]);
	log_init("test", LOG_LEVEL_INFO, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_fd(-1);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	return 0;
}

static void drain(char *buf, size_t len)
{
	ssize_t n;

	close(pipe_fds[1]);
	n = read(pipe_fds[0], buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	if (pipe(pipe_fds) == 0)
		log_set_fd(pipe_fds[1]);
}

static void test_levels(void **state)
{
	char buf[4096];

	(void)state;
	log_info("shown desktop=%s", "d-1");
	log_debug("hidden");
	drain(buf, sizeof(buf));
	assert_non_null(strstr(buf, "test info: shown desktop=d-1\n"));
	assert_null(strstr(buf, "hidden"));

	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("now shown");
	drain(buf, sizeof(buf));
	assert_non_null(strstr(buf, "test debug: now shown\n"));
	log_set_level(LOG_LEVEL_INFO);
}

static void test_errno_suffix(void **state)
{
	char buf[4096];

	(void)state;
	errno = ENOENT;
	log_warn("open %s", "/x");
	assert_int_equal(errno, ENOENT);
	log_warnx("no suffix");
	drain(buf, sizeof(buf));
	assert_non_null(strstr(buf, "warning: open /x: No such file or directory\n"));
	assert_non_null(strstr(buf, "warning: no suffix\n"));
}

static void test_one_line_per_event(void **state)
{
	char buf[8192], big[5000];

	(void)state;
	log_info("user=%s", "evil\ninjected line");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
	drain(buf, sizeof(buf));
	assert_non_null(strstr(buf, "user=evil?injected line\n"));
	/* the long message is truncated but still ends its line */
	size_t lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errno_suffix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_line_per_event, setup, teardown),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
