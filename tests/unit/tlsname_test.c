/* Unit tests for net/tlsname: the CN a certificate names its holder by, what is refused
 * (none, two, control characters, too long), and the comparison. */
#include <errno.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/tlsname.h"

/* A certificate (unsigned: only its subject matters here) whose subject has the given
 * CNs (NULL-terminated), after an O. */
static X509 *with_cns(const char *const *cns)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);

	assert_non_null(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"vdi", -1, -1, 0);
	for (; *cns; cns++)
		assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
							    (const unsigned char *)*cns,
							    (int)strlen(*cns), -1, 0),
				 1);
	return x;
}

static void reads_the_one_cn(void **state)
{
	static const char *const cn[] = {"host-a", NULL};
	X509 *x = with_cns(cn);
	char buf[TLSNAME_MAX + 1], small[4];

	(void)state;
	assert_int_equal(tlsname_cn(x, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "host-a");
	assert_int_equal(tlsname_cn(x, small, sizeof(small)), -ENAMETOOLONG);
	assert_true(tlsname_is(x, "host-a"));
	assert_false(tlsname_is(x, "host-b"));
	assert_false(tlsname_is(x, "host-"));
	assert_false(tlsname_is(x, "HOST-A"));
	assert_false(tlsname_is(x, ""));
	assert_false(tlsname_is(x, NULL));
	assert_string_equal(tlsname_describe(x, buf, sizeof(buf)), "'host-a'");
	X509_free(x);
}

static void refuses_names_that_name_no_one(void **state)
{
	static const char *const none[] = {NULL}, *const two[] = {"vdi-broker", "host-a", NULL},
				 *const nl[] = {"vdi-broker\nhost=x", NULL};
	char buf[TLSNAME_MAX + 1];
	X509 *x;

	(void)state;
	assert_int_equal(tlsname_cn(NULL, buf, sizeof(buf)), -ENOENT);
	assert_false(tlsname_is(NULL, "vdi-broker"));
	assert_string_equal(tlsname_describe(NULL, buf, sizeof(buf)), "no certificate");
	x = with_cns(none);
	assert_int_equal(tlsname_cn(x, buf, sizeof(buf)), -ENOENT);
	assert_string_equal(tlsname_describe(x, buf, sizeof(buf)), "no name (CN)");
	X509_free(x);
	/* two CNs: neither counts, whichever a check would have looked at */
	x = with_cns(two);
	assert_int_equal(tlsname_cn(x, buf, sizeof(buf)), -ENOENT);
	assert_false(tlsname_is(x, "vdi-broker"));
	assert_false(tlsname_is(x, "host-a"));
	X509_free(x);
	x = with_cns(nl);
	assert_int_equal(tlsname_cn(x, buf, sizeof(buf)), -EINVAL);
	assert_false(tlsname_is(x, "vdi-broker\nhost=x"));
	assert_string_equal(tlsname_describe(x, buf, sizeof(buf)), "an unreadable name");
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(reads_the_one_cn),
	    cmocka_unit_test(refuses_names_that_name_no_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
