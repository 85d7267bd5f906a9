/* Static file resolution (see static.h): the decoded path is checked segment by
 * segment, then the real path must stay under the root's real path. */
#include "web/static.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "web/route.h"

static bool segment_ok(const char *seg, size_t len)
{
	if (len == 0 || seg[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)seg[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			return false;
	}
	return true;
}

int static_resolve(const char *root, const char *raw_path, char *out, size_t outlen)
{
	char decoded[PATH_MAX], joined[PATH_MAX], real_root[PATH_MAX], *real;
	const char *seg;
	size_t rlen;
	struct stat st;
	int n;

	n = route_decode(raw_path, strlen(raw_path), decoded, sizeof(decoded) - 16);
	if (n < 0 || decoded[0] != '/')
		return -EINVAL;
	if (decoded[n - 1] == '/')
		strcat(decoded, "index.html");
	for (seg = decoded + 1; *seg;) {
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);

		if (!segment_ok(seg, len))
			return -EINVAL;
		seg += len + (end ? 1 : 0);
	}
	if (!realpath(root, real_root))
		return -ENOENT;
	if ((size_t)snprintf(joined, sizeof(joined), "%s%s", real_root, decoded) >= sizeof(joined))
		return -EINVAL;
	real = realpath(joined, NULL);
	if (!real)
		return -ENOENT;
	rlen = strlen(real_root);
	if (strncmp(real, real_root, rlen) || real[rlen] != '/' || stat(real, &st) < 0 ||
	    !S_ISREG(st.st_mode) || strlen(real) >= outlen) {
		free(real);
		return -ENOENT;
	}
	strcpy(out, real);
	free(real);
	return 0;
}

const char *static_content_type(const char *path)
{
	static const char *const types[][2] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".woff2", "font/woff2"},
	    {".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(path, '.');

	if (dot && !strchr(dot, '/'))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcasecmp(dot, types[i][0]))
				return types[i][1];
	return "application/octet-stream";
}
