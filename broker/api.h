/* The broker's HTTPS listeners: the user-facing JSON API under /api/v1/ (docs/api.md),
 * the portal's static files and the gateway's entry point on [http] listen, and the
 * mutual-TLS heartbeat listener for hosts on [hosts] heartbeat_listen. */
#ifndef VDI_BROKER_API_H
#define VDI_BROKER_API_H

#include <stddef.h>

#include "broker/broker.h"

/* Starts the listeners (generating a self-signed certificate when none is configured).
 * Returns the API (api_stop()) or NULL with err set. */
struct api *api_start(struct broker *b, char *err, size_t errlen);
void api_stop(struct api *a);

#endif
