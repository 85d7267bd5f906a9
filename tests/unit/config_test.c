/* Unit tests for lib/config: defaults, types, bounds, file:line errors, secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/config.h"

struct sample {
	char *listen;
	int port;
	bool tls;
	int timeout;
	int engine;
	char *password;
};

static const char *const engines[] = {"vdi-hv", "qemu", NULL};

static const struct config_option options[] = {
    {.co_section = "server",
     .co_name = "listen",
     .co_type = CONFIG_STRING,
     .co_offset = offsetof(struct sample, listen),
     .co_default = "127.0.0.1",
     .co_max = 64},
    {.co_section = "server",
     .co_name = "port",
     .co_type = CONFIG_INT,
     .co_offset = offsetof(struct sample, port),
     .co_default = "8443",
     .co_min = 1,
     .co_max = 65535},
    {.co_section = "server",
     .co_name = "tls",
     .co_type = CONFIG_BOOL,
     .co_offset = offsetof(struct sample, tls),
     .co_default = "yes"},
    {.co_section = "server",
     .co_name = "timeout",
     .co_type = CONFIG_DURATION,
     .co_offset = offsetof(struct sample, timeout),
     .co_default = "15s",
     .co_min = 1,
     .co_max = 86400},
    {.co_section = "host",
     .co_name = "engine",
     .co_type = CONFIG_ENUM,
     .co_offset = offsetof(struct sample, engine),
     .co_default = "vdi-hv",
     .co_choices = engines},
    {.co_section = "host",
     .co_name = "password",
     .co_type = CONFIG_STRING,
     .co_offset = offsetof(struct sample, password),
     .co_secret = true},
    CONFIG_END,
};

static int load(const char *text, struct sample *s, char *err)
{
	memset(s, 0, sizeof(*s));
	return config_load_string("t.conf", text, options, s, err, 256);
}

static void test_defaults(void **state)
{
	struct sample s;
	char err[256] = "";

	(void)state;
	assert_int_equal(load("", &s, err), 0);
	assert_string_equal(s.listen, "127.0.0.1");
	assert_int_equal(s.port, 8443);
	assert_true(s.tls);
	assert_int_equal(s.timeout, 15);
	assert_int_equal(s.engine, 0);
	assert_null(s.password);
	config_free(options, &s);
}

static void test_values(void **state)
{
	struct sample s;
	char err[256] = "";

	(void)state;
	assert_int_equal(load("; comment\n[server]\nlisten = 0.0.0.0\nport=9000\ntls = off\n"
			      "timeout = 2h\n[host]\nengine = qemu\npassword = hunter2\n",
			      &s, err),
			 0);
	assert_string_equal(s.listen, "0.0.0.0");
	assert_int_equal(s.port, 9000);
	assert_false(s.tls);
	assert_int_equal(s.timeout, 7200);
	assert_int_equal(s.engine, 1);
	assert_string_equal(s.password, "hunter2");

	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	config_print(f, options, &s);
	fclose(f);
	assert_non_null(strstr(out, "[server]\nlisten = 0.0.0.0\nport = 9000\n"));
	assert_non_null(strstr(out, "timeout = 7200s"));
	assert_null(strstr(out, "hunter2"));
	free(out);
	config_free(options, &s);
}

static void expect_error(const char *text, const char *message)
{
	struct sample s;
	char err[256] = "";

	assert_int_not_equal(load(text, &s, err), 0);
	if (!strstr(err, message))
		fail_msg("error '%s' lacks '%s'", err, message);
	config_free(options, &s);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[server]\nport = 0\n",
		     "t.conf:2: [server] port: 0 is out of range [1, 65535]");
	expect_error("[server]\n\nport = 80x\n",
		     "t.conf:3: [server] port: '80x' is not an integer");
	expect_error("[server]\ntls = maybe\n", "t.conf:2: [server] tls: 'maybe' is not a boolean");
	expect_error("[server]\ntimeout = 5y\n",
		     "t.conf:2: [server] timeout: '5y' is not a duration");
	expect_error("[host]\nengine = xen\n",
		     "t.conf:2: [host] engine: 'xen' is not one of: vdi-hv qemu");
	expect_error("[server]\nbogus = 1\n", "t.conf:2: unknown option 'bogus' in [server]");
	expect_error("[nope]\nx = 1\n", "t.conf:2: unknown section [nope]");
	expect_error("[server]\nport = 1\nport = 2\n", "t.conf:3: [server] port is set twice");
	expect_error("[server]\nthis is not ini\n", "t.conf:2: syntax error");
	expect_error("[server]\nlisten = "
		     "01234567890123456789012345678901234567890123456789012345678901234567890\n",
		     "t.conf:2: [server] listen: longer than 64 characters");
	/* the first error is reported even when a later line is also wrong */
	expect_error("[server]\nport = -1\n[nope]\n", "t.conf:2:");
	expect_error("[server]\nport = 99999999999999999999\n", "t.conf:2:");
}

static void test_required_and_missing_file(void **state)
{
	static const struct config_option req[] = {
	    {.co_section = "ldap", .co_name = "uri", .co_type = CONFIG_STRING, .co_required = true},
	    CONFIG_END,
	};
	char *uri = NULL;
	char err[256];

	(void)state;
	assert_int_not_equal(config_load_string("b.conf", "[ldap]\n", req, &uri, err, sizeof(err)),
			     0);
	assert_string_equal(err, "b.conf: [ldap] uri is required");
	assert_int_not_equal(config_load("/nonexistent/x.conf", req, &uri, err, sizeof(err)), 0);
	assert_string_equal(err, "/nonexistent/x.conf: No such file or directory");
	config_free(req, &uri);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_required_and_missing_file),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
