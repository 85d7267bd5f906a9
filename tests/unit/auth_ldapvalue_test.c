/* auth/ldapvalue.c: what a directory answer holds, checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/ldapvalue.h"

static void test_text(void **state)
{
	char *t;

	(void)state;
	t = ldapvalue_text("Zoë Example", strlen("Zoë Example"), 64);
	assert_string_equal(t, "Zoë Example");
	free(t);
	assert_null(ldapvalue_text("a\0b", 3, 64));	    /* a NUL inside */
	assert_null(ldapvalue_text("line\nbreak", 10, 64)); /* a control character */
	assert_null(ldapvalue_text("\xff\xfe", 2, 64));	    /* not UTF-8 */
	assert_null(ldapvalue_text("long", 4, 3));
}

static void test_dns(void **state)
{
	char *t;

	(void)state;
	t = ldapvalue_rdn("cn=r&d \\28lab\\29,ou=groups,dc=example,dc=com", 64);
	assert_string_equal(t, "r&d (lab)");
	free(t);
	t = ldapvalue_rdn("CN=Domain Users+sAMAccountName=du,CN=Users,DC=vdi,DC=test", 64);
	assert_string_equal(t, "Domain Users");
	free(t);
	assert_null(ldapvalue_rdn("not a dn", 64));
	assert_null(ldapvalue_rdn("cn=#04024869,dc=x", 64)); /* a BER value, not text */
	t = ldapvalue_normalise_dn("CN=Staff ,  OU=Groups,DC=Example,DC=com", 1024);
	assert_string_equal(t, "CN=Staff,OU=Groups,DC=Example,DC=com"); /* spaces gone */
	free(t);
	t = ldapvalue_normalise_dn("((garbage", 1024); /* kept as it is, compared as it is */
	assert_string_equal(t, "((garbage");
	free(t);
	assert_null(ldapvalue_normalise_dn("cn=too long", 4));
}

static void test_primary_group(void **state)
{
	/* S-1-5-21-3721641392-1066254561-2581326102-1104 and primaryGroupID 513 */
	static const unsigned char sid[] = {
	    1,	  5,	0,    0,    0,	  0,	0,    5,    21,	  0,	0,    0,    0xb0, 0x6d,
	    0xd2, 0xdd, 0xe1, 0x70, 0x8e, 0x3f, 0x16, 0xd1, 0xdb, 0x99, 0x50, 0x04, 0,	  0};
	char *f;

	(void)state;
	f = ldapvalue_primary_group_filter(sid, sizeof(sid), "513");
	assert_string_equal(f, "(objectSid=\\01\\05\\00\\00\\00\\00\\00\\05\\15\\00\\00\\00\\b0\\6d"
			       "\\d2\\dd\\e1\\70\\8e\\3f\\16\\d1\\db\\99\\01\\02\\00\\00)");
	free(f);
	assert_null(ldapvalue_primary_group_filter(sid, sizeof(sid) - 1, "513")); /* length */
	assert_null(ldapvalue_primary_group_filter(sid, sizeof(sid), "0"));
	assert_null(ldapvalue_primary_group_filter(sid, sizeof(sid), "-513"));
	assert_null(ldapvalue_primary_group_filter(sid, sizeof(sid), " 513"));
	assert_null(ldapvalue_primary_group_filter(sid, sizeof(sid), "4294967296"));
	assert_null(ldapvalue_primary_group_filter(sid, sizeof(sid), "513x"));
	assert_null(ldapvalue_primary_group_filter(sid, sizeof(sid), NULL));
}

static void test_ad_data_code(void **state)
{
	(void)state;
	assert_int_equal(ldapvalue_ad_data_code("80090308: LdapErr: DSID-0C09044E, comment: "
						"AcceptSecurityContext error, data 773, v4563"),
			 0x773);
	assert_int_equal(ldapvalue_ad_data_code("data 52e"), 0x52e);
	assert_int_equal(ldapvalue_ad_data_code("Invalid credentials"), 0);
	assert_int_equal(ldapvalue_ad_data_code("data , v1"), 0);
	assert_int_equal(ldapvalue_ad_data_code(NULL), 0);
	assert_int_equal(ldapvalue_ad_error_code("00000056: Constraint violation - "
						 "check_password_restrictions: the password was "
						 "incorrect"),
			 0x56);
	assert_int_equal(ldapvalue_ad_error_code("0000052D: AtrErr: DSID-03191083, #1"), 0x52d);
	assert_int_equal(ldapvalue_ad_error_code("56: short"), 0);
	assert_int_equal(ldapvalue_ad_error_code("0000005"), 0);
	assert_int_equal(ldapvalue_ad_error_code(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_dns),
	    cmocka_unit_test(test_primary_group),
	    cmocka_unit_test(test_ad_data_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
