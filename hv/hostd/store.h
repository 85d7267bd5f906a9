/* Where hostd keeps desktop definitions so a restart finds them: one JSON file
 * per desktop in state_dir/desktops/, each written atomically (temporary file,
 * fsync, rename, fsync of the directory). Also makes the state and run
 * directories. Not a database. */
#ifndef VDI_HOSTD_STORE_H
#define VDI_HOSTD_STORE_H

#include <stddef.h>

#include "hv/hostd/conf.h"
#include "hv/hostd/desktop.h"

/* Creates state_dir/{desktops,disks,logs} and run_dir (mode 0700) when missing.
 * 0 or -errno with a log line. */
int store_init(const struct conf *c);
/* Writes d's stored form. 0 or -errno. */
int store_save(const struct conf *c, const struct desktop *d);
/* Removes d's file. 0 (also when it was not there) or -errno. */
int store_remove(const struct conf *c, const struct desktop *d);
/* Calls fn for each stored desktop, in id order; fn takes ownership of d. Files
 * that do not parse are logged and skipped (left in place). Returns the number
 * loaded or -errno. */
int store_load(const struct conf *c, void (*fn)(void *arg, struct desktop *d), void *arg);

/* Replaces path with len bytes of data, atomically and durably. 0 or -errno. */
int store_write_file(const char *path, const void *data, size_t len);

#endif
