/* Whether a desktop template would boot on this host: its files found inside the
 * template directories (desktop.c's rules), readable, the kernel in a format the
 * engine loads, the base disk raw and of a size the engine takes, memory and vCPUs
 * within this host's limits. Answers POST /api/v1/templates/check (the broker asks it before it
 * accepts a pool). Reads files; starts nothing. */
#ifndef VDI_HOSTD_TEMPLATE_H
#define VDI_HOSTD_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

#include "hostd/conf.h"
#include "hostd/desktop.h"

/* The format of the kernel in data (the whole file, len bytes) if engine e can boot
 * it in memory_mib of guest RAM: "bzImage", "ELF64 (PVH entry)", "ELF64 (64-bit
 * entry)" or "multiboot"; NULL when it cannot, with why set to a phrase that follows
 * the file's quoted name ("is not a kernel: ..."). */
const char *template_kernel_format(const unsigned char *data, size_t len, enum desktop_engine e,
				   long long memory_mib, char *why, size_t whylen);

/* The format of a base disk image from its first bytes (head, n of them) and size, if
 * engine e can put its overlay on it: "raw"; NULL with why set otherwise. */
const char *template_disk_format(const unsigned char *head, size_t n, unsigned long long size,
				 enum desktop_engine e, char *why, size_t whylen);

/* Checks the template body (a create request: engine, kernel, initrd, disk, cmdline,
 * memory_mib, vcpus, an optional id) on this host. Returns 0 when it would boot,
 * -ENOEXEC when a file is wrong, -EINVAL when the request itself is (fields, memory,
 * vCPUs: see desktop_check_request()); err gets the first problem as a sentence.
 * *report (a new reference, also on failure when not NULL) is what was found:
 * {"engine", "template_dirs": [...], "files": {FIELD: {"file", "path", "size",
 * "format"}}, "problems": [{"field", "file", "error"}]}, each error a phrase that
 * follows the quoted file name. report may be NULL. */
int template_check(const struct conf *c, const json_t *body, json_t **report, char *err,
		   size_t errlen);

#endif
