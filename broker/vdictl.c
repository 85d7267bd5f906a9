/* vdictl: the administrator's command line over the broker's HTTPS API (admin role):
 * log in once (a bearer token kept in ~/.config/vdi/token or $VDICTL_TOKEN, the CA the
 * login trusted in ~/.config/vdi/ca.pem), then list and change pools, entitlements,
 * hosts, sessions, local users, and read the audit log. Tables and key/value views for
 * people (times as "3 min ago"), --json for scripts (the API's raw values). Exit 0 ok,
 * 1 failure, 2 usage. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAIL  1
#define EXIT_USAGE 2

/* The largest CA file login keeps. */
#define CA_MAX_BYTES (1024 * 1024)

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
    "  hosts drain ID | resume ID      place no new desktops on it / again\n"
    "  hosts stop-desktops ID          stop every desktop the host runs\n"
    "  sessions list [--all] | disconnect ID | logoff ID\n"
    "  users list | delete NAME | sessions NAME | revoke NAME\n"
    "  users add NAME [--groups G1,G2] [--display-name TEXT] [--mail ADDR]   (password as "
    "for login)\n"
    "  audit [--limit N]\n"
    "URL: -u, $VDICTL_URL or https://127.0.0.1:9443. CA: --ca, $VDICTL_CA or the one\n"
    "saved by login. Token: $VDICTL_TOKEN or ~/.config/vdi/token.\n";

static struct {
	const char *url, *ca;
	bool insecure, json;
} opt = {.url = NULL};

struct buffer {
	char *data;
	size_t len;
};

/* A table column: the key of each row and its heading. */
struct column {
	const char *key, *heading;
};

/* Keys whose values are times (seconds since the epoch). */
static const char *const time_keys[] = {"time",	      "since",	   "created",	 "last_heartbeat",
					"last_login", "last_seen", "expires_at", NULL};

/* Prints the usage lines of command cmd ("pools", "pools create"; NULL: all) to f. */
static void print_usage(FILE *f, const char *cmd)
{
	const char *line = usage_text, *next;
	char word[64];
	bool in = false;

	if (!cmd) {
		fputs(usage_text, f);
		return;
	}
	/* "pools create" -> lines of "pools" */
	snprintf(word, sizeof(word), "%.*s", (int)strcspn(cmd, " "), cmd);
	fprintf(f, "usage: vdictl [options] ...\n");
	for (; *line; line = next) {
		size_t n = strcspn(line, "\n");

		next = line + n + (line[n] == '\n');
		if (!strncmp(line, "        ", 8))
			; /* a continuation line: as the one before */
		else
			in = !strncmp(line, "  ", 2) && !strncmp(line + 2, word, strlen(word)) &&
			     (line[2 + strlen(word)] == ' ' || line[2 + strlen(word)] == '\n');
		if (in)
			fprintf(f, "%.*s\n", (int)n, line);
	}
}

/* A usage error of command cmd (NULL: vdictl itself): one line naming what was wrong
 * and where help is. Returns the exit status. */
static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vdictl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see vdictl %s%s--help\n", cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

/* getopt_long()'s refusal o ('?' unknown, ':' value missing) of the last option read. */
static int option_error(const char *cmd, int o, char **argv)
{
	const char *arg = argv[optind - 1];
	char shortopt[3] = {'-', (char)optopt, '\0'};

	if (!arg || strncmp(arg, "--", 2))
		arg = shortopt; /* a short option, perhaps inside a cluster */
	if (o == ':')
		return usage_error(cmd, "option '%s' needs a value", arg);
	return usage_error(cmd, "unknown option '%s'", arg);
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

/* ~/.config/vdi/name, where login keeps what it saves. */
static void config_path(const char *name, char *out, size_t len)
{
	const char *home = getenv("HOME");

	snprintf(out, len, "%s/.config/vdi/%s", home ? home : ".", name);
}

/* The saved token, or NULL. Returns a new string. */
static char *load_token(void)
{
	const char *env = getenv("VDICTL_TOKEN");
	char path[4096], buf[256];
	FILE *f;

	if (env && env[0])
		return strdup(env);
	config_path("token", path, sizeof(path));
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

/* Writes data to ~/.config/vdi/name, readable by its owner only (0600), replacing it
 * whole (a new file renamed over the old one). Returns 0 or -1 (reported). */
static int save_private(const char *name, const char *data, size_t len)
{
	char path[4096], tmp[4200];
	ssize_t n = 0;
	int fd;

	config_path(name, path, sizeof(path));
	for (char *p = path + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0700); /* each parent, as mkdir -p */
		*p = '/';
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto out_fail;
	for (size_t off = 0; off < len; off += (size_t)n) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			n = 0;
		else if (n <= 0)
			break;
	}
	if (n < 0 || fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		goto out_fail;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		goto out_fail;
	}
	return 0;
out_fail:
	fprintf(stderr, "vdictl: %s: %s\n", path, strerror(errno));
	return -1;
}

static int save_token(const char *token)
{
	char line[300];
	int n = snprintf(line, sizeof(line), "%s\n", token ? token : "");
	int r = n > 0 && (size_t)n < sizeof(line) ? save_private("token", line, (size_t)n) : -1;

	explicit_bzero(line, sizeof(line));
	return r;
}

/* The CA to trust: --ca, else $VDICTL_CA, else the one login saved (if any). */
static void choose_ca(void)
{
	static char saved[4096];
	const char *env = getenv("VDICTL_CA");

	if (opt.ca)
		return;
	if (env && env[0]) {
		opt.ca = env;
		return;
	}
	config_path("ca.pem", saved, sizeof(saved));
	if (access(saved, R_OK) == 0)
		opt.ca = saved;
}

/* Keeps a copy of the CA file in use for the next commands. Returns 0, 1 when there
 * was nothing to keep, or -1 (reported). */
static int save_ca(void)
{
	char saved[4096], *pem;
	size_t len;
	FILE *f;
	int r;

	config_path("ca.pem", saved, sizeof(saved));
	if (!opt.ca || opt.insecure || !strcmp(opt.ca, saved))
		return 1;
	f = fopen(opt.ca, "re");
	pem = malloc(CA_MAX_BYTES + 1);
	if (!f || !pem) {
		fprintf(stderr, "vdictl: %s: %s\n", opt.ca, strerror(errno));
		if (f)
			fclose(f);
		free(pem);
		return -1;
	}
	len = fread(pem, 1, CA_MAX_BYTES + 1, f);
	fclose(f);
	pem[len < CA_MAX_BYTES ? len : CA_MAX_BYTES] = '\0';
	if (len > CA_MAX_BYTES || !strstr(pem, "-----BEGIN CERTIFICATE-----")) {
		fprintf(stderr, "vdictl: %s: not a PEM certificate file (at most %d bytes)\n",
			opt.ca, CA_MAX_BYTES);
		free(pem);
		return -1;
	}
	r = save_private("ca.pem", pem, len);
	free(pem);
	return r;
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
			    ? " (give the broker's certificate with --ca or $VDICTL_CA, or "
			      "--insecure-localhost)"
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

static bool is_time_key(const char *key)
{
	for (size_t i = 0; key && time_keys[i]; i++)
		if (!strcmp(key, time_keys[i]))
			return true;
	return false;
}

/* A time for people: "12 s ago", "3 min ago", "5 h ago" within a day, else ISO 8601
 * in UTC ("2026-11-30T08:15Z"); "never" for 0. */
static void format_time(int64_t t, char *out, size_t len)
{
	int64_t ago = (int64_t)time(NULL) - t;
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0)
		snprintf(out, len, "never");
	else if (ago >= -5 && ago < 60)
		snprintf(out, len, "%lld s ago", (long long)(ago < 0 ? 0 : ago));
	else if (ago >= 60 && ago < 3600)
		snprintf(out, len, "%lld min ago", (long long)(ago / 60));
	else if (ago >= 3600 && ago < 86400)
		snprintf(out, len, "%lld h ago", (long long)(ago / 3600));
	else if (gmtime_r(&tt, &tm) && strftime(out, len, "%Y-%m-%dT%H:%MZ", &tm))
		;
	else
		snprintf(out, len, "%lld", (long long)t);
}

/* The value v of key as one line of text for a table or a key/value view. */
static void cell(const char *key, const json_t *v, char *out, size_t len)
{
	if (!v || json_is_null(v)) {
		snprintf(out, len, "-");
	} else if (json_is_string(v)) {
		snprintf(out, len, "%s", json_string_length(v) ? json_string_value(v) : "-");
	} else if (json_is_integer(v) && is_time_key(key)) {
		format_time((int64_t)json_integer_value(v), out, len);
	} else if (json_is_integer(v)) {
		snprintf(out, len, "%lld", (long long)json_integer_value(v));
	} else if (json_is_boolean(v)) {
		snprintf(out, len, "%s", json_is_true(v) ? "yes" : "no");
	} else if (json_is_array(v) && json_array_size(v) == 0) {
		snprintf(out, len, "-");
	} else if (json_is_array(v)) {
		size_t i, used = 0;
		json_t *item;

		out[0] = '\0';
		json_array_foreach ((json_t *)v, i, item) {
			char one[256];

			cell(NULL, item, one, sizeof(one));
			if (used < len)
				used += (size_t)snprintf(out + used, len - used, "%s%s",
							 i ? "," : "", one);
		}
	} else {
		char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(out, len, "%s", t ? t : "?");
		free(t);
	}
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
}

/* Prints rows (an array of objects) as a table of the given columns. */
static void table(const json_t *rows, const struct column *cols)
{
	size_t ncols = 0, width[16] = {0}, i;
	char buf[256];
	json_t *row;

	while (cols[ncols].key && ncols < 16)
		ncols++;
	for (size_t c = 0; c < ncols; c++)
		width[c] = strlen(cols[c].heading);
	json_array_foreach ((json_t *)rows, i, row)
		for (size_t c = 0; c < ncols; c++) {
			cell(cols[c].key, json_object_get(row, cols[c].key), buf, sizeof(buf));
			if (strlen(buf) > width[c])
				width[c] = strlen(buf) > 60 ? 60 : strlen(buf);
		}
	for (size_t c = 0; c < ncols; c++)
		printf("%-*s%s", (int)width[c], cols[c].heading, c + 1 < ncols ? "  " : "\n");
	json_array_foreach ((json_t *)rows, i, row)
		for (size_t c = 0; c < ncols; c++) {
			cell(cols[c].key, json_object_get(row, cols[c].key), buf, sizeof(buf));
			printf("%-*.*s%s", (int)width[c], (int)width[c], buf,
			       c + 1 < ncols ? "  " : "\n");
		}
}

static void print_json(const json_t *v)
{
	char *t = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	puts(t ? t : "null");
	free(t);
}

/* GET path and print its list under key as a table, each row first passed to fix (if
 * any); with --json the API's answer as it is. */
static int list(const char *path, const char *key, const struct column *cols,
		void (*fix)(json_t *row))
{
	json_t *reply, *rows, *row;
	int status = call("GET", path, NULL, true, &reply);
	size_t i;

	if (status != 200)
		return failed(status, reply);
	rows = json_object_get(reply, key);
	if (opt.json) {
		print_json(reply);
	} else {
		json_array_foreach (rows, i, row)
			if (fix && json_is_object(row))
				fix(row);
		table(rows, cols);
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
	if (opt.json && reply)
		print_json(reply);
	else if (!opt.json)
		puts(done);
	json_decref(reply);
	return 0;
}

/* One record as "key: value" lines, nested objects indented under their key; arrays of
 * objects go to their own table (with cols) after the scalar fields. */
static void show_record(const json_t *rec, const char *table_key, const struct column *cols)
{
	size_t width = 0;
	const char *key;
	char buf[1024];
	json_t *v;

	json_object_foreach ((json_t *)rec, key, v)
		if (strlen(key) > width)
			width = strlen(key);
	json_object_foreach ((json_t *)rec, key, v) {
		if (table_key && !strcmp(key, table_key))
			continue;
		if (json_is_object(v)) {
			const char *k;
			json_t *inner;

			printf("%s:%s\n", key, json_object_size(v) ? "" : " -");
			json_object_foreach (v, k, inner) {
				cell(k, inner, buf, sizeof(buf));
				printf("  %s: %s\n", k, buf);
			}
			continue;
		}
		if (json_is_array(v) && json_is_object(json_array_get(v, 0))) {
			/* entitlements and the like: "group staff, user bob" */
			size_t i;
			json_t *item;

			printf("%s:%*s ", key, (int)(width - strlen(key)), "");
			json_array_foreach (v, i, item) {
				const char *k;
				json_t *part;
				bool first = true;

				printf("%s", i ? ", " : "");
				json_object_foreach (item, k, part) {
					cell(k, part, buf, sizeof(buf));
					printf("%s%s", first ? "" : " ", buf);
					first = false;
				}
			}
			printf("\n");
			continue;
		}
		cell(key, v, buf, sizeof(buf));
		printf("%s:%*s %s\n", key, (int)(width - strlen(key)), "", buf);
	}
	if (table_key && json_array_size(json_object_get(rec, table_key))) {
		printf("\n%s:\n", table_key);
		table(json_object_get(rec, table_key), cols);
	} else if (table_key) {
		printf("%s:%*s -\n", table_key, (int)(width - strlen(table_key)), "");
	}
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
	char password[1100], path[4096];
	json_t *body, *reply;
	int status, ca;

	if (argc != 2)
		return usage_error("login",
				   argc < 2 ? "missing the user name" : "unexpected argument '%s'",
				   argc < 2 ? "" : argv[2]);
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
	ca = save_ca();
	if (getenv("VDICTL_TOKEN") ||
	    save_token(json_string_value(json_object_get(reply, "token"))) < 0) {
		/* print it for the caller to keep in VDICTL_TOKEN */
		printf("%s\n", json_string_value(json_object_get(reply, "token")));
	} else {
		config_path("token", path, sizeof(path));
		printf("logged in as %s; token saved in %s\n", argv[1], path);
		if (ca == 0) {
			config_path("ca.pem", path, sizeof(path));
			printf("the broker's CA (%s) saved in %s\n", opt.ca, path);
		}
	}
	json_decref(reply);
	return 0;
}

static int cmd_logout(int argc, char **argv)
{
	char path[4096];
	int r;

	if (argc != 1)
		return usage_error("logout", "unexpected argument '%s'", argv[1]);
	r = act("POST", "/api/v1/logout", NULL, "logged out");
	config_path("token", path, sizeof(path));
	unlink(path);
	return r;
}

static long parse_num(const char *s, bool *ok)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*end || !*s || errno)
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
	if (opt.json)
		print_json(reply);
	else
		printf("pool %s\n", what);
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
	const char *cmd = update ? "pools update" : "pools create";
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
	json_t *body, *tpl, *desktops;
	const char *vnc_pw = getenv("VDICTL_VNC_PASSWORD");
	int o, index, r = EXIT_USAGE;

	json_t *reply = NULL;
	char path[1024], *esc;
	int status;

	if (argc < 2 || argv[1][0] == '-')
		return usage_error(
		    cmd, argc < 2 ? "missing the pool id" : "the pool id comes first, not '%s'",
		    argc < 2 ? "" : argv[1]);
	body = update ? json_object() : json_pack("{s:s}", "id", argv[1]);
	tpl = json_object();
	desktops = json_array();
	optind = 2;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":", longs, &index)) != -1) {
		bool ok = true;
		long n;

		if (o == '?' || o == ':') {
			option_error(cmd, o, argv);
			goto out;
		} else if (o == 'k') {
			json_object_set_new(body, "kind", json_string(optarg));
		} else if (o == 's') {
			json_object_set_new(body, "source", json_string(optarg));
		} else if (o == 'n') {
			json_object_set_new(body, "name", json_string(optarg));
		} else if (o >= 1 && o <= 7) {
			n = parse_num(optarg, &ok);
			if (!ok) {
				usage_error(cmd, "--%s takes a number, not '%s'", longs[index].name,
					    optarg);
				goto out;
			}
			json_object_set_new(body, int_keys[o], json_integer(n));
		} else if (o >= 8 && o <= 11) {
			json_object_set_new(body, str_keys[o - 8], json_string(optarg));
		} else if (o >= 12 && o <= 16) {
			json_object_set_new(tpl, tpl_keys[o - 12], json_string(optarg));
		} else if (o == 17) {
			json_t *d = json_pack("{s:s}", "address", optarg);

			if (vnc_pw && vnc_pw[0])
				json_object_set_new(d, "password", json_string(vnc_pw));
			json_array_append_new(desktops, d);
		} else if (o == 18) {
			json_object_set_new(body, "enabled", json_false());
		}
	}
	if (optind != argc) {
		usage_error(cmd, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (update && (json_object_get(body, "kind") || json_object_get(body, "source") ||
		       json_array_size(desktops))) {
		usage_error(cmd, "--kind, --source and --desktop cannot change");
		goto out;
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
	esc = escape(argv[1]);
	snprintf(path, sizeof(path), "/api/v1/admin/pools/%s", esc ? esc : "");
	curl_free(esc);
	status = call(update ? "PUT" : "POST", update ? path : "/api/v1/admin/pools", body, true,
		      &reply);
	r = pool_written(status, reply, argv[1], update ? "updated" : "created");
out:
	json_decref(body);
	json_decref(tpl);
	json_decref(desktops);
	return r;
}

/* pools list: the state column is the pool's health ("ok", "disabled", "unavailable",
 * "degraded"). */
static void pool_row(json_t *row)
{
	const char *state =
	    json_string_value(json_object_get(json_object_get(row, "health"), "state"));

	if (state)
		json_object_set_new(row, "state", json_string(state));
}

/* A pool's desktops in `pools show`. */
static const struct column desktop_cols[] = {
    {"id", "id"},	    {"life", "life"},	{"state", "state"},   {"host_id", "host"},
    {"address", "address"}, {"owner", "owner"}, {"in_use", "in use"}, {"since", "since"},
    {"failure", "failure"}, {NULL, NULL},
};

static int pool_show(const char *path)
{
	json_t *reply;
	int status = call("GET", path, NULL, true, &reply);

	if (status != 200)
		return failed(status, reply);
	if (opt.json)
		print_json(reply);
	else
		show_record(reply, "desktops", desktop_cols);
	json_decref(reply);
	return 0;
}

static int cmd_pools(int argc, char **argv)
{
	static const struct column cols[] = {
	    {"id", "id"},
	    {"state", "state"},
	    {"kind", "kind"},
	    {"source", "source"},
	    {"desktops_ready", "ready"},
	    {"desktops_in_use", "in use"},
	    {"desktops_failed", "failed"},
	    {"min", "min"},
	    {"max", "max"},
	    {"spare", "spare"},
	    {NULL, NULL},
	};
	char path[1024], cmd[64], *id;

	if (argc < 2)
		return usage_error("pools",
				   "missing a subcommand (list, show, create, update, delete)");
	if (!strcmp(argv[1], "create"))
		return cmd_pools_write(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "update"))
		return cmd_pools_write(argc - 1, argv + 1, true);
	if (strcmp(argv[1], "list") && strcmp(argv[1], "show") && strcmp(argv[1], "delete"))
		return usage_error("pools", "unknown subcommand '%s'", argv[1]);
	snprintf(cmd, sizeof(cmd), "pools %s", argv[1]);
	if (!strcmp(argv[1], "list")) {
		if (argc != 2)
			return usage_error(cmd, "unexpected argument '%s'", argv[2]);
		return list("/api/v1/admin/pools", "pools", cols, pool_row);
	}
	if (argc != 3)
		return usage_error(cmd,
				   argc < 3 ? "missing the pool id" : "unexpected argument '%s'",
				   argc < 3 ? "" : argv[3]);
	id = escape(argv[2]);
	snprintf(path, sizeof(path), "/api/v1/admin/pools/%s", id ? id : "");
	curl_free(id);
	if (!strcmp(argv[1], "delete"))
		return act("DELETE", path, NULL, "pool deleted");
	return pool_show(path);
}

static int cmd_entitlements(int argc, char **argv)
{
	char path[2048], cmd[64], *pool, *kind, *name;
	int r;

	if (argc < 2)
		return usage_error("entitlements", "missing a subcommand (add, remove)");
	if (strcmp(argv[1], "add") && strcmp(argv[1], "remove"))
		return usage_error("entitlements", "unknown subcommand '%s'", argv[1]);
	snprintf(cmd, sizeof(cmd), "entitlements %s", argv[1]);
	if (argc != 5)
		return usage_error(
		    cmd, argc < 5 ? "takes POOL user|group NAME" : "unexpected argument '%s'",
		    argc < 5 ? "" : argv[5]);
	if (strcmp(argv[3], "user") && strcmp(argv[3], "group"))
		return usage_error(cmd, "'%s' is neither user nor group", argv[3]);
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

/* hosts list: the state column says "up, draining" for a draining host. */
static void host_row(json_t *row)
{
	char state[64];

	if (json_is_true(json_object_get(row, "draining"))) {
		snprintf(state, sizeof(state), "%s, draining",
			 json_string_value(json_object_get(row, "state"))
			     ? json_string_value(json_object_get(row, "state"))
			     : "-");
		json_object_set_new(row, "state", json_string(state));
	}
}

static int cmd_hosts(int argc, char **argv)
{
	static const struct column cols[] = {
	    {"id", "id"},
	    {"state", "state"},
	    {"url", "url"},
	    {"relay", "relay"},
	    {"last_heartbeat", "last heartbeat"},
	    {"mem_free_mib", "mem free MiB"},
	    {"desktops", "desktops"},
	    {NULL, NULL},
	};
	static const struct {
		const char *sub, *method, *action, *done;
	} actions[] = {
	    {"remove", "DELETE", NULL, "host removed"},
	    {"drain", "POST", "drain", "host draining: no new desktops are placed on it"},
	    {"resume", "POST", "resume", "host resumed: new desktops may be placed on it"},
	    {"stop-desktops", "POST", "stop-desktops", "the host's desktops are being stopped"},
	};
	char path[1024], cmd[64], *id;

	if (argc < 2)
		return usage_error("hosts", "missing a subcommand (list, add, remove, drain, "
					    "resume, stop-desktops)");
	snprintf(cmd, sizeof(cmd), "hosts %s", argv[1]);
	if (!strcmp(argv[1], "list")) {
		if (argc != 2)
			return usage_error(cmd, "unexpected argument '%s'", argv[2]);
		return list("/api/v1/admin/hosts", "hosts", cols, host_row);
	}
	if (!strcmp(argv[1], "add")) {
		if (argc < 4 || argc > 5)
			return usage_error(
			    cmd, argc < 4 ? "takes ID URL [RELAY]" : "unexpected argument '%s'",
			    argc < 4 ? "" : argv[5]);
		return act("POST", "/api/v1/admin/hosts",
			   json_pack("{s:s, s:s, s:s}", "id", argv[2], "url", argv[3], "relay",
				     argc == 5 ? argv[4] : ""),
			   "host added");
	}
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(argv[1], actions[i].sub))
			continue;
		if (argc != 3)
			return usage_error(
			    cmd, argc < 3 ? "missing the host id" : "unexpected argument '%s'",
			    argc < 3 ? "" : argv[3]);
		id = escape(argv[2]);
		snprintf(path, sizeof(path), "/api/v1/admin/hosts/%s%s%s", id ? id : "",
			 actions[i].action ? "/" : "", actions[i].action ? actions[i].action : "");
		curl_free(id);
		return act(actions[i].method, path, NULL, actions[i].done);
	}
	return usage_error("hosts", "unknown subcommand '%s'", argv[1]);
}

static int cmd_sessions(int argc, char **argv)
{
	static const struct column cols[] = {
	    {"id", "id"},	 {"username", "user"},
	    {"pool_id", "pool"}, {"desktop_id", "desktop"},
	    {"state", "state"},	 {"client_addr", "client"},
	    {"since", "since"},	 {NULL, NULL},
	};
	char path[1024], cmd[64], *id;

	if (argc < 2)
		return usage_error("sessions", "missing a subcommand (list, disconnect, logoff)");
	snprintf(cmd, sizeof(cmd), "sessions %s", argv[1]);
	if (!strcmp(argv[1], "list")) {
		if (argc == 2)
			return list("/api/v1/admin/sessions", "sessions", cols, NULL);
		if (argc == 3 && !strcmp(argv[2], "--all"))
			return list("/api/v1/admin/sessions?all", "sessions", cols, NULL);
		return usage_error(cmd, "%s '%s'",
				   argv[2][0] == '-' ? "unknown option" : "unexpected argument",
				   argc == 3 ? argv[2] : argv[3]);
	}
	if (strcmp(argv[1], "disconnect") && strcmp(argv[1], "logoff"))
		return usage_error("sessions", "unknown subcommand '%s'", argv[1]);
	if (argc != 3)
		return usage_error(cmd,
				   argc < 3 ? "missing the session id" : "unexpected argument '%s'",
				   argc < 3 ? "" : argv[3]);
	id = escape(argv[2]);
	snprintf(path, sizeof(path), "/api/v1/admin/sessions/%s/%s", id ? id : "", argv[1]);
	curl_free(id);
	return act("POST", path, NULL,
		   !strcmp(argv[1], "logoff") ? "session logged off" : "session disconnected");
}

static int cmd_users_add(int argc, char **argv)
{
	static const char cmd[] = "users add";
	static const struct option longs[] = {
	    {"groups", required_argument, NULL, 'g'},
	    {"display-name", required_argument, NULL, 'd'},
	    {"mail", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	char password[1100];
	json_t *body, *groups;
	int o;

	if (argc < 2 || argv[1][0] == '-')
		return usage_error(
		    cmd, argc < 2 ? "missing the user name" : "the user name comes first, not '%s'",
		    argc < 2 ? "" : argv[1]);
	body = json_pack("{s:s}", "username", argv[1]);
	optind = 2;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":", longs, NULL)) != -1) {
		if (o == 'g') {
			char *copy = strdup(optarg), *save = NULL, *g;

			groups = json_array();
			for (g = copy ? strtok_r(copy, ",", &save) : NULL; g;
			     g = strtok_r(NULL, ",", &save))
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
			return option_error(cmd, o, argv);
		}
	}
	if (optind != argc) {
		json_decref(body);
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	}
	if (read_password("new password: ", password, sizeof(password)) < 0) {
		json_decref(body);
		fprintf(stderr, "vdictl: no password given\n");
		return EXIT_USAGE;
	}
	json_object_set_new(body, "password", json_string(password));
	explicit_bzero(password, sizeof(password));
	return act("POST", "/api/v1/admin/users", body, "user added");
}

/* A user's web sessions in `users sessions NAME`. */
static const struct column websession_cols[] = {
    {"id", "id"},
    {"client_addr", "client"},
    {"bearer", "bearer"},
    {"admin", "admin"},
    {"created", "created"},
    {"last_seen", "last seen"},
    {"expires_at", "expires"},
    {NULL, NULL},
};

static int cmd_users(int argc, char **argv)
{
	static const struct column cols[] = {
	    {"username", "user"}, {"source", "source"}, {"display_name", "name"},
	    {"mail", "mail"},	  {"groups", "groups"}, {"last_login", "last login"},
	    {NULL, NULL},
	};
	char path[1024], *id;

	if (argc < 2)
		return usage_error("users",
				   "missing a subcommand (list, add, delete, sessions, revoke)");
	if (!strcmp(argv[1], "add"))
		return cmd_users_add(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list")) {
		if (argc != 2)
			return usage_error("users list", "unexpected argument '%s'", argv[2]);
		return list("/api/v1/admin/users", "users", cols, NULL);
	}
	if (strcmp(argv[1], "delete") && strcmp(argv[1], "sessions") && strcmp(argv[1], "revoke"))
		return usage_error("users", "unknown subcommand '%s'", argv[1]);
	if (argc != 3) {
		snprintf(path, sizeof(path), "users %s", argv[1]);
		return usage_error(path,
				   argc < 3 ? "missing the user name" : "unexpected argument '%s'",
				   argc < 3 ? "" : argv[3]);
	}
	id = escape(argv[2]);
	snprintf(path, sizeof(path), "/api/v1/admin/users/%s%s", id ? id : "",
		 strcmp(argv[1], "delete") ? "/web-sessions" : "");
	curl_free(id);
	if (!strcmp(argv[1], "sessions"))
		return list(path, "web_sessions", websession_cols, NULL);
	return act("DELETE", path, NULL,
		   strcmp(argv[1], "delete") ? "web sessions revoked" : "user deleted");
}

static int cmd_audit(int argc, char **argv)
{
	static const struct column cols[] = {
	    {"id", "id"},
	    {"time", "time"},
	    {"actor", "actor"},
	    {"action", "action"},
	    {"target", "target"},
	    {"result", "result"},
	    {"client_addr", "client"},
	    {"detail", "detail"},
	    {NULL, NULL},
	};
	char path[128];
	bool ok = true;
	long limit = 50;

	if (argc == 3 && !strcmp(argv[1], "--limit"))
		limit = parse_num(argv[2], &ok);
	else if (argc == 2 && !strcmp(argv[1], "--limit"))
		return usage_error("audit", "option '--limit' needs a value");
	else if (argc != 1)
		return usage_error("audit", "%s '%s'",
				   argv[1][0] == '-' ? "unknown option" : "unexpected argument",
				   argv[1][0] == '-' || argc == 2 ? argv[1] : argv[3]);
	if (!ok || limit < 1 || limit > 1000)
		return usage_error("audit", "--limit takes 1 to 1000, not '%s'", argv[2]);
	snprintf(path, sizeof(path), "/api/v1/admin/audit?limit=%ld", limit);
	return list(path, "entries", cols, NULL);
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
	size_t which;

	opt.url = getenv("VDICTL_URL") ? getenv("VDICTL_URL") : "https://127.0.0.1:9443";
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:u:h", longs, NULL)) != -1) {
		switch (o) {
		case 'u': opt.url = optarg; break;
		case 'C': opt.ca = optarg; break;
		case 'I': opt.insecure = true; break;
		case 'j': opt.json = true; break;
		case 'h': print_usage(stdout, NULL); return 0;
		default: return option_error(NULL, o, argv);
		}
	}
	if (optind >= argc)
		return usage_error(NULL, "missing a command");
	for (which = 0; which < sizeof(commands) / sizeof(commands[0]); which++)
		if (!strcmp(argv[optind], commands[which].name))
			break;
	if (which == sizeof(commands) / sizeof(commands[0]))
		return usage_error(NULL, "unknown command '%s'", argv[optind]);
	for (int i = optind + 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			print_usage(stdout, argv[optind]);
			return 0;
		}
	}
	if (strncmp(opt.url, "https://", 8)) {
		fprintf(stderr, "vdictl: the URL must start with https://\n");
		return EXIT_USAGE;
	}
	if (opt.insecure && !loopback_url(opt.url)) {
		fprintf(stderr, "vdictl: --insecure-localhost only for https://127.0.0.1, [::1] or "
				"localhost\n");
		return EXIT_USAGE;
	}
	choose_ca();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return EXIT_FAIL;
	status = commands[which].run(argc - optind, argv + optind);
	curl_global_cleanup();
	return status;
}
