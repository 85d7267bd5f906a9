/* The desktop store: atomic file replacement and a directory scan on start-up.
 */
#include "hv/hostd/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/json.h"
#include "lib/log.h"

#define STORED_MAX (1 << 20)

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		int r = -errno;

		log_warn("store: cannot create %s", path);
		return r;
	}
	return 0;
}

int store_init(const struct conf *c)
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

static int sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

int store_write_file(const char *path, const void *data, size_t len)
{
	unsigned rnd = 0;
	char tmp[4200];
	int fd, r = 0;

	if (getrandom(&rnd, sizeof(rnd), 0) < 0)
		rnd = (unsigned)getpid();
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%08x", path, rnd) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)w;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return sync_dir_of(path);
}

int store_save(const struct conf *c, const struct desktop *d)
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
		r = store_write_file(path, text, strlen(text));
	free(text);
	if (r < 0)
		log_warnx("store: cannot save desktop=%s: %s", d->d_id, strerror(-r));
	return r;
}

int store_remove(const struct conf *c, const struct desktop *d)
{
	char path[4200];
	int r = desktop_path(c, d, DESKTOP_FILE_JSON, path, sizeof(path));

	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return sync_dir_of(path);
}

static int load_one(const char *path, const char *expect_id, struct desktop **out)
{
	char err[256], *buf = NULL;
	struct desktop *d = NULL;
	json_t *o = NULL;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(STORED_MAX);
	n = buf ? read(fd, buf, STORED_MAX) : -1;
	close(fd);
	if (n < 0 || n == STORED_MAX) {
		log_warnx("store: %s: unreadable or larger than %d bytes, skipped", path,
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
		log_warnx("store: %s: %s; skipped", path, err);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int store_load(const struct conf *c, void (*fn)(void *arg, struct desktop *d), void *arg)
{
	char dir[4200], path[4400];
	struct dirent **names;
	int n, loaded = 0;

	snprintf(dir, sizeof(dir), "%s/desktops", c->state_dir);
	n = scandir(dir, &names, NULL, by_name);
	if (n < 0) {
		int r = -errno;

		log_warn("store: cannot read %s", dir);
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
