/* The broker as the client of vdi-hostd's API: JSON over HTTPS with mutual TLS (the
 * broker's certificate and key, the hosts' CA), through libcurl, one call at a time per
 * calling thread. Not the heartbeat listener (that is the broker's HTTP side). */
#ifndef VDI_BROKER_HOSTCLIENT_H
#define VDI_BROKER_HOSTCLIENT_H

#include <jansson.h>
#include <stddef.h>

struct hostclient;

/* cert, key, ca: PEM files (copied names). Returns NULL when out of memory. */
struct hostclient *hostclient_new(const char *cert, const char *key, const char *ca, int timeout_s);
void hostclient_free(struct hostclient *hc);

/* Calls method base_url + path (base_url like "https://10.0.0.5:8443") on host host_id
 * with body (NULL: none). The host's certificate must be valid for base_url's address
 * and name host_id (its CN, net/tlsname.h): another host's certificate does not pass
 * for it. Returns the HTTP status with the decoded JSON answer in *reply (NULL when
 * there is none or it is not JSON), or -EHOSTUNREACH / -ETIMEDOUT / -EPROTO with err
 * set (the host could not be reached, or TLS failed), -EPERM when its certificate names
 * another host (err says which). */
int hostclient_call(struct hostclient *hc, const char *host_id, const char *base_url,
		    const char *method, const char *path, const json_t *body, json_t **reply,
		    char *err, size_t errlen);

#endif
