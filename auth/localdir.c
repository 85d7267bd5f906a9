/* The local users file: parsed with libinih through a line-counting reader so each
 * error names its line, validated completely at load time. */
#include "auth/localdir.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth/password.h"
#include "lib/log.h"

#define TEXT_MAX 256
#define MAIL_MAX 320

struct local_user {
	char *lu_username;
	char *lu_hash;
	char *lu_display_name;
	char *lu_mail;
	char **lu_groups;
	size_t lu_ngroups;
	int lu_line; /* where its section starts */
};

struct localdir {
	struct local_user *ld_users;
	size_t ld_nusers, ld_cap;
};

struct parse_state {
	const char *ps_name;
	struct localdir *ps_dir;
	int ps_line;
	int ps_section_line; /* of the last [section] header read */
	int ps_error_line;
	char *ps_err;
	size_t ps_errlen;
	FILE *ps_file;
	const char *ps_text;
};

static void set_error(struct parse_state *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(struct parse_state *st, int line, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	if (st->ps_error_line)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->ps_error_line = line > 0 ? line : -1;
	if (line > 0)
		snprintf(st->ps_err, st->ps_errlen, "%s:%d: %s", st->ps_name, line, msg);
	else
		snprintf(st->ps_err, st->ps_errlen, "%s: %s", st->ps_name, msg);
}

static void free_user(struct local_user *u)
{
	free(u->lu_username);
	free(u->lu_hash);
	free(u->lu_display_name);
	free(u->lu_mail);
	for (size_t i = 0; i < u->lu_ngroups; i++)
		free(u->lu_groups[i]);
	free(u->lu_groups);
}

void localdir_free(struct localdir *dir)
{
	if (!dir)
		return;
	for (size_t i = 0; i < dir->ld_nusers; i++)
		free_user(&dir->ld_users[i]);
	free(dir->ld_users);
	free(dir);
}

size_t localdir_count(const struct localdir *dir)
{
	return dir->ld_nusers;
}

static struct local_user *find(const struct localdir *dir, const char *username)
{
	for (size_t i = 0; i < dir->ld_nusers; i++)
		if (!strcasecmp(dir->ld_users[i].lu_username, username))
			return &dir->ld_users[i];
	return NULL;
}

/* The user a section belongs to, created on first sight. */
static struct local_user *section_user(struct parse_state *st, const char *section)
{
	struct localdir *dir = st->ps_dir;
	struct local_user *u = find(dir, section);

	if (u) {
		if (strcmp(u->lu_username, section)) {
			set_error(st, st->ps_section_line, "user '%s' is already defined as '%s'",
				  section, u->lu_username);
			return NULL;
		}
		return u;
	}
	if (!identity_valid_username(section, strlen(section))) {
		set_error(st, st->ps_section_line, "[%s] is not a valid username", section);
		return NULL;
	}
	if (dir->ld_nusers == dir->ld_cap) {
		size_t cap = dir->ld_cap ? dir->ld_cap * 2 : 16;
		struct local_user *users = realloc(dir->ld_users, cap * sizeof(*users));

		if (!users) {
			set_error(st, st->ps_line, "out of memory");
			return NULL;
		}
		dir->ld_users = users;
		dir->ld_cap = cap;
	}
	u = &dir->ld_users[dir->ld_nusers];
	memset(u, 0, sizeof(*u));
	u->lu_username = strdup(section);
	if (!u->lu_username) {
		set_error(st, st->ps_line, "out of memory");
		return NULL;
	}
	u->lu_line = st->ps_section_line;
	dir->ld_nusers++;
	return u;
}

static int set_text(struct parse_state *st, const char *section, const char *name, char **slot,
		    const char *value, size_t max)
{
	if (*slot) {
		set_error(st, st->ps_line, "[%s] %s is set twice", section, name);
		return -EINVAL;
	}
	if (!identity_valid_text(value, strlen(value), max)) {
		set_error(st, st->ps_line, "[%s] %s: empty, too long or not plain UTF-8 text",
			  section, name);
		return -EINVAL;
	}
	*slot = strdup(value);
	if (!*slot) {
		set_error(st, st->ps_line, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int set_groups(struct parse_state *st, struct local_user *u, const char *section,
		      const char *value)
{
	const char *p = value;

	if (u->lu_groups) {
		set_error(st, st->ps_line, "[%s] groups is set twice", section);
		return -EINVAL;
	}
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len;
		char **groups;

		if (!end)
			end = p + strlen(p);
		while (*p == ' ' || *p == '\t')
			p++;
		len = (size_t)(end - p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!identity_valid_text(p, len, TEXT_MAX)) {
			set_error(st, st->ps_line, "[%s] groups: empty or malformed group name",
				  section);
			return -EINVAL;
		}
		if (u->lu_ngroups >= IDENTITY_MAX_GROUPS) {
			set_error(st, st->ps_line, "[%s] groups: more than %d", section,
				  IDENTITY_MAX_GROUPS);
			return -EINVAL;
		}
		groups = realloc(u->lu_groups, (u->lu_ngroups + 1) * sizeof(*groups));
		if (!groups || !(groups[u->lu_ngroups] = strndup(p, len))) {
			if (groups)
				u->lu_groups = groups;
			set_error(st, st->ps_line, "out of memory");
			return -ENOMEM;
		}
		u->lu_groups = groups;
		u->lu_ngroups++;
		p = *end ? end + 1 : end;
	}
	if (!u->lu_groups)
		u->lu_groups = calloc(1, sizeof(char *)); /* "set", even if empty */
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	struct local_user *u;

	if (!*section) {
		set_error(st, st->ps_line, "'%s' outside a [username] section", name);
		return 1;
	}
	u = section_user(st, section);
	if (!u)
		return 1;
	if (!strcmp(name, "password")) {
		if (u->lu_hash) {
			set_error(st, st->ps_line, "[%s] password is set twice", section);
		} else if (!password_hash_valid(value)) {
			set_error(st, st->ps_line,
				  "[%s] password: not a hash from vdi-passwd ($scrypt$...)",
				  section);
		} else if (!(u->lu_hash = strdup(value))) {
			set_error(st, st->ps_line, "out of memory");
		}
	} else if (!strcmp(name, "display_name")) {
		set_text(st, section, name, &u->lu_display_name, value, TEXT_MAX);
	} else if (!strcmp(name, "mail")) {
		set_text(st, section, name, &u->lu_mail, value, MAIL_MAX);
	} else if (!strcmp(name, "groups")) {
		set_groups(st, u, section, value);
	} else {
		set_error(st, st->ps_line, "unknown option '%s' in [%s]", name, section);
	}
	return 1;
}

static char *read_line(char *buf, int size, void *stream)
{
	struct parse_state *st = stream;
	char *r = NULL;

	if (st->ps_file) {
		r = fgets(buf, size, st->ps_file);
	} else if (*st->ps_text) {
		size_t n = strcspn(st->ps_text, "\n");

		if (st->ps_text[n] == '\n')
			n++;
		if (n > (size_t)size - 1)
			n = (size_t)size - 1;
		memcpy(buf, st->ps_text, n);
		buf[n] = '\0';
		st->ps_text += n;
		r = buf;
	}
	if (r) {
		st->ps_line++;
		if (buf[strspn(buf, " \t")] == '[')
			st->ps_section_line = st->ps_line;
	}
	return r;
}

static struct localdir *parse(struct parse_state *st)
{
	int r;

	st->ps_dir = calloc(1, sizeof(*st->ps_dir));
	if (!st->ps_dir) {
		snprintf(st->ps_err, st->ps_errlen, "%s: out of memory", st->ps_name);
		return NULL;
	}
	r = ini_parse_stream(read_line, st, handler, st);
	if (r > 0)
		set_error(st, r, "syntax error (expected [username] or name = value)");
	else if (r < 0)
		set_error(st, 0, "cannot read the file");
	for (size_t i = 0; i < st->ps_dir->ld_nusers; i++)
		if (!st->ps_dir->ld_users[i].lu_hash)
			set_error(st, st->ps_dir->ld_users[i].lu_line, "[%s] password is required",
				  st->ps_dir->ld_users[i].lu_username);
	if (st->ps_error_line) {
		localdir_free(st->ps_dir);
		return NULL;
	}
	return st->ps_dir;
}

struct localdir *localdir_parse(const char *name, const char *text, char *err, size_t errlen)
{
	struct parse_state st = {
	    .ps_name = name, .ps_err = err, .ps_errlen = errlen, .ps_text = text};

	return parse(&st);
}

struct localdir *localdir_load(const char *path, char *err, size_t errlen)
{
	struct parse_state st = {.ps_name = path, .ps_err = err, .ps_errlen = errlen};
	struct localdir *dir;
	struct stat sb;

	st.ps_file = fopen(path, "r");
	if (!st.ps_file) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(st.ps_file), &sb) == 0 && (sb.st_mode & S_IWOTH))
		log_warnx("%s: the users file is writable by everyone", path);
	dir = parse(&st);
	fclose(st.ps_file);
	return dir;
}

/* u's identity into *out. Returns 0 or a negative errno. */
static int identity_of(const struct local_user *u, struct identity **out)
{
	struct identity *id = identity_new(u->lu_username, NULL, u->lu_display_name, u->lu_mail);

	*out = NULL;
	if (!id)
		return -ENOMEM;
	for (size_t i = 0; i < u->lu_ngroups; i++) {
		int r = identity_add_group(id, u->lu_groups[i]);

		if (r < 0) {
			identity_free(id);
			return r;
		}
	}
	*out = id;
	return 0;
}

int localdir_user_at(const struct localdir *dir, size_t i, struct identity **id)
{
	*id = NULL;
	if (i >= dir->ld_nusers)
		return -ENOENT;
	return identity_of(&dir->ld_users[i], id);
}

int localdir_lookup(const struct localdir *dir, const char *username, struct identity **out,
		    char **password_hash)
{
	const struct local_user *u = find(dir, username);
	struct identity *id;
	int r;

	*out = NULL;
	*password_hash = NULL;
	if (!u)
		return -ENOENT;
	r = identity_of(u, &id);
	if (r < 0)
		return r;
	*password_hash = strdup(u->lu_hash);
	if (!*password_hash) {
		identity_free(id);
		return -ENOMEM;
	}
	*out = id;
	return 0;
}
