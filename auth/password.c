/* scrypt password hashes over EVP_KDF "SCRYPT": encoding, strict parsing with cost
 * bounds (a hash string is outside input too), constant-time comparison. */
#include "auth/password.h"

#include <errno.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/base64.h"

#define SALT_LEN   16
#define KEY_LEN	   32
#define SALT_MIN   8
#define SALT_MAX   64
#define KEY_MAX	   64
#define LN_MIN	   1
#define LN_MAX	   22
#define R_MAX	   32
#define P_MAX	   16
#define MEMORY_MAX (256ull << 20)

const struct password_params password_default_params = {.pp_ln = 15, .pp_r = 8, .pp_p = 1};

struct parsed_hash {
	struct password_params ph_params;
	uint8_t ph_salt[SALT_MAX];
	size_t ph_salt_len;
	uint8_t ph_key[KEY_MAX];
	size_t ph_key_len;
};

static bool params_ok(const struct password_params *pp)
{
	if (pp->pp_ln < LN_MIN || pp->pp_ln > LN_MAX || pp->pp_r < 1 || pp->pp_r > R_MAX ||
	    pp->pp_p < 1 || pp->pp_p > P_MAX)
		return false;
	/* scrypt needs 128 * r * N bytes (plus 128 * r * p for its first step). */
	return 128ull * (uint64_t)pp->pp_r * ((1ull << pp->pp_ln) + (uint64_t)pp->pp_p) <=
	       MEMORY_MAX;
}

static int scrypt(const char *password, size_t len, const uint8_t *salt, size_t salt_len,
		  const struct password_params *pp, uint8_t *key, size_t key_len)
{
	uint64_t n = 1ull << pp->pp_ln, maxmem = MEMORY_MAX + (1u << 20);
	uint32_t r = (uint32_t)pp->pp_r, p = (uint32_t)pp->pp_p;
	OSSL_PARAM params[7];
	EVP_KDF_CTX *ctx;
	EVP_KDF *kdf;
	int ret = 0;

	kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	if (!kdf)
		return -EIO;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!ctx)
		return -ENOMEM;
	params[0] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password, len);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, key, key_len, params) != 1)
		ret = -EIO;
	EVP_KDF_CTX_free(ctx);
	return ret;
}

int password_hash_with(const char *password, const struct password_params *pp, char *out,
		       size_t outlen)
{
	uint8_t salt[SALT_LEN], key[KEY_LEN];
	char salt64[BASE64_ENCODED_LEN(SALT_LEN) + 1], key64[BASE64_ENCODED_LEN(KEY_LEN) + 1];
	size_t len = strlen(password);
	int n, r;

	if (len == 0 || len > PASSWORD_MAX_LEN || !params_ok(pp))
		return -EINVAL;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	r = scrypt(password, len, salt, sizeof(salt), pp, key, sizeof(key));
	if (r < 0)
		goto out_cleanse;
	base64_encode(salt, sizeof(salt), false, salt64, sizeof(salt64));
	base64_encode(key, sizeof(key), false, key64, sizeof(key64));
	n = snprintf(out, outlen, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", pp->pp_ln, pp->pp_r, pp->pp_p,
		     salt64, key64);
	r = n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
out_cleanse:
	OPENSSL_cleanse(key, sizeof(key));
	return r;
}

int password_hash(const char *password, char *out, size_t outlen)
{
	return password_hash_with(password, &password_default_params, out, outlen);
}

/* Reads a decimal number of at most 3 digits without sign or leading zero. */
static const char *parse_small(const char *s, int *out)
{
	int v = 0, digits = 0;

	if (*s == '0' && s[1] >= '0' && s[1] <= '9')
		return NULL;
	while (*s >= '0' && *s <= '9' && digits < 3) {
		v = v * 10 + (*s++ - '0');
		digits++;
	}
	if (digits == 0 || (*s >= '0' && *s <= '9'))
		return NULL;
	*out = v;
	return s;
}

static int parse_hash(const char *s, struct parsed_hash *ph)
{
	static const char prefix[] = "$scrypt$ln=";
	const char *salt, *key, *end;
	int n;

	if (strncmp(s, prefix, sizeof(prefix) - 1))
		return -EINVAL;
	s += sizeof(prefix) - 1;
	if (!(s = parse_small(s, &ph->ph_params.pp_ln)) || strncmp(s, ",r=", 3))
		return -EINVAL;
	if (!(s = parse_small(s + 3, &ph->ph_params.pp_r)) || strncmp(s, ",p=", 3))
		return -EINVAL;
	if (!(s = parse_small(s + 3, &ph->ph_params.pp_p)) || *s != '$')
		return -EINVAL;
	if (!params_ok(&ph->ph_params))
		return -EINVAL;
	salt = s + 1;
	key = strchr(salt, '$');
	if (!key)
		return -EINVAL;
	key++;
	end = key + strlen(key);
	if (strchr(key, '$'))
		return -EINVAL;
	n = base64_decode(salt, (size_t)(key - 1 - salt), false, ph->ph_salt, sizeof(ph->ph_salt));
	if (n < SALT_MIN)
		return -EINVAL;
	ph->ph_salt_len = (size_t)n;
	/* Exactly the length we derive: a truncated key would still match its prefix. */
	n = base64_decode(key, (size_t)(end - key), false, ph->ph_key, sizeof(ph->ph_key));
	if (n != KEY_LEN)
		return -EINVAL;
	ph->ph_key_len = (size_t)n;
	return 0;
}

bool password_hash_valid(const char *encoded)
{
	struct parsed_hash ph;

	return encoded && parse_hash(encoded, &ph) == 0;
}

int password_verify(const char *password, const char *encoded)
{
	struct parsed_hash ph;
	uint8_t key[KEY_MAX];
	size_t len = strlen(password);
	int r;

	if (!encoded || parse_hash(encoded, &ph) < 0)
		return -EINVAL;
	if (len == 0 || len > PASSWORD_MAX_LEN)
		return -EACCES;
	r = scrypt(password, len, ph.ph_salt, ph.ph_salt_len, &ph.ph_params, key, ph.ph_key_len);
	if (r == 0)
		r = CRYPTO_memcmp(key, ph.ph_key, ph.ph_key_len) == 0 ? 0 : -EACCES;
	OPENSSL_cleanse(key, sizeof(key));
	return r;
}

bool password_needs_rehash(const char *encoded)
{
	const struct password_params *d = &password_default_params;
	struct parsed_hash ph;

	if (!encoded || parse_hash(encoded, &ph) < 0)
		return true;
	return ph.ph_params.pp_ln < d->pp_ln || ph.ph_params.pp_r < d->pp_r ||
	       ph.ph_params.pp_p < d->pp_p || ph.ph_salt_len < SALT_LEN || ph.ph_key_len < KEY_LEN;
}

int password_dummy_hash(const struct password_params *pp, char *out, size_t outlen)
{
	uint8_t salt[SALT_LEN], key[KEY_LEN];
	char salt64[BASE64_ENCODED_LEN(SALT_LEN) + 1], key64[BASE64_ENCODED_LEN(KEY_LEN) + 1];
	int n;

	if (!params_ok(pp))
		return -EINVAL;
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(key, sizeof(key)) != 1)
		return -EIO;
	base64_encode(salt, sizeof(salt), false, salt64, sizeof(salt64));
	base64_encode(key, sizeof(key), false, key64, sizeof(key64));
	n = snprintf(out, outlen, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", pp->pp_ln, pp->pp_r, pp->pp_p,
		     salt64, key64);
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

int password_params_of(const char *encoded, struct password_params *params)
{
	struct parsed_hash ph;

	if (!encoded || parse_hash(encoded, &ph) < 0)
		return -EINVAL;
	*params = ph.ph_params;
	return 0;
}
