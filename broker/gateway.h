/* The display gateway on the broker's HTTPS port: GET /gateway?ticket= upgraded to a
 * WebSocket (browsers) or a raw "vdi-tunnel/1" stream (native clients), joined to the
 * desktop's display (a host's TLS display relay, or a manual desktop's VNC endpoint)
 * by one thread per connection. Not the HTTP layer (web/) nor ticket logic (tickets.c). */
#ifndef VDI_BROKER_GATEWAY_H
#define VDI_BROKER_GATEWAY_H

#include "broker/broker.h"
#include "web/server.h"

struct gateway;

/* Returns the gateway of b (gateway_free()) or NULL with err set. */
struct gateway *gateway_new(struct broker *b, char *err, size_t errlen);
/* Ends every connection (their sessions become disconnected) and frees gw. Call before
 * web_stop() of the server whose connections it holds. */
void gateway_free(struct gateway *gw);
/* The /gateway handler: checks the upgrade, the Origin and the ticket and answers. */
void gateway_handle(struct gateway *gw, struct web_request *req, const char *origin);

#endif
