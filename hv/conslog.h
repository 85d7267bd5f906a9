/* Where the guest's serial console output goes: a descriptor vdi-hv was given (its
 * standard output), or a file whose size is capped so that a guest cannot fill the
 * host's disk: when the next bytes would take the file past its cap, it is renamed to
 * PATH.1 (replacing an older PATH.1) and a new, empty PATH is started, so at most twice
 * the cap is kept, the newest output always in PATH. Writes are not thread-safe: the
 * caller keeps one writer at a time (serial.c does). */
#ifndef VDI_HV_CONSLOG_H
#define VDI_HV_CONSLOG_H

#include <stddef.h>
#include <stdint.h>

/* The cap when none is given: 16 MiB, hours of a chatty boot log. */
#define CONSLOG_DEFAULT_MAX (16u << 20)

struct conslog;

/* Output to fd, which stays the caller's; never rotated. NULL when out of memory. */
struct conslog *conslog_from_fd(int fd);
/* Output appended to path (created 0600; a symbolic link there is refused, not
 * followed), rotated at max_bytes (0: no cap). What the file already holds counts.
 * NULL with errno set. */
struct conslog *conslog_open(const char *path, uint64_t max_bytes);
/* Opens PATH.1 now (created 0600 if missing, kept as it is otherwise) for a log that
 * will be rotated, so that rotating later opens and renames nothing: PATH is copied to
 * PATH.1 through descriptors and emptied. For vdi-hv's sandbox, which forbids opening
 * files once the guest runs. Nothing to do (0) for a descriptor or a log without cap.
 * Returns 0, or -1 with errno set. */
int conslog_seal(struct conslog *cl);
/* Writes len bytes, rotating as needed. When the output cannot be written (the reader
 * of fd is gone, the disk is full, PATH cannot be made again) the bytes are dropped, as
 * a UART with nobody listening. */
void conslog_write(struct conslog *cl, const void *buf, size_t len);
/* Closes the file (not a descriptor from conslog_from_fd()) and frees cl; NULL is fine. */
void conslog_close(struct conslog *cl);

#endif
