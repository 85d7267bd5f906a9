/* Helpers shared by the broker's own modules (broker.c, maintain.c, api.c): JSON record
 * access, random ids, ticket hashing, policy views of hosts, and applying a session
 * transition. Not for other folders: their interface is broker.h and store.h. */
#ifndef VDI_BROKER_INTERNAL_H
#define VDI_BROKER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/pool.h"
#include "policy/lifecycle.h"

/* vCPUs a host offers per CPU it has (placement's "vcpus free"). */
#define HOST_VCPU_OVERCOMMIT 4

const char *jstr(const json_t *o, const char *key);
int64_t jint(const json_t *o, const char *key);
/* 2 * bytes lowercase hex characters and a NUL into out. Returns 0 or -EIO. */
int random_hex(char *out, size_t bytes);
/* The hex SHA-256 of a ticket (what the store keeps). Returns 0 or -EIO. */
int ticket_hash(const char *ticket, char out[65]);
bool ticket_well_formed(const char *ticket);
struct policy_host host_view(const json_t *host);
/* Stores session's next state and carries out the desktop action of t (refresh or
 * destroy an automated pool's desktop). Inside a transaction. Returns 0 or -errno. */
int apply_transition(struct broker *b, const json_t *session, const struct pool_view *pv,
		     const struct policy_transition *t, int64_t now);

#endif
