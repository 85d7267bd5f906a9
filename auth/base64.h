/* Base64 (RFC 4648) without padding, in the standard or the URL-safe alphabet, with a
 * strict decoder: for password hash strings and session tokens. Not a MIME codec (no
 * line breaks, no padding, no whitespace). */
#ifndef VDI_AUTH_BASE64_H
#define VDI_AUTH_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Characters needed to encode n bytes, without the terminating NUL. */
#define BASE64_ENCODED_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Encodes n bytes into out as a NUL-terminated string, URL-safe alphabet ("-_") when
 * url is true. Returns the string length, or -ENOSPC when outlen is too small. */
int base64_encode(const void *in, size_t n, bool url, char *out, size_t outlen);

/* Decodes the len characters at in into out. Refuses (-EINVAL) padding, characters of
 * the other alphabet, a length that no encoding produces and non-zero unused trailing
 * bits, so every byte string has exactly one accepted encoding. Returns the number of
 * bytes written, or -ENOSPC when outlen is too small. */
int base64_decode(const char *in, size_t len, bool url, void *out, size_t outlen);

#endif
