/* Session tokens: generation, shape check, storage hash and constant-time equality. */
#include "auth/token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

#include "auth/base64.h"

int token_generate(char out[TOKEN_LEN + 1])
{
	uint8_t raw[TOKEN_BYTES];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	base64_encode(raw, sizeof(raw), true, out, TOKEN_LEN + 1);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

bool token_well_formed(const char *token)
{
	uint8_t raw[TOKEN_BYTES];
	bool ok;

	if (!token || strnlen(token, TOKEN_LEN + 1) != TOKEN_LEN)
		return false;
	ok = base64_decode(token, TOKEN_LEN, true, raw, sizeof(raw)) == TOKEN_BYTES;
	OPENSSL_cleanse(raw, sizeof(raw));
	return ok;
}

int token_hash(const char *token, char out[TOKEN_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!token_well_formed(token))
		return -EINVAL;
	if (EVP_Digest(token, TOKEN_LEN, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -EIO;
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[TOKEN_HASH_LEN] = '\0';
	return 0;
}

bool token_equal(const char *a, const char *b)
{
	size_t la, lb;

	if (!a || !b)
		return false;
	la = strlen(a);
	lb = strlen(b);
	if (la != lb || la == 0)
		return false;
	return CRYPTO_memcmp(a, b, la) == 0;
}
