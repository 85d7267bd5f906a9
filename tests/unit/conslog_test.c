/* Unit tests for hv/conslog: the serial console's file never grows past its cap; at the
 * cap it becomes PATH.1 (replacing an older one) and PATH starts anew, whatever the
 * sizes of the writes (one larger than the cap too); what the file already held counts;
 * no cap means no rotation; a symlink at PATH is refused; sealed for the sandbox, it
 * rotates by copying through descriptors opened beforehand. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/conslog.h"
#include "lib/log.h"

static char dir[] = "/tmp/conslog-test-XXXXXX";
static char path[200], path1[200];

/* The file's contents (up to 4 KiB, NUL-terminated) and its size; -1 when absent. */
static ssize_t slurp(const char *p, char *buf)
{
	int fd = open(p, O_RDONLY);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return -1;
	n = read(fd, buf, 4095);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return n;
}

static int setup(void **state)
{
	(void)state;
	log_set_fd(open("/dev/null", O_WRONLY));
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/serial", dir);
	snprintf(path1, sizeof(path1), "%s/serial.1", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void clean(void)
{
	unlink(path);
	unlink(path1);
}

static void test_rotates_at_the_cap(void **state)
{
	struct conslog *cl;
	char buf[4096];

	(void)state;
	clean();
	cl = conslog_open(path, 10);
	assert_non_null(cl);
	conslog_write(cl, "abcdef", 6);
	conslog_write(cl, "ghij", 4); /* exactly the cap: kept in PATH */
	assert_int_equal(slurp(path, buf), 10);
	assert_int_equal(slurp(path1, buf), -1);
	conslog_write(cl, "KL", 2); /* past it: rotated first */
	assert_int_equal(slurp(path1, buf), 10);
	assert_string_equal(buf, "abcdefghij");
	assert_int_equal(slurp(path, buf), 2);
	assert_string_equal(buf, "KL");
	/* one write of 25 bytes: split at the cap, each file at most 10, the newest in PATH;
	 * PATH.1 replaced each time, never a PATH.2 */
	conslog_write(cl, "0123456789012345678901234", 25); /* 8 + 10 + 7 */
	assert_int_equal(slurp(path, buf), 7);
	assert_string_equal(buf, "8901234");
	assert_int_equal(slurp(path1, buf), 10);
	assert_string_equal(buf, "8901234567");
	assert_int_equal(access(path, F_OK), 0);
	snprintf(buf, sizeof(buf), "%s.2", path);
	assert_int_equal(access(buf, F_OK), -1);
	conslog_close(cl);
}

/* Sealed (vdi-hv's sandbox): PATH.1 is opened at once, and rotations copy PATH into it
 * and empty PATH, with the same contents as a rename would give; a symlink at PATH.1 is
 * refused; PATH renamed away by someone else keeps being written where it is. */
static void test_sealed_rotates_by_copy(void **state)
{
	struct conslog *cl;
	char buf[4096];

	(void)state;
	clean();
	cl = conslog_open(path, 10);
	assert_non_null(cl);
	conslog_write(cl, "abc", 3);
	assert_int_equal(conslog_seal(cl), 0);
	assert_int_equal(slurp(path1, buf), 0); /* made empty, not filled */
	conslog_write(cl, "defghijKL", 9);
	assert_int_equal(slurp(path1, buf), 10);
	assert_string_equal(buf, "abcdefghij");
	assert_int_equal(slurp(path, buf), 2);
	assert_string_equal(buf, "KL");
	conslog_write(cl, "0123456789012345678901234", 25); /* 8 + 10 + 7 */
	assert_int_equal(slurp(path, buf), 7);
	assert_string_equal(buf, "8901234");
	assert_int_equal(slurp(path1, buf), 10);
	assert_string_equal(buf, "8901234567");
	conslog_close(cl);

	clean();
	assert_int_equal(symlink("/etc/passwd", path1), 0);
	cl = conslog_open(path, 10);
	assert_non_null(cl);
	errno = 0;
	assert_int_equal(conslog_seal(cl), -1);
	assert_int_equal(errno, ELOOP);
	conslog_close(cl);

	/* A descriptor or a log without cap never rotates: nothing to open. */
	clean();
	cl = conslog_open(path, 0);
	assert_int_equal(conslog_seal(cl), 0);
	assert_int_equal(slurp(path1, buf), -1);
	conslog_close(cl);
	cl = conslog_from_fd(1);
	assert_int_equal(conslog_seal(cl), 0);
	conslog_close(cl);
	clean();
}

/* What PATH held before counts against the cap (vdi-hv appends to it). */
static void test_existing_content_counts(void **state)
{
	struct conslog *cl;
	char buf[4096];
	int fd;

	(void)state;
	clean();
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "12345678", 8), 8);
	close(fd);
	cl = conslog_open(path, 10);
	assert_non_null(cl);
	conslog_write(cl, "abcd", 4);
	assert_int_equal(slurp(path1, buf), 10);
	assert_string_equal(buf, "12345678ab");
	assert_int_equal(slurp(path, buf), 2);
	assert_string_equal(buf, "cd");
	conslog_close(cl);
}

/* Many small writes far past the cap: the two files never hold more than twice it. */
static void test_bounded_over_time(void **state)
{
	struct conslog *cl;
	char buf[4096];
	struct stat st;

	(void)state;
	clean();
	cl = conslog_open(path, 100);
	assert_non_null(cl);
	for (int i = 0; i < 10000; i++) {
		conslog_write(cl, "line of console output\n", 23);
		assert_int_equal(stat(path, &st), 0);
		assert_true(st.st_size <= 100);
	}
	assert_int_equal(slurp(path1, buf), 100);
	conslog_close(cl);
}

static void test_no_cap_and_symlinks(void **state)
{
	char big[1000], buf[4096];
	struct conslog *cl;

	(void)state;
	clean();
	memset(big, 'x', sizeof(big));
	cl = conslog_open(path, 0);
	assert_non_null(cl);
	for (int i = 0; i < 3; i++)
		conslog_write(cl, big, sizeof(big));
	conslog_close(cl);
	assert_int_equal(slurp(path1, buf), -1);
	assert_int_equal(slurp(path, buf), 3000);
	clean();
	assert_int_equal(symlink("/etc/passwd", path), 0);
	errno = 0;
	assert_null(conslog_open(path, 10));
	assert_int_equal(errno, ELOOP);
	clean();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rotates_at_the_cap),
	    cmocka_unit_test(test_sealed_rotates_by_copy),
	    cmocka_unit_test(test_existing_content_counts),
	    cmocka_unit_test(test_bounded_over_time),
	    cmocka_unit_test(test_no_cap_and_symlinks),
	};

	return cmocka_run_group_tests_name("conslog", tests, setup, teardown);
}
