/* Desktop definitions on disk: one JSON file each, written with file_write_atomic(), and
 * a directory scan on start-up. */
#include "hostd/definitions.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/json.h"
#include "lib/log.h"

#define STORED_MAX (1 << 20)

/* Refuses a directory another local user could change under hostd: it must be a real
 * directory (not a symlink) owned by hostd's user and writable by nobody else, and its
 * parent must not let others rename it away (writable by others only with the sticky
 * bit, as /tmp). Returns 0 or -EPERM with a log line that says what to fix. */
static int check_private_dir(const char *path)
{
	char *copy = strdup(path), *parent;
	struct stat st;
	int r = -EPERM;

	if (!copy)
		return -ENOMEM;
	parent = dirname(copy);
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		log_warnx("definitions: %s is not a directory (a symlink?): refused", path);
	else if (st.st_uid != geteuid())
		log_warnx("definitions: %s belongs to uid %u, not to vdi-hostd's uid %u: refused",
			  path, (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		log_warnx("definitions: %s is writable by others (mode %04o): refused; "
			  "chmod go-w it",
			  path, (unsigned)(st.st_mode & 07777));
	else if (stat(parent, &st) < 0)
		log_warn("definitions: cannot check %s", parent);
	else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		log_warnx("definitions: %s is in %s, which others can write without the sticky "
			  "bit: refused",
			  path, parent);
	else
		r = 0;
	free(copy);
	return r;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		int r = -errno;

		log_warn("definitions: cannot create %s", path);
		return r;
	}
	return check_private_dir(path);
}

int definitions_init(const struct conf *c)
{
	static const char *const subdirs[] = {"desktops", "disks", "logs"};
	char path[4200];
	int r;

	if ((r = make_dir(c->state_dir)) < 0 || (r = make_dir(c->run_dir)) < 0)
		return r;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", c->state_dir, subdirs[i]);
		if ((r = make_dir(path)) < 0)
			return r;
	}
	return 0;
}

int definitions_run_dir(const char *path)
{
	struct stat st;
	int fd, r = 0;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (st.st_uid != geteuid() || (st.st_mode & 077))
		r = -EPERM;
	close(fd);
	return r;
}

const char *definitions_file_error(const char *path, int r, char *buf, size_t len)
{
	const char *why = r == -ELOOP	  ? "is a symbolic link: refused, not followed"
			  : r == -ENOTDIR ? "is not a directory (a symbolic link?): refused"
			  : r == -EINVAL  ? "is not a regular file: refused"
			  : r == -EPERM	  ? "belongs to another user or is open to others: refused"
					  : NULL;

	if (why)
		snprintf(buf, len, "%s %s", path, why);
	else
		snprintf(buf, len, "cannot open %s: %s", path, strerror(-r));
	return buf;
}

int definitions_save(const struct conf *c, const struct desktop *d)
{
	char path[4200], *text;
	json_t *o = desktop_to_json(d, true);
	int r;

	if (!o)
		return -ENOMEM;
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		return -ENOMEM;
	r = desktop_path(c, d, DESKTOP_FILE_JSON, path, sizeof(path));
	if (!r)
		r = file_write_atomic(path, text, strlen(text));
	free(text);
	if (r < 0)
		log_warnx("definitions: cannot save desktop=%s: %s", d->d_id, strerror(-r));
	return r;
}

int definitions_remove(const struct conf *c, const struct desktop *d)
{
	char path[4200];
	int r = desktop_path(c, d, DESKTOP_FILE_JSON, path, sizeof(path));

	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return file_sync_dir(path);
}

static int load_one(const char *path, const char *expect_id, struct desktop **out)
{
	char err[256], *buf = NULL;
	struct desktop *d = NULL;
	json_t *o = NULL;
	ssize_t n;
	int fd;

	fd = file_open_nofollow(path, O_RDONLY, 0);
	if (fd < 0) {
		log_warnx("definitions: %s", definitions_file_error(path, fd, err, sizeof(err)));
		return fd;
	}
	buf = malloc(STORED_MAX);
	n = buf ? read(fd, buf, STORED_MAX) : -1;
	close(fd);
	if (n < 0 || n == STORED_MAX) {
		log_warnx("definitions: %s: unreadable or larger than %d bytes, skipped", path,
			  STORED_MAX - 1);
		free(buf);
		return -EINVAL;
	}
	o = json_parse_object(buf, (size_t)n, STORED_MAX, err, sizeof(err));
	free(buf);
	if (o)
		d = desktop_from_saved(o, err, sizeof(err));
	json_decref(o);
	if (d && strcmp(d->d_id, expect_id)) {
		snprintf(err, sizeof(err), "holds desktop %s", d->d_id);
		desktop_free(d);
		d = NULL;
	}
	if (!d) {
		log_warnx("definitions: %s: %s; skipped", path, err);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int definitions_load(const struct conf *c, void (*fn)(void *arg, struct desktop *d), void *arg)
{
	char dir[4200], path[4400];
	struct dirent **names;
	int n, loaded = 0;

	snprintf(dir, sizeof(dir), "%s/desktops", c->state_dir);
	n = scandir(dir, &names, NULL, by_name);
	if (n < 0) {
		int r = -errno;

		log_warn("definitions: cannot read %s", dir);
		return r;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);
		char id[DESKTOP_ID_MAX + 1];
		struct desktop *d = NULL;

		if (len > 5 && strstr(name, ".json.tmp-")) {
			/* A write that did not finish: the old file is still there. */
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			unlink(path);
		} else if (len > 5 && len - 5 <= DESKTOP_ID_MAX &&
			   !strcmp(name + len - 5, ".json")) {
			memcpy(id, name, len - 5);
			id[len - 5] = '\0';
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			if (desktop_id_valid(id) && load_one(path, id, &d) == 0) {
				fn(arg, d);
				loaded++;
			}
		}
		free(names[i]);
	}
	free(names);
	return loaded;
}
