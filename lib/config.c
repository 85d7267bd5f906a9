/* INI configuration over libinih with a table of options. The reader counts lines
 * itself so each message carries the line it is about. */
#include "lib/config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parse_state {
	const char *name;
	const struct config_option *opts;
	void *target;
	bool *seen;
	int line;
	int error_line;
	char *err;
	size_t errlen;
	const char *text; /* config_load_string: read position */
	FILE *file;
};

static void set_error(struct parse_state *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(struct parse_state *st, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (st->error_line)
		return; /* the first error is the one worth reading */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->error_line = line ? line : -1;
	if (line > 0)
		snprintf(st->err, st->errlen, "%s:%d: %s", st->name, line, msg);
	else
		snprintf(st->err, st->errlen, "%s: %s", st->name, msg);
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]))
			return *out = true, 0;
		if (!strcasecmp(v, no[i]))
			return *out = false, 0;
	}
	return -EINVAL;
}

static int parse_integer(const char *v, bool duration, long long *out)
{
	char *end;
	long long n, mult = 1;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end == v || errno)
		return -EINVAL;
	if (duration && *end) {
		switch (*end++) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default: return -EINVAL;
		}
	}
	if (*end)
		return -EINVAL;
	if (__builtin_mul_overflow(n, mult, out))
		return -ERANGE;
	return 0;
}

/* Parses value for opt into target; on failure writes why into why. */
static int set_value(const struct config_option *opt, void *target, const char *value, char *why,
		     size_t whylen)
{
	char *slot = (char *)target + opt->co_offset;
	long long n;

	switch (opt->co_type) {
	case CONFIG_STRING:
		if (opt->co_max > 0 && strlen(value) > (size_t)opt->co_max) {
			snprintf(why, whylen, "longer than %lld characters", opt->co_max);
			return -EINVAL;
		}
		char *copy = strdup(value);
		if (!copy) {
			snprintf(why, whylen, "out of memory");
			return -ENOMEM;
		}
		free(*(char **)slot);
		*(char **)slot = copy;
		return 0;
	case CONFIG_BOOL:
		if (parse_bool(value, (bool *)slot) < 0) {
			snprintf(why, whylen, "'%s' is not a boolean (yes/no)", value);
			return -EINVAL;
		}
		return 0;
	case CONFIG_INT:
	case CONFIG_DURATION:
		if (parse_integer(value, opt->co_type == CONFIG_DURATION, &n) < 0) {
			snprintf(why, whylen, "'%s' is not %s", value,
				 opt->co_type == CONFIG_DURATION ? "a duration (e.g. 30s, 15m, 2h)"
								 : "an integer");
			return -EINVAL;
		}
		if (n < opt->co_min || n > opt->co_max) {
			snprintf(why, whylen, "%lld is out of range [%lld, %lld]", n, opt->co_min,
				 opt->co_max);
			return -ERANGE;
		}
		*(int *)slot = (int)n;
		return 0;
	case CONFIG_ENUM:
		for (int i = 0; opt->co_choices[i]; i++) {
			if (!strcmp(value, opt->co_choices[i])) {
				*(int *)slot = i;
				return 0;
			}
		}
		size_t off = (size_t)snprintf(why, whylen, "'%s' is not one of:", value);
		for (int i = 0; opt->co_choices[i] && off < whylen; i++)
			off += (size_t)snprintf(why + off, whylen - off, " %s", opt->co_choices[i]);
		return -EINVAL;
	}
	return -EINVAL;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	char why[256];

	for (size_t i = 0; st->opts[i].co_name; i++) {
		const struct config_option *opt = &st->opts[i];

		if (strcmp(opt->co_section, section) || strcmp(opt->co_name, name))
			continue;
		if (st->seen[i]) {
			set_error(st, st->line, "[%s] %s is set twice", section, name);
			return 1;
		}
		st->seen[i] = true;
		if (set_value(opt, st->target, value, why, sizeof(why)) < 0)
			set_error(st, st->line, "[%s] %s: %s", section, name, why);
		return 1;
	}
	for (size_t i = 0; st->opts[i].co_name; i++)
		if (!strcmp(st->opts[i].co_section, section)) {
			set_error(st, st->line, "unknown option '%s' in [%s]", name, section);
			return 1;
		}
	set_error(st, st->line, "unknown section [%s]", section);
	return 1;
}

static char *read_line(char *buf, int size, void *stream)
{
	struct parse_state *st = stream;
	char *r = NULL;

	if (st->file) {
		r = fgets(buf, size, st->file);
	} else if (*st->text) {
		size_t n = strcspn(st->text, "\n");

		if (st->text[n] == '\n')
			n++;
		if (n > (size_t)size - 1)
			n = (size_t)size - 1;
		memcpy(buf, st->text, n);
		buf[n] = '\0';
		st->text += n;
		r = buf;
	}
	if (r)
		st->line++;
	return r;
}

static void apply_defaults(struct parse_state *st)
{
	char why[256];

	for (size_t i = 0; st->opts[i].co_name; i++) {
		const struct config_option *opt = &st->opts[i];

		if (opt->co_default &&
		    set_value(opt, st->target, opt->co_default, why, sizeof(why)))
			set_error(st, 0, "built-in default of [%s] %s: %s", opt->co_section,
				  opt->co_name, why);
	}
}

static int parse(struct parse_state *st)
{
	size_t n = 0;
	int r;

	while (st->opts[n].co_name)
		n++;
	st->seen = calloc(n + 1, sizeof(bool));
	if (!st->seen) {
		snprintf(st->err, st->errlen, "%s: out of memory", st->name);
		return -ENOMEM;
	}
	apply_defaults(st);
	r = ini_parse_stream(read_line, st, handler, st);
	if (r > 0)
		set_error(st, r, "syntax error (expected [section] or name = value)");
	else if (r < 0)
		set_error(st, 0, "cannot read the file");
	for (size_t i = 0; i < n; i++)
		if (st->opts[i].co_required && !st->seen[i])
			set_error(st, 0, "[%s] %s is required", st->opts[i].co_section,
				  st->opts[i].co_name);
	free(st->seen);
	return st->error_line ? -EINVAL : 0;
}

int config_load(const char *path, const struct config_option *opts, void *target, char *err,
		size_t errlen)
{
	struct parse_state st = {
	    .name = path, .opts = opts, .target = target, .err = err, .errlen = errlen};
	int r;

	st.file = fopen(path, "r");
	if (!st.file) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	r = parse(&st);
	fclose(st.file);
	return r;
}

int config_load_string(const char *name, const char *text, const struct config_option *opts,
		       void *target, char *err, size_t errlen)
{
	struct parse_state st = {.name = name,
				 .opts = opts,
				 .target = target,
				 .err = err,
				 .errlen = errlen,
				 .text = text};

	return parse(&st);
}

void config_free(const struct config_option *opts, void *target)
{
	for (size_t i = 0; opts[i].co_name; i++) {
		if (opts[i].co_type != CONFIG_STRING)
			continue;
		char **slot = (char **)((char *)target + opts[i].co_offset);

		free(*slot);
		*slot = NULL;
	}
}

void config_print(FILE *out, const struct config_option *opts, const void *target)
{
	const char *section = NULL;

	for (size_t i = 0; opts[i].co_name; i++) {
		const struct config_option *opt = &opts[i];
		const char *slot = (const char *)target + opt->co_offset;

		if (!section || strcmp(section, opt->co_section)) {
			section = opt->co_section;
			fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
		}
		if (opt->co_secret) {
			fprintf(out, "%s = (secret, not shown)\n", opt->co_name);
			continue;
		}
		switch (opt->co_type) {
		case CONFIG_STRING: {
			const char *v = *(char *const *)slot ? *(char *const *)slot : "";

			/* libinih takes ';' after a space for a comment: a value that begins
			 * with one was written "name =;..." and must be written back so. */
			fprintf(out, "%s =%s%s\n", opt->co_name, v[0] == ';' ? "" : " ", v);
			break;
		}
		case CONFIG_BOOL:
			fprintf(out, "%s = %s\n", opt->co_name, *(const bool *)slot ? "yes" : "no");
			break;
		case CONFIG_INT: fprintf(out, "%s = %d\n", opt->co_name, *(const int *)slot); break;
		case CONFIG_DURATION:
			fprintf(out, "%s = %ds\n", opt->co_name, *(const int *)slot);
			break;
		case CONFIG_ENUM:
			fprintf(out, "%s = %s\n", opt->co_name,
				opt->co_choices[*(const int *)slot]);
			break;
		}
	}
}
