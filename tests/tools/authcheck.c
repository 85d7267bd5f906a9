/* Test driver for auth/ until the broker exists: loads [auth] and [ldap] from a config
 * file, logs one user in (password read from stdin) and prints the identity or the
 * error as one JSON line. Also prints password hashes and the LDAP filters. Not a tool
 * for operators (the admin CLI will expose hashing). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/ldapdir.h"
#include "auth/password.h"
#include "lib/json.h"
#include "lib/log.h"

static const struct config_option options[] = {
    AUTH_CONFIG_OPTIONS(0),
    CONFIG_END,
};

static void usage(void)
{
	fprintf(stderr,
		"usage: authcheck [-v] [-x] [-a ADDR] CONFIG USERNAME   (password on stdin)\n"
		"       authcheck --filters CONFIG USERNAME DN\n"
		"       authcheck --hash [--cost LN]   (password on stdin)\n"
		"  -x  USERNAME is hex, so any bytes (NUL included) can be passed\n");
	exit(2);
}

/* Reads stdin (at most 64 KiB) and drops one trailing newline. */
static char *read_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;

	if (!buf)
		return NULL;
	while (n < cap && (r = read(0, buf + n, cap - n)) > 0)
		n += (size_t)r;
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return buf;
}

static char *from_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex);
	char *out;

	if (n % 2 || !(out = malloc(n / 2 + 1)))
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(out);
			return NULL;
		}
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	*len = n / 2;
	return out;
}

static void print_json(json_t *obj)
{
	char *line = json_dump_line(obj);

	if (line)
		fputs(line, stdout);
	free(line);
	json_decref(obj);
}

static int do_hash(int ln)
{
	struct password_params pp = password_default_params;
	char hash[PASSWORD_HASH_MAX];
	size_t len;
	char *pw = read_stdin(&len);
	int r;

	if (ln)
		pp.pp_ln = ln;
	if (!pw || strlen(pw) != len) {
		fprintf(stderr, "authcheck: the password must not contain NUL\n");
		return 2;
	}
	r = password_hash_with(pw, &pp, hash, sizeof(hash));
	free(pw);
	if (r < 0) {
		fprintf(stderr, "authcheck: %s\n", strerror(-r));
		return 1;
	}
	printf("%s\n", hash);
	return 0;
}

static int load(const char *path, struct auth_config *cfg)
{
	char err[512];

	memset(cfg, 0, sizeof(*cfg));
	if (config_load(path, options, cfg, err, sizeof(err)) < 0 ||
	    auth_config_finish(cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "authcheck: %s\n", err);
		return -1;
	}
	return 0;
}

static int do_filters(const char *path, const char *username, const char *dn)
{
	struct auth_config cfg;
	char *user_filter, *group_filter;

	if (load(path, &cfg) < 0) {
		config_free(options, &cfg);
		return 2;
	}
	user_filter = ldapdir_user_filter(&cfg.ac_ldap, username);
	group_filter = ldapdir_group_filter(&cfg.ac_ldap, dn, username);
	print_json(
	    json_pack("{s:s?,s:s?}", "user_filter", user_filter, "group_filter", group_filter));
	free(user_filter);
	free(group_filter);
	config_free(options, &cfg);
	return 0;
}

static int do_login(const char *path, const char *username, size_t username_len, const char *addr)
{
	struct auth_config cfg;
	struct identity *id = NULL;
	struct auth *a;
	char err[512];
	int retry = 0, r;
	size_t pwlen;
	char *pw;

	if (load(path, &cfg) < 0) {
		config_free(options, &cfg);
		return 2;
	}
	a = auth_open(&cfg, NULL, err, sizeof(err));
	if (!a) {
		fprintf(stderr, "authcheck: %s\n", err);
		config_free(options, &cfg);
		return 2;
	}
	pw = read_stdin(&pwlen);
	if (!pw) {
		auth_close(a);
		config_free(options, &cfg);
		return 1;
	}
	struct auth_request req = {
	    .ar_username = username,
	    .ar_username_len = username_len,
	    .ar_password = pw,
	    .ar_password_len = pwlen,
	    .ar_client_addr = addr,
	    .ar_now = time(NULL),
	};
	r = auth_login(a, &req, &id, &retry, err, sizeof(err));
	free(pw);
	if (r == 0) {
		print_json(json_pack("{s:b,s:o}", "ok", 1, "identity", identity_to_json(id)));
	} else {
		const char *name = strerrorname_np(-r);

		print_json(json_pack("{s:b,s:s,s:s,s:i}", "ok", 0, "error", name ? name : "?",
				     "message", err, "retry_after", retry));
	}
	identity_free(id);
	auth_close(a);
	config_free(options, &cfg);
	return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"hash", no_argument, NULL, 'H'},
	    {"cost", required_argument, NULL, 'c'},
	    {"filters", no_argument, NULL, 'F'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"hex", no_argument, NULL, 'x'},
	    {"addr", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	bool hash = false, filters = false, hex = false, verbose = false;
	const char *addr = "127.0.0.1";
	int c, ln = 0, r;

	while ((c = getopt_long(argc, argv, "vxa:", longopts, NULL)) != -1) {
		switch (c) {
		case 'H': hash = true; break;
		case 'c': ln = atoi(optarg); break;
		case 'F': filters = true; break;
		case 'v': verbose = true; break;
		case 'x': hex = true; break;
		case 'a': addr = optarg; break;
		default: usage();
		}
	}
	log_init("authcheck", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, false);
	if (hash)
		return optind == argc ? do_hash(ln) : (usage(), 2);
	if (filters)
		return argc - optind == 3
			   ? do_filters(argv[optind], argv[optind + 1], argv[optind + 2])
			   : (usage(), 2);
	if (argc - optind != 2)
		usage();
	if (hex) {
		size_t len;
		char *name = from_hex(argv[optind + 1], &len);

		if (!name)
			usage();
		r = do_login(argv[optind], name, len, addr);
		free(name);
		return r;
	}
	return do_login(argv[optind], argv[optind + 1], strlen(argv[optind + 1]), addr);
}
