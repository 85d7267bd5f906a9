/* vdictl: the administrator's command line over the broker's HTTPS API (admin role):
 * log in once (a bearer token kept in ~/.config/vdi/token or $VDICTL_TOKEN), then list
 * and change pools, entitlements, hosts, sessions, local users, and read the audit log.
 * Tables for people, --json for scripts. Exit 0 ok, 1 failure, 2 usage. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define EXIT_FAIL  1
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: vdictl [-u URL] [--ca FILE | --insecure-localhost] [--json] COMMAND ...\n"
    "  login USER                      log in (password from the terminal or stdin)\n"
    "  logout\n"
    "  pools list | show ID | delete ID\n"
    "  pools create ID --kind dedicated|floating --source automated|manual [--name TEXT]\n"
    "        [--min N] [--max N] [--spare N] [--memory MIB] [--vcpus N]\n"
    "        [--disconnect-timeout SECONDS] [--logoff refresh|destroy] [--disabled]\n"
    "        [--networks CIDRS] [--windows TEXT] [--utc-offset MINUTES] [--hosts IDS]\n"
    "        [--engine qemu|vdi-hv] [--kernel F] [--initrd F] [--disk F] [--cmdline S]\n"
    "        [--desktop HOST:PORT]...     (manual; VNC password from $VDICTL_VNC_PASSWORD)\n"
    "  pools update ID [the options of create but --kind, --source and --desktop]\n"
    "  entitlements add|remove POOL user|group NAME\n"
    "  hosts list | add ID URL [RELAY] | remove ID\n"
    "  sessions list [--all] | disconnect ID | logoff ID\n"
    "  users list | delete NAME\n"
    "  users add NAME [--groups G1,G2] [--display-name TEXT] [--mail ADDR]   (password as "
    "for login)\n"
    "  audit [--limit N]\n"
    "URL: -u, $VDICTL_URL or https://127.0.0.1:9443. Token: $VDICTL_TOKEN or "
    "~/.config/vdi/token.\n";

static struct {
	const char *url, *ca;
	bool insecure, json;
} opt = {.url = NULL};

struct buffer {
	char *data;
	size_t len;
};

static int usage(void)
{
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buffer *b = arg;
	size_t n = size * nmemb;
	char *grown = realloc(b->data, b->len + n + 1);

	if (!grown)
		return 0;
	memcpy(grown + b->len, ptr, n);
	b->data = grown;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static bool loopback_url(const char *url)
{
	static const char *const ok[] = {"https://127.0.0.1:", "https://127.0.0.1/",
					 "https://[::1]:",     "https://[::1]/",
					 "https://localhost:", "https://localhost/"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strncmp(url, ok[i], strlen(ok[i])))
			return true;
	return false;
}

static void token_path(char *out, size_t len)
{
	const char *home = getenv("HOME");

	snprintf(out, len, "%s/.config/vdi/token", home ? home : ".");
}

/* The saved token, or NULL. Returns a new string. */
static char *load_token(void)
{
	const char *env = getenv("VDICTL_TOKEN");
	char path[4096], buf[256];
	FILE *f;

	if (env && env[0])
		return strdup(env);
	token_path(path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static int save_token(const char *token)
{
	char path[4096];
	FILE *f;
	int fd;

	token_path(path, sizeof(path));
	for (char *p = path + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0700); /* each parent, as mkdir -p */
		*p = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		fprintf(stderr, "vdictl: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fprintf(f, "%s\n", token);
	return fclose(f) == 0 ? 0 : -1;
}

/* Calls the API. Returns the HTTP status (with the decoded body in *out, or NULL), or
 * -1 when the broker could not be reached (reported). */
static int call(const char *method, const char *path, const json_t *body, bool auth, json_t **out)
{
	struct curl_slist *headers = NULL;
	struct buffer buf = {NULL, 0};
	char url[4096], hdr[512], *text = NULL, *token = NULL;
	long status = -1;
	CURL *curl = curl_easy_init();
	CURLcode rc;

	*out = NULL;
	if (!curl)
		return -1;
	snprintf(url, sizeof(url), "%s%s", opt.url, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (opt.ca)
		curl_easy_setopt(curl, CURLOPT_CAINFO, opt.ca);
	if (opt.insecure) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (auth) {
		token = load_token();
		if (!token) {
			fprintf(stderr, "vdictl: not logged in: run `vdictl login USER` or set "
					"VDICTL_TOKEN\n");
			curl_easy_cleanup(curl);
			return -1;
		}
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, hdr);
		explicit_bzero(hdr, sizeof(hdr));
	}
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text ? text : "{}");
	} else if (strcmp(method, "GET") && strcmp(method, "DELETE")) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		fprintf(stderr, "vdictl: %s: %s%s\n", opt.url, curl_easy_strerror(rc),
			rc == CURLE_PEER_FAILED_VERIFICATION
			    ? " (give the broker's certificate with --ca, or --insecure-localhost)"
			    : "");
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (buf.len)
			*out = json_loadb(buf.data, buf.len, 0, NULL);
	}
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	free(buf.data);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return (int)status;
}

/* Reports an error answer; returns the exit status. */
static int failed(int status, json_t *reply)
{
	const char *msg = json_string_value(json_object_get(reply, "error"));
	const char *code = json_string_value(json_object_get(reply, "code"));

	if (status >= 0)
		fprintf(stderr, "vdictl: HTTP %d: %s%s%s%s\n", status, msg ? msg : "error",
			code ? " (" : "", code ? code : "", code ? ")" : "");
	json_decref(reply);
	return EXIT_FAIL;
}

static char *escape(const char *s)
{
	return curl_easy_escape(NULL, s, 0);
}

static void cell(const json_t *v, char *out, size_t len)
{
	if (!v || json_is_null(v))
		snprintf(out, len, "-");
	else if (json_is_string(v))
		snprintf(out, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(out, len, "%s", json_is_true(v) ? "yes" : "no");
	else {
		char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(out, len, "%s", t ? t : "?");
		free(t);
	}
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
}

/* Prints rows (an array of objects) as a table of the given columns. */
static void table(const json_t *rows, const char *const *cols)
{
	size_t ncols = 0, width[16] = {0}, i;
	char buf[256];
	json_t *row;

	while (cols[ncols] && ncols < 16)
		ncols++;
	for (size_t c = 0; c < ncols; c++)
		width[c] = strlen(cols[c]);
	json_array_foreach ((json_t *)rows, i, row)
		for (size_t c = 0; c < ncols; c++) {
			cell(json_object_get(row, cols[c]), buf, sizeof(buf));
			if (strlen(buf) > width[c])
				width[c] = strlen(buf) > 60 ? 60 : strlen(buf);
		}
	for (size_t c = 0; c < ncols; c++)
		printf("%-*s%s", (int)width[c], cols[c], c + 1 < ncols ? "  " : "\n");
	json_array_foreach ((json_t *)rows, i, row)
		for (size_t c = 0; c < ncols; c++) {
			cell(json_object_get(row, cols[c]), buf, sizeof(buf));
			printf("%-*.*s%s", (int)width[c], (int)width[c], buf,
			       c + 1 < ncols ? "  " : "\n");
		}
}

/* GET path and print its list under key. */
static int list(const char *path, const char *key, const char *const *cols)
{
	json_t *reply;
	int status = call("GET", path, NULL, true, &reply);

	if (status != 200)
		return failed(status, reply);
	if (opt.json) {
		char *t = json_dumps(json_object_get(reply, key), JSON_INDENT(2));

		puts(t ? t : "[]");
		free(t);
	} else {
		table(json_object_get(reply, key), cols);
	}
	json_decref(reply);
	return 0;
}

/* A call whose answer is shown with --json or summarised in one line. */
static int act(const char *method, const char *path, json_t *body, const char *done)
{
	json_t *reply;
	int status = call(method, path, body, true, &reply);

	json_decref(body);
	if (status < 200 || status > 299)
		return failed(status, reply);
	if (opt.json && reply) {
		char *t = json_dumps(reply, JSON_INDENT(2));

		puts(t ? t : "{}");
		free(t);
	} else if (!opt.json) {
		puts(done);
	}
	json_decref(reply);
	return 0;
}

static int read_password(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO);
	size_t n;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	if (!fgets(buf, (int)len, stdin))
		buf[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return n ? 0 : -1;
}

static int cmd_login(int argc, char **argv)
{
	char password[1100];
	json_t *body, *reply;
	int status;

	if (argc != 2)
		return usage();
	if (read_password("password: ", password, sizeof(password)) < 0) {
		fprintf(stderr, "vdictl: no password given\n");
		return EXIT_USAGE;
	}
	body = json_pack("{s:s, s:s, s:b}", "username", argv[1], "password", password, "bearer", 1);
	explicit_bzero(password, sizeof(password));
	status = call("POST", "/api/v1/login", body, false, &reply);
	json_decref(body);
	if (status != 200)
		return failed(status, reply);
	if (!json_is_true(json_object_get(json_object_get(reply, "user"), "admin")))
		fprintf(stderr, "vdictl: warning: %s is not an administrator\n", argv[1]);
	if (getenv("VDICTL_TOKEN") ||
	    save_token(json_string_value(json_object_get(reply, "token"))) < 0) {
		/* print it for the caller to keep in VDICTL_TOKEN */
		printf("%s\n", json_string_value(json_object_get(reply, "token")));
	} else {
		char path[4096];

		token_path(path, sizeof(path));
		printf("logged in as %s; token saved in %s\n", argv[1], path);
	}
	json_decref(reply);
	return 0;
}

static int cmd_logout(int argc, char **argv)
{
	char path[4096];
	int r;

	(void)argv;
	if (argc != 1)
		return usage();
	r = act("POST", "/api/v1/logout", NULL, "logged out");
	token_path(path, sizeof(path));
	unlink(path);
	return r;
}

static long parse_num(const char *s, bool *ok)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || !*s)
		*ok = false;
	return v;
}

/* Reports the answer to a pool create or update: the broker's refusal with each of its
 * problems on a line (a template refused names the file and the host), or done and
 * the template's warning when the broker could not check it. Returns the exit status. */
static int pool_written(int status, json_t *reply, const char *id, const char *what)
{
	const char *msg = json_string_value(json_object_get(reply, "error"));
	const char *warning = json_string_value(json_object_get(reply, "template_warning"));

	if (status < 200 || status > 299) {
		if (status < 0 || !msg)
			return failed(status, reply);
		fprintf(stderr, "vdictl: pool '%s' not %s (HTTP %d):\n", id, what, status);
		for (const char *p = msg, *end; *p; p = end + (*end ? 2 : 0)) {
			end = strstr(p, "; template: ");
			if (!end)
				end = p + strlen(p);
			fprintf(stderr, "  %.*s\n", (int)(end - p), p);
		}
		json_decref(reply);
		return EXIT_FAIL;
	}
	if (opt.json) {
		char *t = json_dumps(reply, JSON_INDENT(2));

		puts(t ? t : "{}");
		free(t);
	} else {
		printf("pool %s\n", what);
	}
	if (warning)
		fprintf(stderr, "vdictl: warning: pool '%s': %s\n", id, warning);
	json_decref(reply);
	return 0;
}

/* The template of pool id as stored (a new reference), for an update that changes
 * some of its files: the broker replaces a template whole. NULL when it has none. */
static json_t *stored_template(const char *id)
{
	char path[1024], *esc = escape(id);
	json_t *reply = NULL, *tpl = NULL;

	snprintf(path, sizeof(path), "/api/v1/admin/pools/%s", esc ? esc : "");
	curl_free(esc);
	if (call("GET", path, NULL, true, &reply) == 200 &&
	    json_is_object(json_object_get(reply, "template")))
		tpl = json_deep_copy(json_object_get(reply, "template"));
	json_decref(reply);
	return tpl;
}

/* pools create ID ... (update false) or pools update ID ... (only the fields given). */
static int cmd_pools_write(int argc, char **argv, bool update)
{
	static const struct option longs[] = {
	    {"kind", required_argument, NULL, 'k'},
	    {"source", required_argument, NULL, 's'},
	    {"name", required_argument, NULL, 'n'},
	    {"min", required_argument, NULL, 1},
	    {"max", required_argument, NULL, 2},
	    {"spare", required_argument, NULL, 3},
	    {"memory", required_argument, NULL, 4},
	    {"vcpus", required_argument, NULL, 5},
	    {"disconnect-timeout", required_argument, NULL, 6},
	    {"utc-offset", required_argument, NULL, 7},
	    {"logoff", required_argument, NULL, 8},
	    {"networks", required_argument, NULL, 9},
	    {"windows", required_argument, NULL, 10},
	    {"hosts", required_argument, NULL, 11},
	    {"engine", required_argument, NULL, 12},
	    {"kernel", required_argument, NULL, 13},
	    {"initrd", required_argument, NULL, 14},
	    {"disk", required_argument, NULL, 15},
	    {"cmdline", required_argument, NULL, 16},
	    {"desktop", required_argument, NULL, 17},
	    {"disabled", no_argument, NULL, 18},
	    {NULL, 0, NULL, 0},
	};
	static const char *const int_keys[] = {
	    NULL, "min", "max", "spare", "memory_mib", "vcpus", "disconnect_timeout", "utc_offset"};
	static const char *const str_keys[] = {"logoff_action", "networks", "windows", "hosts"};
	static const char *const tpl_keys[] = {"engine", "kernel", "initrd", "disk", "cmdline"};
	json_t *body = json_object(), *tpl = json_object(), *desktops = json_array();
	const char *vnc_pw = getenv("VDICTL_VNC_PASSWORD");
	bool ok = true;
	int o;

	json_t *reply;
	char path[1024], *esc;
	int status;

	if (argc < 2 || argv[1][0] == '-') {
		json_decref(body);
		json_decref(tpl);
		json_decref(desktops);
		return usage();
	}
	if (!update)
		json_object_set_new(body, "id", json_string(argv[1]));
	optind = 2;
	while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (o == 'k')
			json_object_set_new(body, "kind", json_string(optarg));
		else if (o == 's')
			json_object_set_new(body, "source", json_string(optarg));
		else if (o == 'n')
			json_object_set_new(body, "name", json_string(optarg));
		else if (o >= 1 && o <= 7)
			json_object_set_new(body, int_keys[o],
					    json_integer(parse_num(optarg, &ok)));
		else if (o >= 8 && o <= 11)
			json_object_set_new(body, str_keys[o - 8], json_string(optarg));
		else if (o >= 12 && o <= 16)
			json_object_set_new(tpl, tpl_keys[o - 12], json_string(optarg));
		else if (o == 17) {
			json_t *d = json_pack("{s:s}", "address", optarg);

			if (vnc_pw && vnc_pw[0])
				json_object_set_new(d, "password", json_string(vnc_pw));
			json_array_append_new(desktops, d);
		} else if (o == 18)
			json_object_set_new(body, "enabled", json_false());
		else
			ok = false;
	}
	if (update && (json_object_get(body, "kind") || json_object_get(body, "source") ||
		       json_array_size(desktops)))
		ok = false;
	if (!ok || optind != argc) {
		json_decref(body);
		json_decref(tpl);
		json_decref(desktops);
		return usage();
	}
	if (update && json_object_size(tpl)) {
		json_t *stored = stored_template(argv[1]);

		if (stored) {
			json_object_update(stored, tpl);
			json_decref(tpl);
			tpl = stored;
		}
	}
	if (json_object_size(tpl))
		json_object_set(body, "template", tpl);
	if (json_array_size(desktops))
		json_object_set(body, "desktops", desktops);
	json_decref(tpl);
	json_decref(desktops);
	esc = escape(argv[1]);
	snprintf(path, sizeof(path), "/api/v1/admin/pools/%s", esc ? esc : "");
	curl_free(esc);
	status = call(update ? "PUT" : "POST", update ? path : "/api/v1/admin/pools", body, true,
		      &reply);
	json_decref(body);
	return pool_written(status, reply, argv[1], update ? "updated" : "created");
}

static int cmd_pools(int argc, char **argv)
{
	static const char *const cols[] = {
	    "id", "kind", "source", "enabled", "min", "max", "spare", "disconnect_timeout", NULL};
	char path[1024], *id;
	int r;

	if (argc == 2 && !strcmp(argv[1], "list"))
		return list("/api/v1/admin/pools", "pools", cols);
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return cmd_pools_write(argc - 1, argv + 1, false);
	if (argc >= 2 && !strcmp(argv[1], "update"))
		return cmd_pools_write(argc - 1, argv + 1, true);
	if (argc != 3 || (strcmp(argv[1], "delete") && strcmp(argv[1], "show")))
		return usage();
	id = escape(argv[2]);
	snprintf(path, sizeof(path), "/api/v1/admin/pools/%s", id ? id : "");
	curl_free(id);
	if (!strcmp(argv[1], "delete"))
		return act("DELETE", path, NULL, "pool deleted");
	opt.json = true;
	r = act("GET", path, NULL, "");
	return r;
}

static int cmd_entitlements(int argc, char **argv)
{
	char path[2048], *pool, *kind, *name;
	int r;

	if (argc != 5 || (strcmp(argv[1], "add") && strcmp(argv[1], "remove")))
		return usage();
	pool = escape(argv[2]);
	kind = escape(argv[3]);
	name = escape(argv[4]);
	if (!strcmp(argv[1], "add")) {
		snprintf(path, sizeof(path), "/api/v1/admin/pools/%s/entitlements", pool);
		r = act("POST", path, json_pack("{s:s, s:s}", "kind", argv[3], "name", argv[4]),
			"entitlement added");
	} else {
		snprintf(path, sizeof(path), "/api/v1/admin/pools/%s/entitlements/%s/%s", pool,
			 kind, name);
		r = act("DELETE", path, NULL, "entitlement removed");
	}
	curl_free(pool);
	curl_free(kind);
	curl_free(name);
	return r;
}

static int cmd_hosts(int argc, char **argv)
{
	static const char *const cols[] = {
	    "id", "state", "url", "relay", "last_heartbeat", "mem_free_mib", "desktops", NULL};
	char path[1024], *id;
	int r;

	if (argc == 2 && !strcmp(argv[1], "list"))
		return list("/api/v1/admin/hosts", "hosts", cols);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "add"))
		return act("POST", "/api/v1/admin/hosts",
			   json_pack("{s:s, s:s, s:s}", "id", argv[2], "url", argv[3], "relay",
				     argc == 5 ? argv[4] : ""),
			   "host added");
	if (argc != 3 || strcmp(argv[1], "remove"))
		return usage();
	id = escape(argv[2]);
	snprintf(path, sizeof(path), "/api/v1/admin/hosts/%s", id ? id : "");
	curl_free(id);
	r = act("DELETE", path, NULL, "host removed");
	return r;
}

static int cmd_sessions(int argc, char **argv)
{
	static const char *const cols[] = {"id",    "username",	   "pool_id", "desktop_id",
					   "state", "client_addr", "since",   NULL};
	char path[1024], *id;

	if (argc == 2 && !strcmp(argv[1], "list"))
		return list("/api/v1/admin/sessions", "sessions", cols);
	if (argc == 3 && !strcmp(argv[1], "list") && !strcmp(argv[2], "--all"))
		return list("/api/v1/admin/sessions?all", "sessions", cols);
	if (argc != 3 || (strcmp(argv[1], "disconnect") && strcmp(argv[1], "logoff")))
		return usage();
	id = escape(argv[2]);
	snprintf(path, sizeof(path), "/api/v1/admin/sessions/%s/%s", id ? id : "", argv[1]);
	curl_free(id);
	return act("POST", path, NULL,
		   !strcmp(argv[1], "logoff") ? "session logged off" : "session disconnected");
}

static int cmd_users(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"groups", required_argument, NULL, 'g'},
	    {"display-name", required_argument, NULL, 'd'},
	    {"mail", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const cols[] = {"username", "display_name", "mail", "groups", NULL};
	char path[1024], password[1100], *id;
	json_t *body, *groups;
	int o;

	if (argc == 2 && !strcmp(argv[1], "list"))
		return list("/api/v1/admin/users", "users", cols);
	if (argc == 3 && !strcmp(argv[1], "delete")) {
		id = escape(argv[2]);
		snprintf(path, sizeof(path), "/api/v1/admin/users/%s", id ? id : "");
		curl_free(id);
		return act("DELETE", path, NULL, "user deleted");
	}
	if (argc < 3 || strcmp(argv[1], "add"))
		return usage();
	body = json_pack("{s:s}", "username", argv[2]);
	optind = 3;
	while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (o == 'g') {
			char *copy = strdup(optarg), *save = NULL, *g;

			groups = json_array();
			for (g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save))
				if (*g)
					json_array_append_new(groups, json_string(g));
			json_object_set_new(body, "groups", groups);
			free(copy);
		} else if (o == 'd') {
			json_object_set_new(body, "display_name", json_string(optarg));
		} else if (o == 'm') {
			json_object_set_new(body, "mail", json_string(optarg));
		} else {
			json_decref(body);
			return usage();
		}
	}
	if (optind != argc || read_password("new password: ", password, sizeof(password)) < 0) {
		json_decref(body);
		if (optind == argc)
			fprintf(stderr, "vdictl: no password given\n");
		return EXIT_USAGE;
	}
	json_object_set_new(body, "password", json_string(password));
	explicit_bzero(password, sizeof(password));
	return act("POST", "/api/v1/admin/users", body, "user added");
}

static int cmd_audit(int argc, char **argv)
{
	static const char *const cols[] = {"id",     "time",	    "actor",  "action", "target",
					   "result", "client_addr", "detail", NULL};
	char path[128];
	bool ok = true;
	long limit = 50;

	if (argc == 3 && !strcmp(argv[1], "--limit"))
		limit = parse_num(argv[2], &ok);
	else if (argc != 1)
		return usage();
	if (!ok || limit < 1 || limit > 1000) {
		fprintf(stderr, "vdictl: --limit takes 1 to 1000\n");
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/api/v1/admin/audit?limit=%ld", limit);
	return list(path, "entries", cols);
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"ca", required_argument, NULL, 'C'},
	    {"insecure-localhost", no_argument, NULL, 'I'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} commands[] = {
	    {"login", cmd_login}, {"logout", cmd_logout},
	    {"pools", cmd_pools}, {"entitlements", cmd_entitlements},
	    {"hosts", cmd_hosts}, {"sessions", cmd_sessions},
	    {"users", cmd_users}, {"audit", cmd_audit},
	};
	int o, status = -1;

	opt.url = getenv("VDICTL_URL") ? getenv("VDICTL_URL") : "https://127.0.0.1:9443";
	while ((o = getopt_long(argc, argv, "+u:h", longs, NULL)) != -1) {
		switch (o) {
		case 'u': opt.url = optarg; break;
		case 'C': opt.ca = optarg; break;
		case 'I': opt.insecure = true; break;
		case 'j': opt.json = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return usage();
		}
	}
	if (optind >= argc)
		return usage();
	if (strncmp(opt.url, "https://", 8)) {
		fprintf(stderr, "vdictl: the URL must start with https://\n");
		return EXIT_USAGE;
	}
	if (opt.insecure && !loopback_url(opt.url)) {
		fprintf(stderr, "vdictl: --insecure-localhost only for https://127.0.0.1, [::1] or "
				"localhost\n");
		return EXIT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return EXIT_FAIL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[optind], commands[i].name)) {
			status = commands[i].run(argc - optind, argv + optind);
			break;
		}
	}
	curl_global_cleanup();
	return status < 0 ? usage() : status;
}
