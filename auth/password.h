/* Password hashing for local users: scrypt through OpenSSL 3's EVP_KDF, stored as a
 * self-describing string "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (PHC format, base64
 * without padding), verified in constant time. Not for session tokens (see token.h). */
#ifndef VDI_AUTH_PASSWORD_H
#define VDI_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Room for any hash string password_hash() writes, NUL included. */
#define PASSWORD_HASH_MAX 128
/* Longest password accepted, in bytes. */
#define PASSWORD_MAX_LEN 1024

/* scrypt cost: N = 2^ln, block size r, parallelism p. */
struct password_params {
	int pp_ln;
	int pp_r;
	int pp_p;
};

/* The cost new hashes get: ln=15 r=8 p=1 (32 MiB, about 0.1 s). */
extern const struct password_params password_default_params;

/* Hashes password (1..PASSWORD_MAX_LEN bytes) with a fresh 16-byte random salt into
 * out (PASSWORD_HASH_MAX bytes). This is the `vdi-passwd` helper the admin CLI exposes.
 * Returns 0, -EINVAL for an empty or too long password, -EIO if OpenSSL fails. */
int password_hash(const char *password, char *out, size_t outlen);
/* The same with an explicit cost (tests use a low one; bounds as for verification). */
int password_hash_with(const char *password, const struct password_params *params, char *out,
		       size_t outlen);

/* Checks password against an encoded hash. Returns 0 on a match, -EACCES on a
 * mismatch (an empty password never matches), -EINVAL when encoded is not a hash
 * string this module accepts (unknown scheme, bad base64, cost out of bounds: at most
 * 256 MiB of memory and p <= 16), -ENOMEM or -EIO if OpenSSL fails. */
int password_verify(const char *password, const char *encoded);

/* True when encoded is a well-formed hash string (what password_verify accepts). */
bool password_hash_valid(const char *encoded);

/* True when encoded should be replaced by a fresh hash after a successful login:
 * malformed, or weaker than password_default_params. */
bool password_needs_rehash(const char *encoded);

/* Writes into out (PASSWORD_HASH_MAX bytes) a well-formed hash string at cost params
 * whose salt and key are random: no password matches it, and password_verify() against
 * it costs what a real hash of that cost does. Checked for an unknown user, so the
 * response time does not tell who exists. Returns 0, -EINVAL (params out of bounds),
 * -EIO if OpenSSL fails. */
int password_dummy_hash(const struct password_params *params, char *out, size_t outlen);

/* The cost encoded in a well-formed hash string. Returns 0 or -EINVAL. */
int password_params_of(const char *encoded, struct password_params *params);

#endif
