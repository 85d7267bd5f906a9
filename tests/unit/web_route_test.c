/* Unit tests for web/route and web/static: pattern matching with "{}" parameters,
 * strict percent-decoding, and static paths that must stay inside their root. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "web/route.h"
#include "web/static.h"

static void test_decode(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(route_decode("a%20b", 5, out, sizeof(out)), 3);
	assert_string_equal(out, "a b");
	assert_int_equal(route_decode("r%26d+(lab)", 11, out, sizeof(out)), 9);
	assert_string_equal(out, "r&d+(lab)");
	assert_int_equal(route_decode("%2F", 3, out, sizeof(out)), 1);
	assert_string_equal(out, "/");
	assert_int_equal(route_decode("%00", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(route_decode("%", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(route_decode("%4", 2, out, sizeof(out)), -EINVAL);
	assert_int_equal(route_decode("%zz", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(route_decode("abcdef", 6, out, 4), -ENAMETOOLONG);
}

static void test_match(void **state)
{
	char *p[4] = {NULL};

	(void)state;
	assert_int_equal(route_match("/api/v1/login", "/api/v1/login", p, 4), 0);
	assert_int_equal(route_match("/api/v1/login", "/api/v1/login/", p, 4), -ENOENT);
	assert_int_equal(route_match("/api/v1/login", "/api/v1/logi", p, 4), -ENOENT);
	assert_int_equal(route_match("/api/v1/pools/{}", "/api/v1/pools/", p, 4), -ENOENT);
	assert_int_equal(route_match("/a/{}/e/{}/{}", "/a/p1/e/group/r%26d%20x", p, 4), 3);
	assert_string_equal(p[0], "p1");
	assert_string_equal(p[1], "group");
	assert_string_equal(p[2], "r&d x");
	route_free_params(p, 3);
	/* an escaped slash stays inside its segment */
	assert_int_equal(route_match("/a/{}", "/a/x%2Fy", p, 4), 1);
	assert_string_equal(p[0], "x/y");
	route_free_params(p, 1);
	assert_int_equal(route_match("/a/{}", "/a/x/y", p, 4), -ENOENT);
	/* malformed escapes only matter when the rest matches */
	assert_int_equal(route_match("/a/{}/b", "/a/%00/b", p, 4), -EINVAL);
	assert_int_equal(route_match("/a/{}/b", "/a/%00/c", p, 4), -ENOENT);
	assert_null(p[0]);
}

static void test_static(void **state)
{
	char root[] = "/tmp/web_route_test.XXXXXX", path[4096], out[4096];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/index.html", root);
	f = fopen(path, "w");
	fputs("x", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/sub", root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/sub/app.js", root);
	f = fopen(path, "w");
	fclose(f);
	snprintf(path, sizeof(path), "%s/out", root);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(static_resolve(root, "/", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "/index.html"));
	assert_int_equal(static_resolve(root, "/sub/app.js", out, sizeof(out)), 0);
	assert_int_equal(static_resolve(root, "/sub/%61pp.js", out, sizeof(out)), 0);
	assert_int_equal(static_resolve(root, "/sub/", out, sizeof(out)), -ENOENT);
	assert_int_equal(static_resolve(root, "/sub", out, sizeof(out)), -ENOENT); /* a dir */
	assert_int_equal(static_resolve(root, "/out", out, sizeof(out)), -ENOENT); /* symlink */
	assert_int_equal(static_resolve(root, "/../etc/passwd", out, sizeof(out)), -EINVAL);
	assert_int_equal(static_resolve(root, "/%2e%2e/etc/passwd", out, sizeof(out)), -EINVAL);
	assert_int_equal(static_resolve(root, "/sub/..%2f..%2fetc", out, sizeof(out)), -EINVAL);
	assert_int_equal(static_resolve(root, "/.hidden", out, sizeof(out)), -EINVAL);
	assert_int_equal(static_resolve(root, "//index.html", out, sizeof(out)), -EINVAL);
	assert_int_equal(static_resolve(root, "/a%5cb", out, sizeof(out)), -EINVAL);
	assert_int_equal(static_resolve(root, "/a%00", out, sizeof(out)), -EINVAL);
	assert_int_equal(static_resolve(root, "index.html", out, sizeof(out)), -EINVAL);
	assert_string_equal(static_content_type("a/b.JS"), "text/javascript; charset=utf-8");
	assert_string_equal(static_content_type("a.b/c"), "application/octet-stream");
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub/app.js", root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub", root);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/index.html", root);
	unlink(path);
	rmdir(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_static),
	};
	return cmocka_run_group_tests_name("web_route", tests, NULL, NULL);
}
