/* vdi-hostd's monitoring: VMM starts and failures and relay sessions counted as they
 * happen (lock-free, lib/metrics.h), the host's desktops, capacity and engines at each
 * scrape, the text of GET /metrics, and whether hostd can run desktops
 * (GET /readyz). Counters are the process's. Serving them is api.c's. */
#ifndef VDI_HOSTD_METRICS_H
#define VDI_HOSTD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hostd/conf.h"
#include "hostd/desktop.h"

/* A VMM spawned for a desktop on engine e. */
void hostd_metrics_vmm_start(enum desktop_engine e);
/* A VMM that ended without being asked to (the desktop failed), or a start refused
 * after the engine was chosen (it could not be spawned). */
void hostd_metrics_vmm_failure(enum desktop_engine e);
/* A relay session admitted (its ticket redeemed), and one ended having moved these
 * bytes. */
void hostd_metrics_relay_open(void);
void hostd_metrics_relay_close(uint64_t from_client, uint64_t to_client);

/* Whether the engine can run desktops here, as its start-up probe found (the reason
 * when not is in the capacity report). */
bool hostd_engine_available(const struct conf *c, enum desktop_engine e);
/* The text of GET /metrics (Prometheus format 0.0.4) from host_list()'s list and
 * host_capacity()'s report (either NULL: left out): a new string, or NULL. */
char *hostd_metrics_text(const struct conf *c, const json_t *list, const json_t *cap);
/* Whether hostd can serve: at least one engine available; otherwise false with a
 * one-line reason in why. */
bool hostd_ready(const struct conf *c, char *why, size_t len);

#endif
