/* The broker's monitoring: events counted as they happen (logins, connects, desktop
 * failures, the gateway; lock-free, lib/metrics.h), the figures read from the store at
 * each scrape (sessions, desktops, pools, hosts, its transaction times), the text of
 * GET /metrics, and whether the broker can serve (GET /readyz). Counters are the
 * process's: one broker per process. Serving them is api.c's. */
#ifndef VDI_BROKER_METRICS_H
#define VDI_BROKER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"

/* Why a desktop the broker wanted running was not: its host reported it stopped,
 * failed or missing, it was not running after provision_timeout, its host went
 * silent, or its host refused its template. */
enum broker_desktop_failure {
	BROKER_FAILURE_STOPPED,
	BROKER_FAILURE_FAILED,
	BROKER_FAILURE_MISSING,
	BROKER_FAILURE_PROVISION_TIMEOUT,
	BROKER_FAILURE_HOST_DOWN,
	BROKER_FAILURE_TEMPLATE,
	BROKER_FAILURES
};

void broker_metrics_login(enum broker_outcome o);
/* A connect request answered with o after seconds. */
void broker_metrics_connect(enum broker_outcome o, double seconds);
/* A ready desktop its host no longer runs: host_state is what the host reported
 * ("stopped", "missing"; "failed" is counted when the heartbeat says so). */
void broker_metrics_desktop_gone(const char *host_state);
void broker_metrics_desktop_failure(enum broker_desktop_failure why);
/* An owned desktop provisioned again after a failure or its host's loss. */
void broker_metrics_desktop_restart(void);
void broker_metrics_gateway_open(bool websocket);
/* A gateway connection ended, having moved these bytes. */
void broker_metrics_gateway_close(uint64_t from_client, uint64_t to_client);

/* The text of GET /metrics (Prometheus format 0.0.4): a new string (free()), or NULL
 * when out of memory. */
char *broker_metrics_text(struct broker *b);
/* Whether the broker can serve requests: its store opens and answers. Otherwise false
 * with a one-line reason in why. */
bool broker_ready(struct broker *b, char *why, size_t len);

#endif
