/* Static files for the portal: safe resolution of a URL path inside a root directory
 * (no "..", no hidden files, no symlink leading out, regular files only) and the
 * content type by extension. Serving itself is web/server.c's. */
#ifndef VDI_WEB_STATIC_H
#define VDI_WEB_STATIC_H

#include <stddef.h>

/* Resolves raw_path (as received, percent-escaped; "/" and ".../" mean index.html)
 * inside root into out, a canonical path of a regular file under root's canonical
 * path. Returns 0, -ENOENT (absent, not a regular file, outside root through a
 * symlink) or -EINVAL (malformed: bad escape, "..", ".", a hidden name, a backslash or
 * control character, too long). */
int static_resolve(const char *root, const char *raw_path, char *out, size_t outlen);

/* "text/html; charset=utf-8" etc.; "application/octet-stream" when unknown. */
const char *static_content_type(const char *path);

#endif
