/* Unit tests for hostd's desktop definitions, configuration, store and log tails:
 * ids, template paths confined to the template directories (.., absolute paths,
 * symlinks), request validation, the stored form round trip, atomic files, config
 * errors with file:line, serial tails without terminal escapes, QEMU's serial log
 * capped, symlinks planted in hostd's directories refused, and the capacity report
 * clamped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostd/conf.h"
#include "hostd/desktop.h"
#include "hostd/definitions.h"
#include "hostd/host.h"
#include "hostd/vmm.h"
#include "lib/file.h"
#include "lib/json.h"
#include "lib/log.h"

static char top[] = "/tmp/hostd-desktop-test-XXXXXX";
static char tpl[200], outside[200], conf_text[2048];
static struct conf conf;

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int setup(void **state)
{
	char path[300], err[512];

	(void)state;
	log_set_fd(open("/dev/null", O_WRONLY));
	if (!mkdtemp(top))
		return -1;
	snprintf(tpl, sizeof(tpl), "%s/templates", top);
	snprintf(outside, sizeof(outside), "%s/outside.img", top);
	mkdir(tpl, 0700);
	snprintf(path, sizeof(path), "%s/base.img", tpl);
	write_file(path, "base");
	snprintf(path, sizeof(path), "%s/vmlinuz", tpl);
	write_file(path, "kernel");
	write_file(outside, "secret");
	snprintf(path, sizeof(path), "%s/link-out.img", tpl);
	if (symlink(outside, path) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/link-in.img", tpl);
	if (symlink("base.img", path) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/subdir", tpl);
	mkdir(path, 0700);
	snprintf(conf_text, sizeof(conf_text),
		 "[hostd]\nstate_dir = %s/state\nrun_dir = %s/run\ntemplate_dirs = %s\n"
		 "[desktops]\nmax_memory_mib = 4096\nmax_vcpus = 4\n",
		 top, top, tpl);
	if (conf_load_string("test.conf", conf_text, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	conf_free(&conf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	return system(cmd);
}

static void test_ids(void **state)
{
	(void)state;
	assert_true(desktop_id_valid("d1"));
	assert_true(desktop_id_valid("Desk_2-a"));
	assert_false(desktop_id_valid(""));
	assert_false(desktop_id_valid("-d"));
	assert_false(desktop_id_valid("../etc"));
	assert_false(desktop_id_valid("a/b"));
	assert_false(desktop_id_valid("a.b"));
	assert_false(desktop_id_valid("a b"));
	assert_false(desktop_id_valid("0123456789012345678901234567890123456789x"));
	assert_true(desktop_id_valid("0123456789012345678901234567890123456789"));
}

static void test_templates_stay_inside_their_directories(void **state)
{
	static const char *const refused[] = {
	    "../outside.img",
	    "link-out.img",
	    "/etc/passwd",
	    "subdir",
	    "missing.img",
	    "",
	    "base.img,format=qcow2",
	    "base\n.img",
	    "subdir/../../outside.img",
	    "/",
	};
	char err[256], want[300];
	char *p;

	(void)state;
	snprintf(want, sizeof(want), "%s/base.img", conf.template_dir_list[0]);
	p = desktop_resolve_template(&conf, "base.img", err, sizeof(err));
	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
	p = desktop_resolve_template(&conf, "link-in.img", err, sizeof(err));
	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
	p = desktop_resolve_template(&conf, want, err, sizeof(err));
	assert_non_null(p);
	free(p);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		p = desktop_resolve_template(&conf, refused[i], err, sizeof(err));
		if (p)
			fail_msg("'%s' resolved to %s", refused[i], p);
		assert_true(err[0] != '\0');
	}
	assert_null(desktop_resolve_template(&conf, outside, err, sizeof(err)));
	assert_non_null(strstr(err, "outside the template directories"));
}

static struct desktop *from(const char *json, char *err)
{
	char perr[256];
	json_t *o = json_parse_object(json, strlen(json), 4096, perr, sizeof(perr));
	struct desktop *d;

	assert_non_null(o);
	d = desktop_from_request(&conf, o, err, 256);
	json_decref(o);
	return d;
}

static void test_requests(void **state)
{
	static const char *const refused[] = {
	    "{}",
	    "{\"disk\":\"base.img\",\"memory_mib\":8192}",
	    "{\"disk\":\"base.img\",\"memory_mib\":511}",
	    "{\"disk\":\"base.img\",\"vcpus\":0}",
	    "{\"disk\":\"base.img\",\"engine\":\"vdi-hv\"}",
	    "{\"disk\":\"base.img\",\"initrd\":\"base.img\"}",
	    "{\"disk\":\"base.img\",\"kernel\":\"vmlinuz\",\"cmdline\":\"a\\u0007b\"}",
	    "{\"disk\":\"base.img\",\"id\":\"a/b\"}",
	    "{\"disk\":\"base.img\",\"extra\":1}",
	    "{\"disk\":\"base.img\",\"vcpus\":\"2\"}",
	};
	char err[256];
	struct desktop *d;

	(void)state;
	d = from("{\"disk\":\"base.img\",\"kernel\":\"vmlinuz\",\"cmdline\":\"console=ttyS0\","
		 "\"engine\":\"vdi-hv\",\"memory_mib\":256,\"vcpus\":2,\"id\":\"x1\"}",
		 err);
	assert_non_null(d);
	assert_string_equal(d->d_id, "x1");
	assert_int_equal(d->d_engine, DESKTOP_ENGINE_VDIHV);
	assert_int_equal(d->d_state, DESKTOP_STOPPED);
	assert_null(d->d_initrd);
	desktop_free(d);
	d = from("{\"disk\":\"base.img\"}", err);
	assert_non_null(d);
	assert_int_equal(strncmp(d->d_id, "d-", 2), 0);
	assert_true(desktop_id_valid(d->d_id));
	assert_int_equal(d->d_memory_mib, 512);
	desktop_free(d);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		d = from(refused[i], err);
		if (d)
			fail_msg("accepted %s", refused[i]);
		assert_true(err[0] != '\0');
	}
}

static void loaded(void *arg, struct desktop *d)
{
	struct desktop **out = arg;

	assert_null(*out);
	*out = d;
}

static void test_store_round_trip(void **state)
{
	char err[256], path[400];
	struct desktop *d = from("{\"disk\":\"base.img\",\"kernel\":\"vmlinuz\",\"id\":\"keep\"}",
				 err),
		       *back = NULL;

	(void)state;
	assert_non_null(d);
	assert_int_equal(definitions_init(&conf), 0);
	d->d_state = DESKTOP_STOPPING; /* stored as running: a VMM exists */
	assert_int_equal(definitions_save(&conf, d), 0);
	/* Leftovers of an interrupted write and a damaged file are skipped. */
	snprintf(path, sizeof(path), "%s/state/desktops/keep.json.tmp-1234", top);
	write_file(path, "{");
	snprintf(path, sizeof(path), "%s/state/desktops/broken.json", top);
	write_file(path, "{\"id\":");
	assert_int_equal(definitions_load(&conf, loaded, &back), 1);
	assert_non_null(back);
	assert_string_equal(back->d_id, "keep");
	assert_int_equal(back->d_state, DESKTOP_RUNNING);
	assert_string_equal(back->d_kernel, d->d_kernel);
	snprintf(path, sizeof(path), "%s/state/desktops/keep.json.tmp-1234", top);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(definitions_remove(&conf, back), 0);
	desktop_free(back);
	back = NULL;
	assert_int_equal(definitions_load(&conf, loaded, &back), 0);
	assert_int_equal(desktop_path(&conf, d, DESKTOP_FILE_VNC, path, sizeof(path)), 0);
	assert_non_null(strstr(path, "/run/keep/vnc.sock"));
	assert_int_equal(desktop_path(&conf, d, DESKTOP_FILE_DISK, path, sizeof(path)), 0);
	assert_non_null(strstr(path, "/state/disks/keep.qcow2"));
	desktop_free(d);
}

static void test_config_errors(void **state)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"[api]\nlisten = localhost:80\n",
	     "t.conf: [api] listen: 'localhost:80' is not ADDRESS:PORT"},
	    {"[api]\nmax_body = 10\n", "t.conf:2: [api] max_body: 10 is out of range"},
	    {"[relay]\nrequire_client_cert = maybe\n", "t.conf:2: [relay] require_client_cert"},
	    {"[qemu]\naccel = hvf\n", "t.conf:2: [qemu] accel: 'hvf' is not one of: auto kvm tcg"},
	    {"[hostd]\nrun_dir = "
	     "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	     "t.conf: [hostd] run_dir: longer than 56"},
	    {"[hostd]\ntemplate_dirs = /nonexistent\n", "t.conf: [hostd] template_dirs"},
	    {"[broker]\nheartbeat_url = http://broker/\n", "t.conf: [broker] heartbeat_url"},
	    {"[nope]\nx = 1\n", "t.conf:2: unknown section [nope]"},
	    {"[api]\nbroker_name =\n", "t.conf: [api] broker_name: empty"},
	    {"[hostd]\nhost_id = vdi-broker\n",
	     "t.conf: [hostd] host_id: 'vdi-broker' is the broker's name"},
	};
	char err[512];
	struct conf c;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];

		snprintf(text, sizeof(text), "%s[hostd]\ntemplate_dirs = %s\n", cases[i].text, tpl);
		if (strstr(cases[i].text, "[hostd]"))
			snprintf(text, sizeof(text), "%s", cases[i].text);
		err[0] = '\0';
		if (conf_load_string("t.conf", text, &c, err, sizeof(err)) != -EINVAL)
			fail_msg("case %zu was accepted", i);
		if (strncmp(err, cases[i].error, strlen(cases[i].error)))
			fail_msg("case %zu: got '%s', want '%s...'", i, err, cases[i].error);
		conf_free(&c);
	}
	assert_int_equal(conf_load_string("t.conf",
					  "[api]\nlisten = [::1]:8443\n[hostd]\n"
					  "template_dirs = /tmp\n",
					  &c, err, sizeof(err)),
			 0);
	assert_true(conf_is_loopback(&c.api_addr));
	conf_free(&c);
}

static void test_log_tail(void **state)
{
	char path[300];
	json_t *lines;

	(void)state;
	snprintf(path, sizeof(path), "%s/serial.log", top);
	write_file(path, "old line\n\x1b[1;31mred\x1b[0m text\r\n\n  \nbinary \xff\x01 here\n"
			 "root@vdi:~# \x1b[6n");
	lines = vmm_log_tail(path, 3);
	assert_int_equal(json_array_size(lines), 3);
	assert_string_equal(json_string_value(json_array_get(lines, 0)), "red text");
	assert_string_equal(json_string_value(json_array_get(lines, 1)), "binary ? here");
	assert_string_equal(json_string_value(json_array_get(lines, 2)), "root@vdi:~# ");
	json_decref(lines);
	lines = vmm_log_tail("/nonexistent/serial.log", 5);
	assert_int_equal(json_array_size(lines), 0);
	json_decref(lines);
}

/* The capacity report clamps every figure: extreme or negative readings reach the broker
 * as bounded numbers; unknown memory stays -1. */
static void test_capacity_is_clamped(void **state)
{
	struct host_figures huge = {LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX,
				    LLONG_MAX, LLONG_MAX, LLONG_MAX};
	struct host_figures low = {-1, -1, LLONG_MIN, LLONG_MIN, LLONG_MIN, -7, INT_MIN};
	struct host_figures plain = {8, 16000, 12000, 1024, 2, 3, 100};
	json_t *o;

	(void)state;
	o = host_capacity_json("h1", &huge);
	assert_non_null(o);
	assert_int_equal(json_get_int(o, "cpus", -2), 8192);
	assert_int_equal(json_get_int(o, "memory_total_mib", -2), 1LL << 32);
	assert_int_equal(json_get_int(o, "memory_available_mib", -2), 1LL << 32);
	assert_int_equal(json_get_int(o, "memory_committed_mib", -2), 1LL << 32);
	assert_int_equal(json_get_int(o, "desktops_running", -2), 1 << 20);
	assert_int_equal(json_get_int(o, "desktops_defined", -2), 1 << 20);
	assert_int_equal(json_get_int(o, "max_desktops", -2), 1 << 20);
	json_decref(o);
	o = host_capacity_json("h1", &low);
	assert_int_equal(json_get_int(o, "cpus", -2), 0);
	assert_int_equal(json_get_int(o, "memory_total_mib", -2), -1);
	assert_int_equal(json_get_int(o, "memory_available_mib", -2), -1);
	assert_int_equal(json_get_int(o, "memory_committed_mib", -2), 0);
	assert_int_equal(json_get_int(o, "desktops_running", -2), 0);
	assert_int_equal(json_get_int(o, "desktops_defined", -2), 0);
	assert_int_equal(json_get_int(o, "max_desktops", -2), 0);
	json_decref(o);
	o = host_capacity_json("h1", &plain);
	assert_string_equal(json_get_string(o, "host_id"), "h1");
	assert_int_equal(json_get_int(o, "cpus", -2), 8);
	assert_int_equal(json_get_int(o, "memory_total_mib", -2), 16000);
	assert_int_equal(json_get_int(o, "memory_available_mib", -2), 12000);
	assert_int_equal(json_get_int(o, "memory_committed_mib", -2), 1024);
	assert_int_equal(json_get_int(o, "desktops_running", -2), 2);
	assert_int_equal(json_get_int(o, "desktops_defined", -2), 3);
	assert_int_equal(json_get_int(o, "max_desktops", -2), 100);
	json_decref(o);
}

/* QEMU's serial log is emptied once past the cap (QEMU appends, so it goes on at the
 * new end); smaller logs, missing ones and symlinks are left alone. */
static void test_serial_log_cap(void **state)
{
	char path[300], link[300], buf[64];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/q.serial", top);
	snprintf(link, sizeof(link), "%s/l.serial", top);
	write_file(path, "0123456789");
	assert_int_equal(vmm_log_cap(path, 10), 0); /* at the cap: kept */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 10);
	write_file(path, "0123456789A");
	assert_int_equal(vmm_log_cap(path, 10), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(vmm_log_cap(link, 10), 0); /* missing */
	assert_int_equal(symlink(path, link), 0);
	write_file(path, "0123456789AB");
	assert_int_equal(vmm_log_cap(link, 10), -ELOOP);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 12);
	snprintf(buf, sizeof(buf), "%lld", (long long)VMM_SERIAL_MAX);
	assert_string_equal(buf, "16777216"); /* the same cap as vdi-hv's default */
	unlink(link);
	unlink(path);
}

/* Symlinks planted in hostd's directories are refused, never followed: a log or a
 * definition opened by hostd (file_open_nofollow()), a desktop's run directory, the
 * monitor's pid and exit files, the log tails; a FIFO does not block hostd. */
static void test_symlinks_are_refused(void **state)
{
	char dir[250], victim[250], link[300], ldir[250], path[300], msg[512];
	struct vmm_proc p;
	struct stat st;
	json_t *tail;
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/nofollow", top);
	snprintf(victim, sizeof(victim), "%s/victim", top);
	snprintf(link, sizeof(link), "%s/x.serial", dir);
	snprintf(ldir, sizeof(ldir), "%s/linkdir", top);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file(victim, "1 1 1 1\n");
	assert_int_equal(symlink(victim, link), 0);
	/* a log opened for truncation: refused, the target untouched */
	fd = file_open_nofollow(link, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(fd, -ELOOP);
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, 8);
	definitions_file_error(link, fd, msg, sizeof(msg));
	assert_non_null(strstr(msg, "x.serial is a symbolic link: refused"));
	/* nor read: pid file, log tail, definitions */
	assert_int_equal(vmm_read_pidfile(link, &p), -ELOOP);
	tail = vmm_log_tail(link, 5);
	assert_int_equal(json_array_size(tail), 0);
	json_decref(tail);
	/* the directory holding the file a symlink: refused too */
	assert_int_equal(symlink(dir, ldir), 0);
	snprintf(path, sizeof(path), "%s/fresh.log", ldir);
	fd = file_open_nofollow(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd == -ELOOP || fd == -ENOTDIR);
	assert_int_equal(
	    definitions_run_dir(ldir) == -ELOOP || definitions_run_dir(ldir) == -ENOTDIR, 1);
	/* a FIFO: refused without blocking */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(file_open_nofollow(path, O_RDONLY, 0), -EINVAL);
	/* the ordinary cases */
	snprintf(path, sizeof(path), "%s/ok.log", dir);
	fd = file_open_nofollow(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/run-d1", dir);
	assert_int_equal(definitions_run_dir(path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(definitions_run_dir(path), 0); /* there already */
	assert_int_equal(chmod(path, 0777), 0);
	assert_int_equal(definitions_run_dir(path), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_templates_stay_inside_their_directories),
	    cmocka_unit_test(test_requests),
	    cmocka_unit_test(test_store_round_trip),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_log_tail),
	    cmocka_unit_test(test_capacity_is_clamped),
	    cmocka_unit_test(test_serial_log_cap),
	    cmocka_unit_test(test_symlinks_are_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
