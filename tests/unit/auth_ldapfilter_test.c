/* Unit tests for auth/ldapfilter: RFC 4515 escaping (specials, NUL, non-ASCII), user
 * filter templates, membership filters including Active Directory's in-chain rule. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/ldapfilter.h"

static void expect_escape(const char *in, size_t len, const char *want)
{
	char out[256];

	assert_int_equal(ldapfilter_escape(in, len, out, sizeof(out)), (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_escape(void **state)
{
	(void)state;
	expect_escape("alice", 5, "alice");
	expect_escape("*", 1, "\\2a");
	expect_escape("(", 1, "\\28");
	expect_escape(")", 1, "\\29");
	expect_escape("\\", 1, "\\5c");
	expect_escape("alice)(|(uid=*", 14, "alice\\29\\28|\\28uid=\\2a");
	/* an already-escaped looking input is escaped again, not passed through */
	expect_escape("\\2a", 3, "\\5c2a");
	/* NUL inside the value, and what follows it, are kept and escaped */
	expect_escape("al\0ice", 6, "al\\00ice");
	/* every non-ASCII byte and control character is escaped */
	expect_escape("zo\xc3\xab", 4, "zo\\c3\\ab");
	expect_escape("a\tb\x7f", 4, "a\\09b\\7f");
	/* characters harmless in a filter value stay */
	expect_escape("a=b,c+d&e|f!g~h<>", 17, "a=b,c+d&e|f!g~h<>");
	expect_escape("", 0, "");
}

static void test_escape_space(void **state)
{
	char out[8];

	(void)state;
	/* 3 bytes per escaped byte + NUL: "***" needs 10 */
	assert_int_equal(ldapfilter_escape("***", 3, out, sizeof(out)), -ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(ldapfilter_escape("abcdefg", 7, out, sizeof(out)), 7);
	assert_int_equal(ldapfilter_escape("abcdefgh", 8, out, sizeof(out)), -ENOSPC);
	assert_int_equal(ldapfilter_escape("a", 1, out, 0), -ENOSPC);
}

static void test_format(void **state)
{
	char *f;

	(void)state;
	f = ldapfilter_format("(&(objectClass=person)(uid=%s))", "alice", 5);
	assert_string_equal(f, "(&(objectClass=person)(uid=alice))");
	free(f);
	f = ldapfilter_format("(&(objectClass=person)(uid=%s))", "*", 1);
	assert_string_equal(f, "(&(objectClass=person)(uid=\\2a))");
	free(f);
	f = ldapfilter_format("(|(uid=%s)(mail=%s@example.com)(x=100%%))", "a(b", 3);
	assert_string_equal(f, "(|(uid=a\\28b)(mail=a\\28b@example.com)(x=100%))");
	free(f);
	f = ldapfilter_format("(uid=%s)", "a\0*", 3);
	assert_string_equal(f, "(uid=a\\00\\2a)");
	free(f);
	/* a value with "%s" in it is not expanded again */
	f = ldapfilter_format("(uid=%s)", "%s", 2);
	assert_string_equal(f, "(uid=%s)");
	free(f);
}

static void test_templates(void **state)
{
	(void)state;
	assert_true(ldapfilter_template_valid("(uid=%s)", true));
	assert_true(ldapfilter_template_valid("(&(a=b)(|(uid=%s)(cn=%s)))", true));
	assert_false(ldapfilter_template_valid("uid=%s", true));
	assert_false(ldapfilter_template_valid("(uid=%s", true));
	assert_false(ldapfilter_template_valid("(uid=%s))", true));
	assert_false(ldapfilter_template_valid("(a=b)(uid=%s)", true));
	assert_false(ldapfilter_template_valid("(uid=%d)", true));
	assert_false(ldapfilter_template_valid("(uid=%)", true));
	assert_false(ldapfilter_template_valid("(uid=alice)", true));
	assert_false(ldapfilter_template_valid(NULL, true));
	assert_true(ldapfilter_template_valid("(objectClass=groupOfNames)", false));
	assert_false(ldapfilter_template_valid("(member=%s)", false));
	errno = 0;
	assert_null(ldapfilter_format("(uid=%d)", "x", 1));
	assert_int_equal(errno, EINVAL);
}

static void test_attrs(void **state)
{
	(void)state;
	assert_true(ldapfilter_attr_valid("uid"));
	assert_true(ldapfilter_attr_valid("sAMAccountName"));
	assert_true(ldapfilter_attr_valid("x-custom-1"));
	assert_true(ldapfilter_attr_valid("2.5.4.3"));
	assert_false(ldapfilter_attr_valid(""));
	assert_false(ldapfilter_attr_valid("1uid"));
	assert_false(ldapfilter_attr_valid("-uid"));
	assert_false(ldapfilter_attr_valid("uid)(x"));
	assert_false(ldapfilter_attr_valid("uid=*"));
	assert_false(ldapfilter_attr_valid("2.5..4"));
	assert_false(ldapfilter_attr_valid("2.5.4."));
}

static void test_membership(void **state)
{
	const char *one[] = {"cn=Carol (QA) *Star*,ou=people,dc=example,dc=com"};
	const char *two[] = {"cn=a,dc=x", "cn=b\\2c c,dc=x"};
	char *f;

	(void)state;
	f = ldapfilter_membership("(objectClass=groupOfNames)", "member", false, one, 1);
	assert_string_equal(f, "(&(objectClass=groupOfNames)(member=cn=Carol \\28QA\\29 "
			       "\\2aStar\\2a,ou=people,dc=example,dc=com))");
	free(f);
	f = ldapfilter_membership("(objectClass=groupOfNames)", "member", false, two, 2);
	assert_string_equal(f, "(&(objectClass=groupOfNames)(|(member=cn=a,dc=x)(member=cn=b\\5c2c "
			       "c,dc=x)))");
	free(f);
	f = ldapfilter_membership(NULL, "memberUid", false, (const char *[]){"bob"}, 1);
	assert_string_equal(f, "(&(memberUid=bob))");
	free(f);
	assert_null(ldapfilter_membership("(objectClass=group)", "member)(x", false, one, 1));
	assert_null(ldapfilter_membership("(objectClass=group)", "member", false, one, 0));
	assert_null(ldapfilter_membership("objectClass=group", "member", false, one, 1));
}

/* Active Directory's nested membership: the filter that would be sent. OpenLDAP has no
 * such matching rule, so this string is what we can test. */
static void test_in_chain(void **state)
{
	const char *dn[] = {"CN=Alice Smith,OU=Users,DC=corp,DC=example,DC=com"};
	char *f;

	(void)state;
	f = ldapfilter_membership("(objectClass=group)", "member", true, dn, 1);
	assert_string_equal(f, "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="
			       "CN=Alice Smith,OU=Users,DC=corp,DC=example,DC=com))");
	free(f);
	dn[0] = "CN=Evil*)(objectClass=*,OU=Users,DC=corp";
	f = ldapfilter_membership("(objectClass=group)", "member", true, dn, 1);
	assert_string_equal(f, "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:="
			       "CN=Evil\\2a\\29\\28objectClass=\\2a,OU=Users,DC=corp))");
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),   cmocka_unit_test(test_escape_space),
	    cmocka_unit_test(test_format),   cmocka_unit_test(test_templates),
	    cmocka_unit_test(test_attrs),    cmocka_unit_test(test_membership),
	    cmocka_unit_test(test_in_chain),
	};
	return cmocka_run_group_tests_name("auth_ldapfilter", tests, NULL, NULL);
}
