/* Files that must never be seen half-written, also after a crash or power loss. */
#ifndef VDI_FILE_H
#define VDI_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with len bytes of data atomically and durably: a new temporary file in
 * the same directory (mode 0600), fsync, rename over path, fsync of the directory.
 * On failure path is untouched and the temporary file removed. 0 or -errno. */
int file_write_atomic(const char *path, const void *data, size_t len);
/* fsyncs the directory that holds path, so a rename or unlink there is durable.
 * 0 or -errno. */
int file_sync_dir(const char *path);
/* Makes the existing file or directory at path private to this process's user: it must
 * not be a symbolic link (-ELOOP) and must belong to the effective uid (-EPERM); its
 * mode becomes mode (say 0600 or 0700) when it is anything else, so files made before
 * under a looser umask are tightened. 0, or -errno (-ENOENT when absent). */
int file_make_private(const char *path, mode_t mode);
/* open(path, flags, mode) that follows no symbolic link at path's last two components:
 * the directory holding it is opened with O_DIRECTORY | O_NOFOLLOW, and the file with
 * openat() relative to that descriptor and O_NOFOLLOW, so a symlink planted at either
 * place is refused (-ELOOP or -ENOTDIR) rather than followed to a file elsewhere. The
 * file must be a regular one (-EINVAL; a FIFO there does not block the open). Returns
 * the descriptor (O_CLOEXEC) or -errno. */
int file_open_nofollow(const char *path, int flags, mode_t mode);

#endif
