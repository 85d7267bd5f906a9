/* Unit tests for auth/password and auth/base64: hash and verify, wrong passwords,
 * malformed or hostile hash strings, rehash advice, strict base64. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/base64.h"
#include "auth/password.h"

/* Low cost so the tests stay fast; one test uses the real default. */
static const struct password_params cheap = {.pp_ln = 4, .pp_r = 8, .pp_p = 1};

static void test_base64(void **state)
{
	uint8_t buf[64];
	char out[128];

	(void)state;
	assert_int_equal(base64_encode("", 0, false, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(base64_encode("f", 1, false, out, sizeof(out)), 2);
	assert_string_equal(out, "Zg");
	assert_int_equal(base64_encode("fo", 2, false, out, sizeof(out)), 3);
	assert_string_equal(out, "Zm8");
	assert_int_equal(base64_encode("foobar", 6, false, out, sizeof(out)), 8);
	assert_string_equal(out, "Zm9vYmFy");
	assert_int_equal(base64_encode("\xfb\xff", 2, false, out, sizeof(out)), 3);
	assert_string_equal(out, "+/8");
	assert_int_equal(base64_encode("\xfb\xff", 2, true, out, sizeof(out)), 3);
	assert_string_equal(out, "-_8");
	assert_int_equal(base64_encode("foobar", 6, false, out, 8), -ENOSPC);

	assert_int_equal(base64_decode("Zm9vYmFy", 8, false, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "foobar", 6);
	assert_int_equal(base64_decode("-_8", 3, true, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "\xfb\xff", 2);
	/* strict: no padding, no other alphabet, no impossible length, no stray bits */
	assert_int_equal(base64_decode("Zg==", 4, false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(base64_decode("+/8", 3, true, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(base64_decode("-_8", 3, false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(base64_decode("Zm9vY", 5, false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(base64_decode("Zh", 2, false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(base64_decode("Zm 9", 4, false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, false, buf, 5), -ENOSPC);
}

static void test_hash_and_verify(void **state)
{
	char h1[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];

	(void)state;
	assert_int_equal(password_hash_with("correct horse", &cheap, h1, sizeof(h1)), 0);
	assert_int_equal(strncmp(h1, "$scrypt$ln=4,r=8,p=1$", 21), 0);
	assert_true(password_hash_valid(h1));
	assert_int_equal(password_verify("correct horse", h1), 0);
	assert_int_equal(password_verify("correct horsE", h1), -EACCES);
	assert_int_equal(password_verify("correct horse ", h1), -EACCES);
	assert_int_equal(password_verify("", h1), -EACCES);
	/* a fresh salt every time */
	assert_int_equal(password_hash_with("correct horse", &cheap, h2, sizeof(h2)), 0);
	assert_string_not_equal(h1, h2);
	assert_int_equal(password_verify("correct horse", h2), 0);
	/* LDAP-special and non-ASCII characters are just bytes */
	assert_int_equal(password_hash_with("p*ss)(w\\rd \xc3\xa9", &cheap, h1, sizeof(h1)), 0);
	assert_int_equal(password_verify("p*ss)(w\\rd \xc3\xa9", h1), 0);
	assert_int_equal(password_verify("p*ss)(w\\rd e", h1), -EACCES);
}

static void test_hash_refuses(void **state)
{
	char h[PASSWORD_HASH_MAX], longpw[PASSWORD_MAX_LEN + 2];
	struct password_params bad = cheap;

	(void)state;
	assert_int_equal(password_hash_with("", &cheap, h, sizeof(h)), -EINVAL);
	memset(longpw, 'x', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	assert_int_equal(password_hash_with(longpw, &cheap, h, sizeof(h)), -EINVAL);
	longpw[PASSWORD_MAX_LEN] = '\0';
	assert_int_equal(password_hash_with(longpw, &cheap, h, sizeof(h)), 0);
	assert_int_equal(password_verify(longpw, h), 0);
	bad.pp_ln = 0;
	assert_int_equal(password_hash_with("x", &bad, h, sizeof(h)), -EINVAL);
	bad.pp_ln = 22; /* 128 * 8 * 2^22 = 4 GiB: over the memory bound */
	assert_int_equal(password_hash_with("x", &bad, h, sizeof(h)), -EINVAL);
	assert_int_equal(password_hash_with("x", &cheap, h, 20), -ENOSPC);
}

/* The real cost: what vdi-passwd writes and what every login pays. */
static void test_default_cost(void **state)
{
	char h[PASSWORD_HASH_MAX];

	(void)state;
	assert_int_equal(password_hash("hunter2", h, sizeof(h)), 0);
	assert_int_equal(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22), 0);
	/* 16-byte salt (22 chars), 32-byte key (43 chars) */
	assert_int_equal(strlen(h), 22 + 22 + 1 + 43);
	assert_int_equal(password_verify("hunter2", h), 0);
	assert_int_equal(password_verify("hunter3", h), -EACCES);
	assert_false(password_needs_rehash(h));
}

static void test_dummy_hash(void **state)
{
	struct password_params pp, costly = {.pp_ln = 12, .pp_r = 8, .pp_p = 1};
	char d1[PASSWORD_HASH_MAX], d2[PASSWORD_HASH_MAX];

	(void)state;
	/* well-formed, of the cost asked for, random, and matched by no password */
	assert_int_equal(password_dummy_hash(&costly, d1, sizeof(d1)), 0);
	assert_int_equal(password_dummy_hash(&costly, d2, sizeof(d2)), 0);
	assert_true(password_hash_valid(d1));
	assert_string_not_equal(d1, d2);
	assert_int_equal(password_params_of(d1, &pp), 0);
	assert_int_equal(pp.pp_ln, 12);
	assert_int_equal(pp.pp_r, 8);
	assert_int_equal(pp.pp_p, 1);
	assert_int_equal(password_verify("hunter2", d1), -EACCES);
	assert_int_equal(password_verify("", d1), -EACCES);
	costly.pp_ln = 30;
	assert_int_equal(password_dummy_hash(&costly, d1, sizeof(d1)), -EINVAL);
	assert_int_equal(password_params_of("$scrypt$ln=15", &pp), -EINVAL);
}

static void test_malformed(void **state)
{
	char good[PASSWORD_HASH_MAX], buf[PASSWORD_HASH_MAX * 2];
	const char *salt, *key;

	(void)state;
	assert_int_equal(password_hash_with("pw", &cheap, good, sizeof(good)), 0);
	salt = strchr(good + 8, '$') + 1;
	key = strchr(salt, '$') + 1;
	/* the prefix every good test hash below shares, and a 32-byte key */
#define P "$scrypt$ln=4,r=8,p=1$"
#define K "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	const char *bad[] = {
	    "",
	    "pw",
	    "$scrypt$",
	    "$2b$12$abcdefghijklmnopqrstuv",	  /* bcrypt: not ours */
	    "$pbkdf2-sha256$29000$c2FsdA$aGFzaA", /* another scheme */
	    "$scrypt$ln=4,r=8$c2FsdHNhbHQ$" K,	  /* no p */
	    "$scrypt$ln=04,r=8,p=1$c2FsdHNhbHQ$" K,
	    "$scrypt$ln=-4,r=8,p=1$c2FsdHNhbHQ$" K,
	    "$scrypt$ln=4,r=8,p=1,x=2$c2FsdHNhbHQ$" K,
	    "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHQ$" K,  /* 128 GiB */
	    "$scrypt$ln=4,r=8,p=999$c2FsdHNhbHQ$" K, /* p too big */
	    "$scrypt$ln=4,r=0,p=1$c2FsdHNhbHQ$" K,
	    P "c2FsdA$" K,			    /* salt too short */
	    P "c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", /* key too short */
	    P "c2FsdHNhbHQ=$" K,		    /* padding */
	    P "c2FsdHNhbHQ$" K "$",		    /* extra field */
	    P "c2Fs dHNhbHQ$" K,
	    P "$" K,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(password_hash_valid(bad[i]));
		assert_int_equal(password_verify("pw", bad[i]), -EINVAL);
		assert_true(password_needs_rehash(bad[i]));
	}
	assert_int_equal(password_verify("pw", NULL), -EINVAL);
	/* the template the bad strings above were derived from is itself acceptable */
	assert_true(password_hash_valid(P "c2FsdHNhbHQ$" K));
	assert_int_equal(password_verify("pw", P "c2FsdHNhbHQ$" K), -EACCES);
	/* truncated or tampered versions of a good hash */
	snprintf(buf, sizeof(buf), "%.*s", (int)strlen(good) - 1, good);
	assert_int_not_equal(password_verify("pw", buf), 0);
	snprintf(buf, sizeof(buf), "%s", good);
	buf[key - good] = buf[key - good] == 'A' ? 'B' : 'A';
	assert_int_equal(password_verify("pw", buf), -EACCES);
	snprintf(buf, sizeof(buf), "%s", good);
	buf[salt - good] = buf[salt - good] == 'A' ? 'B' : 'A';
	assert_int_equal(password_verify("pw", buf), -EACCES);
	/* cheaper than the default: valid, but worth replacing */
	assert_true(password_hash_valid(good));
	assert_true(password_needs_rehash(good));
#undef P
#undef K
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64),	 cmocka_unit_test(test_hash_and_verify),
	    cmocka_unit_test(test_hash_refuses), cmocka_unit_test(test_default_cost),
	    cmocka_unit_test(test_malformed),	 cmocka_unit_test(test_dummy_hash),
	};
	return cmocka_run_group_tests_name("auth_password", tests, NULL, NULL);
}
