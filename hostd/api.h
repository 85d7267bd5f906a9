/* hostd's JSON API over HTTPS with mutual TLS, served by web/: the TLS handshake
 * itself requires a client certificate signed by [api] ca. Routes under /api/v1/ map
 * onto host.h; errors are {"error", "code"} with a matching HTTP status; bodies are
 * bounded by [api] max_body. Not domain logic. */
#ifndef VDI_HOSTD_API_H
#define VDI_HOSTD_API_H

#include "hostd/conf.h"
#include "hostd/host.h"

struct host_api;

/* Listens on [api] listen. Returns the API or NULL with a log line. */
struct host_api *host_api_start(const struct conf *c, struct host *h);
/* Stops serving (waits for requests in progress). NULL is ignored. */
void host_api_stop(struct host_api *a);

#endif
