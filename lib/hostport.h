/* "HOST:PORT" addresses as every config option and API field writes them: a name or an
 * IPv4 address, or an IPv6 address in brackets ("[::1]:8443"), a colon, a decimal port. */
#ifndef VDI_HOSTPORT_H
#define VDI_HOSTPORT_H

#include <stddef.h>

/* Splits text into host (brackets removed, NUL-terminated in host[hostlen]) and port.
 * Returns 0, or -EINVAL when there is no colon, the host is empty, too long or an
 * unbracketed IPv6 address, or the port is not 0..65535 in digits only. Callers that
 * need a real port check port > 0. */
int hostport_split(const char *text, char *host, size_t hostlen, unsigned *port);

#endif
