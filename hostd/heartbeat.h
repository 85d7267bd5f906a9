/* Heartbeats to the broker: every [broker] heartbeat_interval a thread POSTs
 * the host's capacity and each desktop's state (host_heartbeat()) as JSON to
 * [broker] heartbeat_url with libcurl, presenting hostd's certificate and
 * checking the broker's against the CA. Failures are logged when they start and
 * when they end, not every second. */
#ifndef VDI_HOSTD_HEARTBEAT_H
#define VDI_HOSTD_HEARTBEAT_H

#include "hostd/conf.h"
#include "hostd/host.h"

struct heartbeat;

/* Starts the thread; NULL (no thread) when no URL is configured or on failure
 * (logged). */
struct heartbeat *heartbeat_start(const struct conf *c, struct host *h);
void heartbeat_stop(struct heartbeat *hb);

#endif
