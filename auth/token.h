/* Session tokens: 256 random bits from RAND_bytes, sent to the client as base64url,
 * stored only as their SHA-256 so the database never holds a usable token. Not the
 * broker's one-time display tickets. */
#ifndef VDI_AUTH_TOKEN_H
#define VDI_AUTH_TOKEN_H

#include <stdbool.h>

#define TOKEN_BYTES 32
/* Characters of a token (base64url, no padding) and of its hash (lowercase hex). */
#define TOKEN_LEN      43
#define TOKEN_HASH_LEN 64

/* Writes a new random token into out (TOKEN_LEN + 1 bytes). Returns 0 or -EIO when
 * the random generator fails (never a weak token). */
int token_generate(char out[TOKEN_LEN + 1]);

/* True when token is exactly what token_generate() produces: TOKEN_LEN base64url
 * characters encoding TOKEN_BYTES bytes. Check before hashing or looking up. */
bool token_well_formed(const char *token);

/* Writes the hex SHA-256 of a well-formed token into out (TOKEN_HASH_LEN + 1 bytes):
 * the value to store and look sessions up by. Returns 0, -EINVAL for a malformed token,
 * -EIO if OpenSSL fails. */
int token_hash(const char *token, char out[TOKEN_HASH_LEN + 1]);

/* Constant-time equality of two tokens or token hashes (the time depends only on the
 * lengths, which are public). */
bool token_equal(const char *a, const char *b);

#endif
