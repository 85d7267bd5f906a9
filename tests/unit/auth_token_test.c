/* Unit tests for auth/token: random 256-bit tokens in base64url, their storage hash,
 * shape checks and constant-time equality. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "auth/token.h"

static void test_generate(void **state)
{
	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(token_generate(a), 0);
	assert_int_equal(token_generate(b), 0);
	assert_int_equal(strlen(a), TOKEN_LEN);
	assert_int_equal(
	    strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	    TOKEN_LEN);
	assert_true(token_well_formed(a));
	assert_string_not_equal(a, b);
	/* many tokens, no repeats and no fixed characters (a broken generator shows) */
	char seen[64][TOKEN_LEN + 1];
	size_t differ_first = 0;

	for (int i = 0; i < 64; i++) {
		assert_int_equal(token_generate(seen[i]), 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen[i], seen[j]);
		differ_first += seen[i][0] != seen[0][0];
	}
	assert_true(differ_first > 32);
}

static void test_well_formed(void **state)
{
	char t[TOKEN_LEN + 1], u[TOKEN_LEN + 2];

	(void)state;
	assert_int_equal(token_generate(t), 0);
	assert_false(token_well_formed(NULL));
	assert_false(token_well_formed(""));
	memcpy(u, t, TOKEN_LEN - 1);
	u[TOKEN_LEN - 1] = '\0';
	assert_false(token_well_formed(u)); /* short */
	memcpy(u, t, TOKEN_LEN);
	u[TOKEN_LEN] = 'A';
	u[TOKEN_LEN + 1] = '\0';
	assert_false(token_well_formed(u)); /* long */
	memcpy(u, t, TOKEN_LEN + 1);
	u[5] = '+';
	assert_false(token_well_formed(u)); /* standard alphabet */
	u[5] = '=';
	assert_false(token_well_formed(u));
	/* 43 characters carry 258 bits: the last one may only use 4 of its 6 */
	memcpy(u, t, TOKEN_LEN + 1);
	u[TOKEN_LEN - 1] = 'B';
	assert_false(token_well_formed(u));
	u[TOKEN_LEN - 1] = 'E';
	assert_true(token_well_formed(u));
}

static void test_hash(void **state)
{
	char t[TOKEN_LEN + 1], h1[TOKEN_HASH_LEN + 1], h2[TOKEN_HASH_LEN + 1];

	(void)state;
	/* SHA-256 of 43 'A's, computed independently: printf AAA... | sha256sum */
	memset(t, 'A', TOKEN_LEN);
	t[TOKEN_LEN] = '\0';
	assert_int_equal(token_hash(t, h1), 0);
	assert_string_equal(h1, "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a");
	assert_int_equal(token_generate(t), 0);
	assert_int_equal(token_hash(t, h1), 0);
	assert_int_equal(token_hash(t, h2), 0);
	assert_string_equal(h1, h2);
	assert_int_equal(strlen(h1), TOKEN_HASH_LEN);
	assert_int_equal(strspn(h1, "0123456789abcdef"), TOKEN_HASH_LEN);
	assert_null(strstr(h1, t));
	assert_int_equal(token_hash("not a token", h1), -EINVAL);
}

static void test_equal(void **state)
{
	char t[TOKEN_LEN + 1], u[TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(token_generate(t), 0);
	memcpy(u, t, sizeof(u));
	assert_true(token_equal(t, u));
	u[TOKEN_LEN - 1] ^= 1;
	assert_false(token_equal(t, u));
	u[TOKEN_LEN - 1] ^= 1;
	u[0] ^= 1;
	assert_false(token_equal(t, u));
	assert_false(token_equal(t, "short"));
	assert_false(token_equal(t, NULL));
	assert_false(token_equal(NULL, NULL));
	assert_false(token_equal("", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_generate),
	    cmocka_unit_test(test_well_formed),
	    cmocka_unit_test(test_hash),
	    cmocka_unit_test(test_equal),
	};
	return cmocka_run_group_tests_name("auth_token", tests, NULL, NULL);
}
