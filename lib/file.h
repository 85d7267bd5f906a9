/* Files that must never be seen half-written, also after a crash or power loss. */
#ifndef VDI_FILE_H
#define VDI_FILE_H

#include <stddef.h>

/* Replaces path with len bytes of data atomically and durably: a new temporary file in
 * the same directory (mode 0600), fsync, rename over path, fsync of the directory.
 * On failure path is untouched and the temporary file removed. 0 or -errno. */
int file_write_atomic(const char *path, const void *data, size_t len);
/* fsyncs the directory that holds path, so a rename or unlink there is durable.
 * 0 or -errno. */
int file_sync_dir(const char *path);

#endif
