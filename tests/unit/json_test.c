/* Unit tests for lib/json: bounded parsing, field tables, one-line output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/json.h"

static const struct json_field fields[] = {
    {"cmd", JSON_FIELD_STRING, true},
    {"expires", JSON_FIELD_INT, false},
    {"view_only", JSON_FIELD_BOOL, false},
    JSON_FIELDS_END,
};

static json_t *parse(const char *s, char *err)
{
	return json_parse_object(s, strlen(s), 1024, err, 256);
}

static void test_parse(void **state)
{
	char err[256];
	json_t *o;

	(void)state;
	o = parse("{\"cmd\":\"status\",\"expires\":12,\"view_only\":true}", err);
	assert_non_null(o);
	assert_int_equal(json_check_fields(o, fields, err, sizeof(err)), 0);
	assert_string_equal(json_get_string(o, "cmd"), "status");
	assert_int_equal(json_get_int(o, "expires", 0), 12);
	assert_true(json_get_bool(o, "view_only", false));
	assert_null(json_get_string(o, "expires"));
	assert_int_equal(json_get_int(o, "absent", -7), -7);
	json_decref(o);

	assert_null(parse("{\"cmd\":", err));
	assert_non_null(strstr(err, "malformed JSON"));
	assert_null(parse("[1,2]", err));
	assert_string_equal(err, "expected a JSON object");
	assert_null(parse("{\"cmd\":\"a\",\"cmd\":\"b\"}", err));

	char *big = malloc(2000);
	memset(big, ' ', 1999);
	big[1999] = '\0';
	assert_null(parse(big, err));
	assert_non_null(strstr(err, "too large"));
	free(big);
}

static void check_rejects(const char *s, const char *why)
{
	char err[256];
	json_t *o = parse(s, err);

	assert_non_null(o);
	assert_int_not_equal(json_check_fields(o, fields, err, sizeof(err)), 0);
	assert_string_equal(err, why);
	json_decref(o);
}

static void test_fields(void **state)
{
	(void)state;
	check_rejects("{\"cmd\":\"x\",\"extra\":1}", "unknown field 'extra'");
	check_rejects("{\"cmd\":3}", "field 'cmd' must be a string");
	check_rejects("{\"cmd\":\"x\",\"expires\":\"soon\"}", "field 'expires' must be an integer");
	check_rejects("{\"expires\":1}", "missing field 'cmd'");
}

static void test_dump_line(void **state)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", 1, "state", "running");
	char *line;

	(void)state;
	line = json_dump_line(o);
	assert_string_equal(line, "{\"ok\":true,\"state\":\"running\"}\n");
	free(line);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_dump_line),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
