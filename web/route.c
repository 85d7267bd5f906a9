/* Path matching and percent-decoding for the router (see route.h). */
#include "web/route.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int route_decode(const char *src, size_t len, char *dst, size_t dstlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -EINVAL;
			hi = hexval(src[i + 1]);
			lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '\0') {
			return -EINVAL;
		}
		if (o + 1 >= dstlen)
			return -ENAMETOOLONG;
		dst[o++] = c;
	}
	if (dstlen == 0)
		return -ENAMETOOLONG;
	dst[o] = '\0';
	return (int)o;
}

void route_free_params(char **params, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(params[i]);
		params[i] = NULL;
	}
}

int route_match(const char *pattern, const char *path, char **params, size_t max)
{
	const char *p = pattern, *s = path;
	bool malformed = false;
	size_t n = 0;
	int r;

	while (*p && *s) {
		const char *pend, *send;
		size_t plen, slen;

		if (*p != '/' || *s != '/')
			break;
		p++, s++;
		pend = strchr(p, '/');
		send = strchr(s, '/');
		plen = pend ? (size_t)(pend - p) : strlen(p);
		slen = send ? (size_t)(send - s) : strlen(s);
		if (plen == 2 && !memcmp(p, "{}", 2)) {
			if (slen == 0) {
				r = -ENOENT;
				goto out_free;
			}
			if (n == max) {
				r = -EINVAL;
				goto out_free;
			}
			params[n] = malloc(slen + 1);
			if (!params[n]) {
				r = -ENOMEM;
				goto out_free;
			}
			n++;
			/* a bad escape is the client's error if the rest matches too */
			if (route_decode(s, slen, params[n - 1], slen + 1) < 0)
				malformed = true;
		} else if (plen != slen || memcmp(p, s, plen)) {
			r = -ENOENT;
			goto out_free;
		}
		p += plen;
		s += slen;
	}
	if (*p || *s) {
		r = -ENOENT;
		goto out_free;
	}
	if (malformed) {
		r = -EINVAL;
		goto out_free;
	}
	return (int)n;

out_free:
	route_free_params(params, n);
	return r;
}
