/* Unit tests for auth/identity: username syntax (lengths, NUL, control characters,
 * UTF-8), the group list (no duplicates, bounded) and the JSON form. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/identity.h"

#define VALID(s) identity_valid_username((s), sizeof(s) - 1)

static void test_usernames(void **state)
{
	char longname[IDENTITY_USERNAME_MAX + 2];

	(void)state;
	assert_true(VALID("alice"));
	assert_true(VALID("alice.smith@example.com"));
	assert_true(VALID("CORP\\alice"));
	assert_true(VALID("zo\xc3\xab"));		/* zoë */
	assert_true(VALID("\xe5\xb1\xb1\xe7\x94\xb0")); /* 山田 */
	/* LDAP-special characters are the LDAP module's to escape, not refused here */
	assert_true(VALID("*"));
	assert_true(VALID("alice)(|(uid=*"));
	assert_true(VALID("\\2a"));
	assert_false(identity_valid_username("", 0));
	assert_false(identity_valid_username(NULL, 3));
	assert_false(VALID("al\0ice")); /* a NUL inside: refused, not cut short */
	assert_false(VALID("alice\0"));
	assert_false(VALID("ali\nce"));
	assert_false(VALID("alice\r"));
	assert_false(VALID("ali\tce"));
	assert_false(VALID("ali\x7f"
			   "ce"));
	assert_false(VALID("ali\xc2\x85"
			   "ce")); /* U+0085, a C1 control */
	assert_false(VALID("ali\xe2\x80\xa8"
			   "ce")); /* U+2028 line separator */
	assert_false(VALID(" alice"));
	assert_false(VALID("alice "));
	assert_false(VALID("\xc3"));		 /* cut short */
	assert_false(VALID("\xc0\xaf"));	 /* overlong '/' */
	assert_false(VALID("\xed\xa0\x80"));	 /* surrogate */
	assert_false(VALID("\xf4\x90\x80\x80")); /* beyond U+10FFFF */
	assert_false(VALID("\xff"));
	memset(longname, 'a', sizeof(longname));
	assert_true(identity_valid_username(longname, IDENTITY_USERNAME_MAX));
	assert_false(identity_valid_username(longname, IDENTITY_USERNAME_MAX + 1));
}

static void test_groups(void **state)
{
	struct identity *id = identity_new("alice", NULL, NULL, "");
	char name[32];

	(void)state;
	assert_non_null(id);
	assert_string_equal(id->id_display_name, "alice");
	assert_null(id->id_mail);
	assert_null(id->id_dn);
	assert_int_equal(identity_add_group(id, "engineering"), 0);
	assert_int_equal(identity_add_group(id, "Engineering"), 0);
	assert_int_equal(identity_add_group(id, "staff"), 0);
	assert_int_equal(identity_add_group(id, ""), -EINVAL);
	assert_int_equal(id->id_ngroups, 2);
	assert_true(identity_has_group(id, "STAFF"));
	assert_false(identity_has_group(id, "sales"));
	for (int i = 0; i < IDENTITY_MAX_GROUPS - 2; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		assert_int_equal(identity_add_group(id, name), 0);
	}
	assert_int_equal(identity_add_group(id, "one-too-many"), -E2BIG);
	assert_int_equal(identity_add_group(id, "staff"), 0); /* present already */
	assert_int_equal(id->id_ngroups, IDENTITY_MAX_GROUPS);
	identity_free(id);
	identity_free(NULL);
	assert_null(identity_new(NULL, NULL, NULL, NULL));
}

static void test_json(void **state)
{
	struct identity *id =
	    identity_new("alice", "uid=alice,dc=example,dc=com", "Alice Example", "a@example.com");
	json_t *j;
	char *s;

	(void)state;
	identity_add_group(id, "engineering");
	identity_add_group(id, "staff");
	j = identity_to_json(id);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"username\":\"alice\",\"dn\":\"uid=alice,dc=example,dc=com\","
			       "\"display_name\":\"Alice Example\",\"mail\":\"a@example.com\","
			       "\"groups\":[\"engineering\",\"staff\"]}");
	free(s);
	json_decref(j);
	identity_free(id);
	id = identity_new("bob", NULL, NULL, NULL);
	j = identity_to_json(id);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"username\":\"bob\",\"dn\":null,\"display_name\":\"bob\","
			       "\"mail\":null,\"groups\":[]}");
	free(s);
	json_decref(j);
	identity_free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_usernames),
	    cmocka_unit_test(test_groups),
	    cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests_name("auth_identity", tests, NULL, NULL);
}
