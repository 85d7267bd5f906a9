/* The HTTPS certificate of the broker's user-facing listener: read from the configured
 * files, or on first start a self-signed one (EC P-256, one year, naming localhost,
 * 127.0.0.1 and ::1 and this host's name) generated with OpenSSL and kept in the state
 * directory. Not the mutual-TLS material for hosts (that comes from a CA). */
#ifndef VDI_BROKER_CERT_H
#define VDI_BROKER_CERT_H

#include <stddef.h>

/* Loads dir/https.crt and dir/https.key, generating them first when both are absent.
 * Returns 0 with new strings in *cert and *key, or a negative errno with err set. */
int cert_self_signed(const char *dir, char **cert, char **key, char *err, size_t errlen);

#endif
