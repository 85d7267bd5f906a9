/* The display relay: one TLS port per host (OpenSSL; hostd's certificate; the
 * client's certificate checked against the CA unless [relay]
 * require_client_cert = no). A connection's first line is "VDI-TICKET
 * <ticket>\n"; a ticket the broker registered for a running desktop, unexpired
 * and unused, gets the connection spliced to that desktop's VNC unix socket.
 * Anything else is closed without a word. One thread per session with bounded
 * buffers (net/splice.h); view-only tickets on QEMU pass through
 * display/rfbfilter.h. */
#ifndef VDI_HOSTD_RELAY_H
#define VDI_HOSTD_RELAY_H

#include "hostd/conf.h"
#include "hostd/host.h"

struct relay;

/* Listens on [relay] listen. Returns the relay or NULL with a log line. */
struct relay *relay_start(const struct conf *c, struct host *h);
/* Stops listening, ends every session and waits for their threads. NULL is
 * ignored. */
void relay_stop(struct relay *r);

#endif
