/* Unit tests for lib/hostport: names, IPv4, bracketed IPv6, ports, and what is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/hostport.h"

static void accepts_names_addresses_and_ports(void **state)
{
	char host[64];
	unsigned port;

	(void)state;
	assert_int_equal(hostport_split("broker.example:8443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "broker.example");
	assert_int_equal(port, 8443);
	assert_int_equal(hostport_split("127.0.0.1:0", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 0);
	assert_int_equal(hostport_split("[::1]:65535", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 65535);
}

static void refuses_malformed_addresses(void **state)
{
	static const char *const bad[] = {
	    "",	       "host",	  ":80",     "host:",	    "host:65536",
	    "host:-1", "host:+1", "host:8x", "host: 80",    "::1:80",
	    "[::1:80", "[]:80",	  "h]:80",   "host:000080", NULL,
	};
	char host[64];
	unsigned port = 7;

	(void)state;
	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(hostport_split(bad[i], host, sizeof(host), &port), -EINVAL);
		assert_int_equal(port, 7); /* untouched */
	}
	assert_int_equal(hostport_split(NULL, host, sizeof(host), &port), -EINVAL);
}

static void refuses_hosts_that_do_not_fit(void **state)
{
	char host[8];
	unsigned port;

	(void)state;
	assert_int_equal(hostport_split("1234567:1", host, sizeof(host), &port), 0);
	assert_int_equal(hostport_split("12345678:1", host, sizeof(host), &port), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(accepts_names_addresses_and_ports),
	    cmocka_unit_test(refuses_malformed_addresses),
	    cmocka_unit_test(refuses_hosts_that_do_not_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
