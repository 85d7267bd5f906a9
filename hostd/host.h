/* The host: every desktop defined here, what the API may do to them, and their
 * supervision. Create, start, stop (polite, then forced), destroy, tickets,
 * capacity and the heartbeat's contents; a tick that notices ended VMMs
 * (reported as failed, with the serial console's last lines, unless they were
 * asked to stop or the guest powered off), finishes starts and escalates stops;
 * and on start-up the re-adoption of VMMs still running from a previous hostd.
 * One lock; callers need no other. Not HTTP. */
#ifndef VDI_HOSTD_HOST_H
#define VDI_HOSTD_HOST_H

#include <jansson.h>
#include <stddef.h>

#include "hostd/conf.h"
#include "hostd/desktop.h"
#include "hostd/tickets.h"

struct host;

/* Makes the directories, probes the engines, loads stored desktops and
 * re-adopts their VMMs. self is vdi-hostd's own path (VMMs are started through
 * `vdi-hostd --monitor`). Returns the host (host_close()) or NULL with a log
 * line. c must outlive the host. */
struct host *host_open(const struct conf *c, const char *self);
/* Frees the host; VMMs keep running and are re-adopted by the next hostd. */
void host_close(struct host *h);

/* The API's operations. Each returns 0 with *out set (a new reference; NULL for
 * destroy) or a negative errno with a message in err: -EINVAL bad input,
 * -ENOENT no such desktop, -EEXIST id taken, -EBUSY wrong state, -ENOSPC a
 * limit reached, -ENOMEM not enough free memory on the host, -ENOTSUP not
 * offered by the engine, -EIO the VMM or a tool failed. */
int host_create(struct host *h, const json_t *body, json_t **out, char *err, size_t errlen);
int host_start(struct host *h, const char *id, json_t **out, char *err, size_t errlen);
int host_stop(struct host *h, const char *id, const json_t *body, json_t **out, char *err,
	      size_t errlen);
int host_destroy(struct host *h, const char *id, char *err, size_t errlen);
int host_get(struct host *h, const char *id, json_t **out, char *err, size_t errlen);
int host_set_ticket(struct host *h, const char *id, const json_t *body, json_t **out, char *err,
		    size_t errlen);
json_t *host_list(struct host *h);
json_t *host_capacity(struct host *h);

/* The most the capacity report says: figures beyond (or below zero) are clamped, so a
 * bad reading (sysconf()'s -1, a /proc/meminfo line, a damaged stored definition)
 * never reaches the broker as a number it would overflow on. Far beyond a real host:
 * Linux's NR_CPUS limit, 4 PiB of memory, a million desktops. */
#define HOST_CPUS_MAX	    8192
#define HOST_MEMORY_MAX_MIB (1LL << 32)
#define HOST_DESKTOPS_MAX   (1LL << 20)

/* The host's figures as read, before clamping; memory -1 when unknown. */
struct host_figures {
	long long hf_cpus;
	long long hf_memory_total_mib, hf_memory_available_mib, hf_memory_committed_mib;
	long long hf_running, hf_defined, hf_max_desktops;
};

/* The capacity object of host_id with f's figures clamped (unknown memory, -1, stays
 * -1), without the engines. A new reference, or NULL. */
json_t *host_capacity_json(const char *host_id, const struct host_figures *f);
/* What a heartbeat carries: host id, time, capacity, each desktop's state. */
json_t *host_heartbeat(struct host *h);

/* Supervision: call every few hundred milliseconds. */
void host_tick(struct host *h);

/* For the relay: the VNC socket of a running desktop. 0 or -ENOENT / -EBUSY. */
int host_vnc_socket(struct host *h, const char *id, char *path, size_t len);
struct tickets *host_tickets(struct host *h);

#endif
