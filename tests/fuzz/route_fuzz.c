/* libFuzzer harness for request routing (web/route.c). The first byte picks a pattern (the
 * broker's and hostd's routes, or one from the input before a newline) and how many
 * parameters fit; the rest is a raw path. Checked for route_match(): a match returns as
 * many parameters as the pattern has "{}" and fit, each decoded and no longer than its
 * segment, and the path rebuilt from the pattern with the parameters percent-encoded
 * matches again with the same parameters; a failure is -ENOENT or -EINVAL and leaves no
 * parameter behind (LeakSanitizer sees the rest). For route_decode() on the same bytes,
 * into exact-size buffers of every small size: the result never depends on the buffer
 * except for -ENAMETOOLONG when it does not fit, the output is NUL-terminated with no NUL
 * inside, and encoding it again decodes to the same. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/route.h"

#define MAX_PARAMS 4 /* WEB_MAX_PARAMS */

static const char *const patterns[] = {
    "/api/v1/admin/hosts/{}",
    "/api/v1/admin/pools/{}",
    "/api/v1/admin/pools/{}/desktops",
    "/api/v1/admin/pools/{}/entitlements",
    "/api/v1/admin/pools/{}/entitlements/{}/{}",
    "/api/v1/admin/sessions/{}/disconnect",
    "/api/v1/admin/sessions/{}/logoff",
    "/api/v1/admin/users/{}",
    "/api/v1/desktops/{}",
    "/api/v1/desktops/{}/connect",
    "/api/v1/desktops/{}/start",
    "/api/v1/desktops/{}/stop",
    "/api/v1/desktops/{}/ticket",
    "/api/v1/sessions/{}/disconnect",
    "/api/v1/sessions/{}/logoff",
    "/api/v1/login",
    "/api/v1/hosts/heartbeat",
    "/gateway",
    "/",
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

static size_t count_params(const char *pattern)
{
	size_t n = 0;

	for (const char *p = pattern; (p = strstr(p, "/{}")); p += 3)
		if (p[3] == '/' || p[3] == '\0')
			n++;
	return n;
}

/* Percent-encodes everything but unreserved characters. */
static char *encode(const char *s)
{
	char *out = malloc(3 * strlen(s) + 1), *o = out;

	if (!out)
		abort();
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			*o++ = (char)c;
		else
			o += sprintf(o, "%%%02X", c);
	}
	*o = '\0';
	return out;
}

static void check_params_clear(char **params)
{
	for (size_t i = 0; i < MAX_PARAMS; i++)
		if (params[i])
			abort();
}

static void check_match(const char *pattern, const char *path, size_t max, bool again)
{
	char *params[MAX_PARAMS] = {0}, *params2[MAX_PARAMS] = {0};
	int r = route_match(pattern, path, params, max);
	size_t want = count_params(pattern);

	if (r < 0) {
		if (r != -ENOENT && r != -EINVAL)
			abort();
		check_params_clear(params);
		return;
	}
	if ((size_t)r > max || (size_t)r != want)
		abort();
	for (int i = 0; i < r; i++)
		if (!params[i] || strlen(params[i]) > strlen(path))
			abort();
	for (size_t i = (size_t)r; i < MAX_PARAMS; i++)
		if (params[i])
			abort();
	if (again) {
		/* the pattern with each "{}" replaced by an encoded parameter */
		size_t cap = strlen(pattern) + 1, k = 0;
		char *rebuilt, *o;

		for (int i = 0; i < r; i++)
			cap += 3 * strlen(params[i]);
		rebuilt = o = malloc(cap);
		if (!rebuilt)
			abort();
		for (const char *p = pattern; *p;) {
			if (p[0] == '{' && p[1] == '}' && p > pattern && p[-1] == '/' &&
			    (p[2] == '/' || p[2] == '\0')) {
				char *e = encode(params[k++]);

				o = stpcpy(o, e);
				free(e);
				p += 2;
			} else {
				*o++ = *p++;
			}
		}
		*o = '\0';
		if (route_match(pattern, rebuilt, params2, max) != r)
			abort();
		for (int i = 0; i < r; i++)
			if (strcmp(params[i], params2[i]))
				abort();
		route_free_params(params2, (size_t)r);
		free(rebuilt);
	}
	route_free_params(params, (size_t)r);
	check_params_clear(params);
}

static void check_decode(const char *src, size_t len)
{
	char *big = malloc(len + 1), *dst, *enc, *back;
	int r = route_decode(src, len, big, len + 1), r2;

	if (!big)
		abort();
	if (r != -EINVAL &&
	    (r < 0 || (size_t)r > len || big[r] != '\0' || strlen(big) != (size_t)r))
		abort();
	for (size_t dl = 0; dl <= len + 1 && dl < 40; dl++) {
		dst = malloc(dl ? dl : 1);
		if (!dst)
			abort();
		r2 = route_decode(src, len, dst, dl);
		if (r >= 0 && (size_t)r < dl) {
			if (r2 != r || memcmp(dst, big, (size_t)r + 1))
				abort();
		} else if (r >= 0) {
			if (r2 != -ENAMETOOLONG)
				abort();
		} else if (r2 != -EINVAL && r2 != -ENAMETOOLONG) {
			abort();
		}
		free(dst);
	}
	if (r >= 0) {
		enc = encode(big);
		back = malloc(strlen(enc) + 1);
		if (!back)
			abort();
		if (route_decode(enc, strlen(enc), back, strlen(enc) + 1) != r || strcmp(back, big))
			abort();
		free(back);
		free(enc);
	}
	free(big);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *path, *nl;
	const char *pattern;
	size_t max, pick;

	if (size < 1)
		return 0;
	pick = data[0] & 31;
	max = (size_t)(data[0] >> 5) % (MAX_PARAMS + 1);
	/* an exact-size copy: the bytes, NUL-terminated */
	text = malloc(size);
	if (!text)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	check_decode(text, size - 1);
	if (pick < NPATTERNS) {
		pattern = patterns[pick];
		path = text;
	} else {
		nl = strchr(text, '\n');
		if (!nl) {
			free(text);
			return 0;
		}
		*nl = '\0';
		pattern = text;
		path = nl + 1;
	}
	check_match(pattern, path, max, true);
	check_match(pattern, path, MAX_PARAMS, true);
	free(text);
	return 0;
}
