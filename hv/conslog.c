/* The serial console's output: a descriptor, or a file rotated once at its cap (see
 * conslog.h for why and how). */
#include "hv/conslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

struct conslog {
	int cl_fd;	  /* -1: output dropped */
	bool cl_owned;	  /* cl_fd is ours to close */
	char *cl_path;	  /* NULL: a descriptor, never rotated */
	uint64_t cl_max;  /* 0: no cap */
	uint64_t cl_size; /* bytes in the current file */
	bool cl_warned;	  /* a failure was logged once */
	int cl_old_fd;	  /* PATH.1 opened by conslog_seal(), else -1 */
};

/* Read and write: a sealed log copies itself to PATH.1. */
#define OPEN_FLAGS (O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC)

struct conslog *conslog_from_fd(int fd)
{
	struct conslog *cl = calloc(1, sizeof(*cl));

	if (cl) {
		cl->cl_fd = fd;
		cl->cl_old_fd = -1;
	}
	return cl;
}

struct conslog *conslog_open(const char *path, uint64_t max_bytes)
{
	struct conslog *cl = calloc(1, sizeof(*cl));
	struct stat st;
	int e;

	if (!cl || !(cl->cl_path = strdup(path))) {
		free(cl);
		errno = ENOMEM;
		return NULL;
	}
	cl->cl_old_fd = -1;
	cl->cl_fd = open(path, OPEN_FLAGS, 0600);
	cl->cl_owned = true;
	if (cl->cl_fd < 0 || fstat(cl->cl_fd, &st) < 0) {
		e = errno;
		conslog_close(cl);
		errno = e;
		return NULL;
	}
	cl->cl_max = max_bytes;
	cl->cl_size = (uint64_t)st.st_size;
	return cl;
}

/* Writes all of p, or stops at the first failure. Returns the bytes written. */
static size_t write_all(int fd, const uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

static char *old_name(const char *path)
{
	size_t len = strlen(path) + 3;
	char *old = malloc(len);

	if (old)
		snprintf(old, len, "%s.1", path);
	return old;
}

int conslog_seal(struct conslog *cl)
{
	char *old;

	if (!cl->cl_path || !cl->cl_max || cl->cl_fd < 0 || cl->cl_old_fd >= 0)
		return 0; /* never rotates, or done already */
	old = old_name(cl->cl_path);
	if (!old) {
		errno = ENOMEM;
		return -1;
	}
	cl->cl_old_fd = open(old, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	free(old);
	return cl->cl_old_fd < 0 ? -1 : 0;
}

/* A sealed log's rotation with the descriptors it has: PATH.1 gets a copy of PATH, and
 * PATH is emptied (appends then start at 0). A failed copy leaves PATH.1 short, never
 * PATH over its cap. */
static void rotate_sealed(struct conslog *cl)
{
	uint8_t buf[16384];
	off_t off = 0;
	ssize_t n = 0;

	if (ftruncate(cl->cl_old_fd, 0) == 0) {
		while ((n = pread(cl->cl_fd, buf, sizeof(buf), off)) > 0) {
			ssize_t w = pwrite(cl->cl_old_fd, buf, (size_t)n, off);

			if (w != n) {
				n = -1;
				break;
			}
			off += n;
		}
	} else {
		n = -1;
	}
	if (n < 0 && !cl->cl_warned) {
		log_warn("serial: cannot copy %s to %s.1; its older output is lost", cl->cl_path,
			 cl->cl_path);
		cl->cl_warned = true;
	}
	if (ftruncate(cl->cl_fd, 0) < 0) {
		log_warn("serial: %s cannot be emptied; console output dropped", cl->cl_path);
		close(cl->cl_fd);
		cl->cl_fd = -1;
	}
	cl->cl_size = 0;
}

/* PATH becomes PATH.1 and a new PATH is started. Should the rename fail, the file is
 * emptied instead, so the cap holds either way; should PATH not open again, the output
 * is dropped from then on. */
static void rotate(struct conslog *cl)
{
	char *old;

	if (cl->cl_old_fd >= 0) {
		rotate_sealed(cl);
		return;
	}
	old = old_name(cl->cl_path);
	if (old && rename(cl->cl_path, old) == 0) {
		close(cl->cl_fd);
		cl->cl_fd = open(cl->cl_path, OPEN_FLAGS | O_TRUNC, 0600);
		if (cl->cl_fd < 0)
			log_warn("serial: cannot start %s again; console output dropped",
				 cl->cl_path);
	} else if (ftruncate(cl->cl_fd, 0) < 0) {
		log_warn("serial: %s reached %llu bytes and can be neither rotated nor emptied; "
			 "console output dropped",
			 cl->cl_path, (unsigned long long)cl->cl_max);
		close(cl->cl_fd);
		cl->cl_fd = -1;
	} else if (!cl->cl_warned) {
		log_warn("serial: cannot rename %s to %s; emptied it instead", cl->cl_path,
			 old ? old : "PATH.1");
		cl->cl_warned = true;
	}
	free(old);
	cl->cl_size = 0;
}

void conslog_write(struct conslog *cl, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0 && cl->cl_fd >= 0) {
		size_t n = len, done;

		if (cl->cl_path && cl->cl_max) {
			if (cl->cl_size >= cl->cl_max) {
				rotate(cl);
				continue;
			}
			if (n > cl->cl_max - cl->cl_size)
				n = (size_t)(cl->cl_max - cl->cl_size);
		}
		done = write_all(cl->cl_fd, p, n);
		cl->cl_size += done;
		if (done < n)
			return; /* the reader is gone or the disk is full: dropped */
		p += n, len -= n;
	}
}

void conslog_close(struct conslog *cl)
{
	if (!cl)
		return;
	if (cl->cl_owned && cl->cl_fd >= 0)
		close(cl->cl_fd);
	if (cl->cl_old_fd >= 0)
		close(cl->cl_old_fd);
	free(cl->cl_path);
	free(cl);
}
