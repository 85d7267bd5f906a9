/* Unit tests for hostd/ticketline: the relay's first line whole, in pieces, with the
 * client's first VNC bytes behind it, and the lines it must refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "hostd/ticketline.h"

static ssize_t parse(const char *text, size_t len, char *ticket)
{
	return ticket_line_parse(text, len, ticket, TICKET_MAX_LEN + 2);
}

static void test_a_line_and_what_follows(void **state)
{
	static const char both[] = "VDI-TICKET abcdefghijklmnop\r\nRFB 003.008\n";
	char ticket[TICKET_MAX_LEN + 2];

	(void)state;
	assert_int_equal(parse(both, sizeof(both) - 1, ticket), 29);
	assert_string_equal(ticket, "abcdefghijklmnop");
	assert_int_equal(parse("VDI-TICKET xyz\n", 15, ticket), 15);
	assert_string_equal(ticket, "xyz");
	/* every prefix of a line asks for more */
	for (size_t n = 0; n < 28; n++)
		assert_int_equal(parse(both, n, ticket), 0);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
	    "VDI-TICKET \n",
	    "VDI-TICKET \r\n",
	    "VDI-TICKETabc\n",
	    "vdi-ticket abc\n",
	    "GET / HTTP/1.1\r\n",
	    "VDI-TICKET a\rb\n",
	    "\n",
	    "VDI-TICKET a\r\r\n",
	};
	char ticket[TICKET_MAX_LEN + 2], line[2 * TICKET_LINE_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], strlen(bad[i]), ticket), -EINVAL);
	assert_int_equal(parse("VDI-TICKET a\0b\n", 15, ticket), -EINVAL);
	/* a ticket one longer than the room, and no newline within the longest line */
	memcpy(line, "VDI-TICKET ", 11);
	memset(line + 11, 'a', TICKET_MAX_LEN + 2);
	line[11 + TICKET_MAX_LEN + 2] = '\n';
	assert_int_equal(parse(line, 11 + TICKET_MAX_LEN + 3, ticket), -EINVAL);
	assert_int_equal(parse(line, TICKET_LINE_MAX, ticket), -EINVAL);
	assert_int_equal(parse(line, TICKET_LINE_MAX - 1, ticket), 0);
	/* the longest ticket the room takes (redeeming refuses it: over TICKET_MAX_LEN) */
	line[11 + TICKET_MAX_LEN + 1] = '\n';
	assert_int_equal(parse(line, 11 + TICKET_MAX_LEN + 2, ticket), 11 + TICKET_MAX_LEN + 2);
	assert_int_equal(strlen(ticket), TICKET_MAX_LEN + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_line_and_what_follows),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
