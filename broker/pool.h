/* Pools as the admin API writes them and as policy/ reads them: checking and completing
 * a create or update request into the record the store keeps, and turning stored pool,
 * desktop and session records into policy/'s structs (strings borrowed from the
 * records). Not the store and not HTTP. */
#ifndef VDI_BROKER_POOL_H
#define VDI_BROKER_POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "broker/store.h"
#include "policy/policy.h"

#define POOL_MAX_RULES 32
#define POOL_MAX_HOSTS 64

/* True for 1..24 of a-z 0-9 - starting with a letter or digit (also desktop and host
 * id rules: pool_id_valid(id, 40)). */
bool pool_id_valid(const char *id, size_t max);

/* Checks a create (existing NULL) or update request and returns the complete record to
 * store (a new reference), or NULL with the reason in err. Update requests may carry
 * any subset of the fields; the rest is kept from existing. */
json_t *pool_from_request(const json_t *req, const json_t *existing, char *err, size_t errlen);

/* A stored pool as policy/ sees it. Strings are borrowed from the record. */
struct pool_view {
	struct policy_pool pv_pool;
	struct policy_cidr pv_nets[POOL_MAX_RULES];
	struct policy_window pv_windows[POOL_MAX_RULES];
	struct policy_entitlement *pv_ents;
	const char *pv_hosts[POOL_MAX_HOSTS];
	char *pv_hosts_buf;
};

/* The POLICY_ENGINE_ bit of a template's engine name (NULL: the host's default). */
unsigned pool_engine_bit(const char *engine);

/* Fills v from a stored pool record, which must outlive v. Returns 0 or -ENOMEM /
 * -EINVAL (a record that no longer parses: the pool is treated as disabled). Release
 * with pool_view_free(). */
int pool_view_init(struct pool_view *v, const struct pool_rec *pool);
void pool_view_free(struct pool_view *v);
/* Whether a pool record of a request (pool_from_request()) is of a manual pool. */
bool pool_is_manual(const json_t *pool);

/* Desktop and session records from the store as policy/ structs; out must have room
 * for dl_n / sl_n entries. Strings are borrowed from the records. */
void pool_desktops_view(const struct desktop_list *desktops, struct policy_desktop *out);
void pool_sessions_view(const struct session_list *sessions, struct policy_session *out);
/* One session as policy/ sees it (strings borrowed from s). */
struct policy_session pool_session_view(const struct session_rec *s);
enum policy_desktop_state pool_desktop_state(enum desktop_state state);
enum policy_session_state pool_session_state(enum session_state state);
/* The state to store for policy's state of a session. */
enum session_state pool_stored_session_state(enum policy_session_state state);

#endif
