/* PEM files (certificates, keys, CA bundles) read whole into memory for the TLS
 * libraries' *_mem functions. */
#ifndef VDI_PEM_H
#define VDI_PEM_H

#include <stddef.h>

#define PEM_MAX 65536

/* Reads path, at most PEM_MAX - 1 bytes. Returns a new NUL-terminated string (free())
 * or NULL with the reason, naming the file, in err. */
char *pem_read(const char *path, char *err, size_t errlen);

#endif
