/* Where hostd keeps desktop definitions so a restart finds them: one JSON file
 * per desktop in state_dir/desktops/, each written atomically (temporary file,
 * fsync, rename, fsync of the directory). Also makes the state and run
 * directories and each desktop's run directory, refusing symlinks planted in them
 * (files there are opened with file_open_nofollow(), lib/file.h). Not a database. */
#ifndef VDI_HOSTD_DEFINITIONS_H
#define VDI_HOSTD_DEFINITIONS_H

#include "hostd/conf.h"
#include "hostd/desktop.h"

/* Creates state_dir/{desktops,disks,logs} and run_dir (mode 0700) when missing.
 * 0 or -errno with a log line. */
int definitions_init(const struct conf *c);
/* Writes d's stored form. 0 or -errno. */
int definitions_save(const struct conf *c, const struct desktop *d);
/* Removes d's file. 0 (also when it was not there) or -errno. */
int definitions_remove(const struct conf *c, const struct desktop *d);
/* Calls fn for each stored desktop, in id order; fn takes ownership of d. Files
 * that do not parse are logged and skipped (left in place). Returns the number
 * loaded or -errno. */
/* Makes a desktop's run directory (path, mode 0700) or checks the one there: a real
 * directory (not a symlink: -ELOOP or -ENOTDIR), hostd's own, closed to others
 * (-EPERM), so the VMM's sockets and the monitor's files go where hostd says. 0 or
 * -errno. */
int definitions_run_dir(const char *path);
/* A message for an error of file_open_nofollow() or definitions_run_dir() on path:
 * "PATH is a symbolic link: refused" and the like, into buf. Returns buf. */
const char *definitions_file_error(const char *path, int r, char *buf, size_t len);
int definitions_load(const struct conf *c, void (*fn)(void *arg, struct desktop *d), void *arg);

#endif
