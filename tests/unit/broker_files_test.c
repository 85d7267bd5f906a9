/* Unit tests for the modes of the broker's own files (broker/broker.c, broker/cert.c,
 * lib/file.c): under a loose umask (022) and with a state directory, database and
 * self-signed certificate made before with loose modes, broker_open() and
 * cert_self_signed() leave the directory 0700 and every file in it 0600; a symlink
 * planted at the database's path is refused, not followed. */
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

#include "broker/broker.h"
#include "broker/cert.h"
#include "broker/config.h"
#include "lib/file.h"
#include "lib/log.h"

static char top[] = "/tmp/broker-files-test-XXXXXX";
static char state_dir[200], conf_path[200];

static unsigned mode_of(const char *dir, const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s%s", dir, name ? "/" : "", name ? name : "");
	if (lstat(path, &st) < 0)
		return 01000000; /* no such file: matches no mode */
	return st.st_mode & 07777;
}

static void touch(const char *name, mode_t mode)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", state_dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int setup(void **state)
{
	FILE *f;

	(void)state;
	log_set_fd(open("/dev/null", O_WRONLY));
	umask(022); /* what a broker started from a shell typically gets */
	if (!mkdtemp(top))
		return -1;
	snprintf(state_dir, sizeof(state_dir), "%s/state", top);
	snprintf(conf_path, sizeof(conf_path), "%s/broker.conf", top);
	f = fopen(conf_path, "w");
	if (!f)
		return -1;
	fprintf(f, "[broker]\nstate_dir = %s\nlog_level = error\n[auth]\nbackend = local\n",
		state_dir);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	return system(cmd) == 0 ? 0 : -1;
}

static struct broker *open_broker(struct broker_config *cfg, char *err, size_t errlen)
{
	assert_int_equal(broker_config_load(conf_path, cfg, err, errlen), 0);
	return broker_open(cfg, err, errlen);
}

/* A state directory and database made earlier with loose modes are tightened. */
static void test_existing_state_is_made_private(void **state)
{
	struct broker_config cfg;
	struct broker *b;
	char err[512];

	(void)state;
	assert_int_equal(mkdir(state_dir, 0755), 0);
	assert_int_equal(chmod(state_dir, 0755), 0);
	touch("broker.db", 0644); /* an empty file is an empty SQLite database */
	b = open_broker(&cfg, err, sizeof(err));
	if (!b)
		fail_msg("broker_open: %s", err);
	assert_int_equal(mode_of(state_dir, NULL), 0700);
	assert_int_equal(mode_of(state_dir, "broker.db"), 0600);
	assert_int_equal(mode_of(state_dir, "broker.db-wal"), 0600);
	assert_int_equal(mode_of(state_dir, "broker.db-shm"), 0600);
	broker_close(b);
	broker_config_free(&cfg);
}

/* A fresh state: the self-signed certificate and key are both 0600 whatever the umask;
 * made 0644 by hand, they are tightened on the next load. */
static void test_self_signed_files_are_private(void **state)
{
	char *cert, *key, err[512];

	(void)state;
	assert_int_equal(cert_self_signed(state_dir, &cert, &key, err, sizeof(err)), 0);
	free(cert);
	free(key);
	assert_int_equal(mode_of(state_dir, "https.crt"), 0600);
	assert_int_equal(mode_of(state_dir, "https.key"), 0600);
	snprintf(err, sizeof(err), "%s/https.key", state_dir);
	assert_int_equal(chmod(err, 0644), 0);
	snprintf(err, sizeof(err), "%s/https.crt", state_dir);
	assert_int_equal(chmod(err, 0644), 0);
	assert_int_equal(cert_self_signed(state_dir, &cert, &key, err, sizeof(err)), 0);
	free(cert);
	free(key);
	assert_int_equal(mode_of(state_dir, "https.crt"), 0600);
	assert_int_equal(mode_of(state_dir, "https.key"), 0600);
}

/* A symlink at the database's path is refused with a clear error; its target untouched. */
static void test_symlinked_database_is_refused(void **state)
{
	struct broker_config cfg;
	char target[300], link[300], err[512];
	struct broker *b;

	(void)state;
	snprintf(target, sizeof(target), "%s/elsewhere.db", top);
	snprintf(link, sizeof(link), "%s/broker.db", state_dir);
	unlink(link);
	assert_int_equal(symlink(target, link), 0);
	b = open_broker(&cfg, err, sizeof(err));
	broker_config_free(&cfg);
	assert_null(b);
	assert_non_null(strstr(err, "a symbolic link: refused"));
	assert_int_equal(access(target, F_OK), -1);
	assert_int_equal(file_make_private(link, 0600), -ELOOP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_existing_state_is_made_private),
	    cmocka_unit_test(test_self_signed_files_are_private),
	    cmocka_unit_test(test_symlinked_database_is_refused),
	};

	return cmocka_run_group_tests_name("broker_files", tests, setup, teardown);
}
