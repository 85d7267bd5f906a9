/* libFuzzer harness for INI configuration (lib/config.c over libinih): the input is a
 * configuration file read by config_load_string() with a table defined here that has
 * every CONFIG_ type (bounded and unbounded strings, negative and positive int ranges,
 * booleans, durations with and without defaults, enums) in two sections plus a required
 * option. Checked: a success leaves every value within its bounds, strings within their
 * length, enums on a choice, the required option set; a failure is -EINVAL with a
 * message "name:line: ..." or "name: ..."; and what config_print() writes for a success
 * loads again (when its lines fit libinih's) to the same values. config_free() clears
 * every string; LeakSanitizer sees any string left behind. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"

struct conf {
	char *name, *path, *secret_less;
	int port, offset, workers;
	bool enabled, debug;
	int timeout, idle, grace;
	int mode, level;
};

static const char *const modes[] = {"off", "on", "auto", NULL};
static const char *const levels[] = {"err", "warn", "info", "debug", NULL};

#define O(f) offsetof(struct conf, f)
static const struct config_option opts[] = {
    {"main", "name", CONFIG_STRING, O(name), "vdi", 0, 16, NULL, true, false, "short name"},
    {"main", "path", CONFIG_STRING, O(path), NULL, 0, 0, NULL, false, false, "no bound"},
    {"main", "port", CONFIG_INT, O(port), "8443", 1, 65535, NULL, false, false, NULL},
    {"main", "offset", CONFIG_INT, O(offset), "0", -1000, 1000, NULL, false, false, NULL},
    {"main", "enabled", CONFIG_BOOL, O(enabled), "yes", 0, 0, NULL, false, false, NULL},
    {"main", "mode", CONFIG_ENUM, O(mode), "auto", 0, 0, modes, false, false, NULL},
    {"limits", "timeout", CONFIG_DURATION, O(timeout), "15m", 1, 86400, NULL, false, false, NULL},
    {"limits", "idle", CONFIG_DURATION, O(idle), NULL, 0, 30 * 86400, NULL, false, false, NULL},
    {"limits", "grace", CONFIG_DURATION, O(grace), "0", -3600, 3600, NULL, false, false, NULL},
    {"limits", "workers", CONFIG_INT, O(workers), NULL, 0, 2147483647, NULL, false, false, NULL},
    {"limits", "debug", CONFIG_BOOL, O(debug), NULL, 0, 0, NULL, false, false, NULL},
    {"limits", "level", CONFIG_ENUM, O(level), NULL, 0, 0, levels, false, false, NULL},
    {"limits", "note", CONFIG_STRING, O(secret_less), "", 0, 40, NULL, false, false, NULL},
    CONFIG_END,
};
#define NAME "fuzz.conf"

static void check_values(const struct conf *c)
{
	if (c->name && strlen(c->name) > 16)
		abort();
	if (c->secret_less && strlen(c->secret_less) > 40)
		abort();
	if (c->port < 1 || c->port > 65535 || c->offset < -1000 || c->offset > 1000 ||
	    c->workers < 0 || c->timeout < 1 || c->timeout > 86400 || c->idle < 0 ||
	    c->idle > 30 * 86400 || c->grace < -3600 || c->grace > 3600)
		abort();
	if (c->mode < 0 || c->mode > 2 || c->level < 0 || c->level > 3)
		abort();
	if (*(const unsigned char *)&c->enabled > 1 || *(const unsigned char *)&c->debug > 1)
		abort();
	if (!c->name)
		abort(); /* required (and defaulted) */
}

static bool same_string(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

static void check_err(const char *err)
{
	size_t n = strlen(NAME);

	if (strncmp(err, NAME, n) || err[n] != ':' || !err[n + 1])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c, again;
	char err[256], *text, *printed = NULL;
	size_t plen = 0;
	FILE *out;
	int r;

	text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&c, 0, sizeof(c));
	err[0] = '\0';
	r = config_load_string(NAME, text, opts, &c, err, sizeof(err));
	if (r == 0) {
		check_values(&c);
		out = open_memstream(&printed, &plen);
		if (!out)
			abort();
		config_print(out, opts, &c);
		fclose(out);
		/* libinih's lines hold 200 bytes: only a printout within that must load. */
		bool fits = true;
		for (char *p = printed, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl)
				break;
			if (nl - p > 150)
				fits = false;
		}
		memset(&again, 0, sizeof(again));
		r = config_load_string(NAME, printed, opts, &again, err, sizeof(err));
		if (fits &&
		    (r != 0 || !same_string(c.name, again.name) ||
		     !same_string(c.path, again.path) ||
		     !same_string(c.secret_less, again.secret_less) || c.port != again.port ||
		     c.offset != again.offset || c.workers != again.workers ||
		     c.enabled != again.enabled || c.debug != again.debug ||
		     c.timeout != again.timeout || c.idle != again.idle || c.grace != again.grace ||
		     c.mode != again.mode || c.level != again.level))
			abort();
		config_free(opts, &again);
		free(printed);
	} else if (r != -EINVAL) {
		abort();
	} else {
		check_err(err);
	}
	config_free(opts, &c);
	if (c.name || c.path || c.secret_less)
		abort();
	free(text);
	return 0;
}
