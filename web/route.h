/* Pure pieces of request routing: matching a path against a pattern with "{}"
 * parameters, and strict percent-decoding (no NUL, no malformed escapes). No I/O and
 * no libmicrohttpd, so they are unit-tested on their own. */
#ifndef VDI_WEB_ROUTE_H
#define VDI_WEB_ROUTE_H

#include <stddef.h>

/* Decodes len bytes of src (%XX escapes; '+' stays '+') into dst (room for dstlen
 * bytes, NUL included). Returns the decoded length, or -EINVAL for a malformed escape
 * or an escaped NUL, -ENAMETOOLONG when dst is too small. */
int route_decode(const char *src, size_t len, char *dst, size_t dstlen);

/* Matches path (raw, without query) against pattern. On a match returns the number of
 * parameters (0..max) with each "{}" segment decoded into a new string in params[i]
 * (free them with route_free_params()). Returns -ENOENT when the path does not match,
 * -EINVAL when it matches but a parameter is malformed, -ENOMEM. */
int route_match(const char *pattern, const char *path, char **params, size_t max);
void route_free_params(char **params, size_t n);

#endif
