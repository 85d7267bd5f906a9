/* The broker's state: local users, hosts, pools and entitlements, desktops, sessions,
 * display tickets (hashed), web sessions (token hashes) and the audit log, in SQLite
 * (WAL, synchronous=FULL: a commit is on disk before the broker acknowledges it), with a
 * versioned schema migrated forward at open. Everything the broker stores goes through
 * this interface, so the engine can change (PostgreSQL) without touching the callers.
 *
 * Hosts, pools, desktops, sessions and redeemed tickets come back as typed records
 * (struct host_rec, struct pool_rec, struct desktop_rec, struct session_rec, struct
 * ticket_rec), their states and kinds as enums named in one table each here. Other
 * records (users, web sessions, the audit log) come back as jansson objects (a new
 * reference; json_decref() it) whose keys are the column names listed per table below;
 * 0/1 flags are JSON booleans and list-valued columns JSON arrays. Functions returning
 * such a record return NULL with errno ENOENT when there is none, another errno on
 * failure. Actions return 0 (or a count) or a negative errno: -ENOENT, -EEXIST (a
 * unique key), -EIO. Thread-safe. */
#ifndef VDI_BROKER_STORE_H
#define VDI_BROKER_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/desktop_life.h"

struct store;

/* Opens (creating) the database at path and applies missing migrations, each in a
 * transaction of its own. Returns the store (store_close()) or NULL with err set. */
struct store *store_open(const char *path, char *err, size_t errlen);
void store_close(struct store *s);
/* The schema version in force (the number of migrations applied). */
int store_schema_version(struct store *s);
/* The newest schema version this build knows. */
int store_schema_latest(void);

/* How long write transactions took, from store_begin() (waiting for the lock included)
 * to their commit or rollback: the store's own histogram (lib/metrics.h), for the
 * broker's metrics. */
struct metrics_histogram *store_transaction_seconds(struct store *s);

/* A write transaction (SQLite BEGIN IMMEDIATE), held with the store's lock until
 * store_commit() or store_rollback(): other threads' store calls wait, so what is read
 * inside cannot change before the writes that depend on it. Calls made outside a
 * transaction each run in their own. store_commit() returns 0 once the transaction is
 * durable, or -EIO (it is then rolled back). */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* ---- local users: username, password_hash, display_name, mail, groups [], created ---- */
json_t *store_user_get(struct store *s, const char *username);
/* Without password hashes, by name. */
json_t *store_users_list(struct store *s);
/* Everyone who signed in, whatever the backend, as far as the store remembers (audited
 * logins, web sessions, desktop sessions): [{"username", "last_login", "display_name",
 * "groups"}] by name, with last_login 0 when no login row is left, and the display name
 * and groups of their newest web session (null without one). */
json_t *store_users_seen(struct store *s);
int store_user_add(struct store *s, const char *username, const char *password_hash,
		   const char *display_name, const char *mail, const json_t *groups, int64_t now);
/* Replaces a local user's password hash (a login upgrading a weak one). -ENOENT if absent. */
int store_user_set_hash(struct store *s, const char *username, const char *password_hash);
int store_user_delete(struct store *s, const char *username);

/* ---- hosts: id, url, relay, enabled, up, last_heartbeat, mem_free_mib, vcpus_free,
 * desktops, max_desktops, capacity {} (the last heartbeat's), created. Hosts come back
 * as typed records. ---- */

/* Whether a host's heartbeats arrive (stored as the up flag, named host_state_name()). */
enum host_state {
	HOST_DOWN,
	HOST_UP,
};

/* A host as stored. Strings are the record's own. */
struct host_rec {
	char *hr_id, *hr_url;
	char *hr_relay; /* its display relay, host:port; "" for none */
	bool hr_enabled;
	enum host_state hr_state;
	int64_t hr_last_heartbeat;
	/* from the last heartbeat */
	int64_t hr_mem_free_mib;
	int hr_vcpus_free, hr_desktops, hr_max_desktops;
	json_t *hr_capacity; /* as the host sent it (a reference); NULL before any */
	int64_t hr_created;
};

struct host_list {
	struct host_rec *hl_recs;
	size_t hl_n;
};

const char *host_state_name(enum host_state state);
/* The record as the admin API shows it: an object keyed by the column names above. */
json_t *host_rec_json(const struct host_rec *h);
void host_rec_release(struct host_rec *h);
void host_list_free(struct host_list *l);

/* The hosts by id into out (host_list_free() it either way). Returns 0 or -errno. */
int store_hosts_list(struct store *s, struct host_list *out);
/* Host id into out (host_rec_release() it). Returns 0, -ENOENT or -errno. */
int store_host_get(struct store *s, const char *id, struct host_rec *out);
int store_host_add(struct store *s, const char *id, const char *url, const char *relay,
		   int64_t now);
/* A disabled host gets no new desktops (placement skips it); its own keep running. */
int store_host_set_enabled(struct store *s, const char *id, bool enabled);
int store_host_delete(struct store *s, const char *id);
/* Records a heartbeat. Returns 1 when the host was down until now, 0, or -ENOENT. */
int store_host_heartbeat(struct store *s, const char *id, int64_t now, int64_t mem_free_mib,
			 int vcpus_free, int desktops, int max_desktops, const json_t *capacity);
/* Marks hosts up but silent since before `before` down; those it marked go to out (as
 * they were before: host_list_free() it either way). Returns 0 or -errno. */
int store_hosts_expire(struct store *s, int64_t before, struct host_list *out);

/* ---- pools: id, name, kind (dedicated|floating), source (automated|manual), enabled,
 * min, max, spare, memory_mib, vcpus, disconnect_timeout, logoff_action
 * (refresh|destroy), template {}, networks, windows, utc_offset, hosts (text lists as
 * given), deleting, created, entitlements [{kind (user|group), name}], template_warning
 * (why its template was not checked on a host, or null). Pools come back as
 * typed records; they are written as JSON objects (store_pool_put()). ---- */

/* Each stored as its name (pool_kind_name()...). */
enum pool_kind {
	POOL_DEDICATED,
	POOL_FLOATING,
};

enum pool_source {
	POOL_AUTOMATED,
	POOL_MANUAL,
};

/* What becomes of an automated pool's desktop when its user logs off. */
enum pool_logoff_action {
	POOL_LOGOFF_REFRESH,
	POOL_LOGOFF_DESTROY,
};

enum entitlement_kind {
	ENTITLEMENT_USER,
	ENTITLEMENT_GROUP,
};

struct entitlement_rec {
	enum entitlement_kind er_kind;
	char *er_name;
};

/* A pool as stored, with its entitlements. Strings are the record's own. */
struct pool_rec {
	char *pr_id, *pr_name;
	enum pool_kind pr_kind;
	enum pool_source pr_source;
	bool pr_enabled;
	int pr_min, pr_max, pr_spare;
	int pr_memory_mib, pr_vcpus;
	int pr_disconnect_timeout; /* seconds; -1: never */
	enum pool_logoff_action pr_logoff_action;
	json_t *pr_template; /* what hostd creates its desktops from (a reference); or NULL */
	char *pr_networks, *pr_windows, *pr_hosts; /* rules as text, as given */
	int pr_utc_offset;			   /* minutes */
	bool pr_deleting;
	int64_t pr_created;
	/* Restart back-off: desktops failed in a row (reset by a desktop that stays ready
	 * for POOL_HEALTHY_S or by an update of the pool), no new start before
	 * pr_retry_at, and the last failure's cause. */
	int pr_failures;
	int64_t pr_retry_at;
	char *pr_failure;
	char *pr_template_warning;	 /* why the template was not checked on a host; or NULL */
	struct entitlement_rec *pr_ents; /* by kind, then name */
	size_t pr_nents;
};

/* Back-off after the n-th failure in a row: 1 s doubling, at most POOL_RETRY_MAX_S. */
#define POOL_RETRY_MAX_S 300
/* A desktop ready this long ends its pool's run of failures. */
#define POOL_HEALTHY_S 60

struct pool_list {
	struct pool_rec *pl_recs;
	size_t pl_n;
};

const char *pool_kind_name(enum pool_kind kind);
const char *pool_source_name(enum pool_source source);
const char *pool_logoff_action_name(enum pool_logoff_action action);
const char *entitlement_kind_name(enum entitlement_kind kind);
/* The value named name; -EINVAL for none. */
int pool_kind_parse(const char *name, enum pool_kind *kind);
int pool_source_parse(const char *name, enum pool_source *source);
int pool_logoff_action_parse(const char *name, enum pool_logoff_action *action);
int entitlement_kind_parse(const char *name, enum entitlement_kind *kind);
/* The record as the admin API shows it: an object keyed by the column names above. */
json_t *pool_rec_json(const struct pool_rec *p);
void pool_rec_release(struct pool_rec *p);
void pool_list_free(struct pool_list *l);

/* The pools not being deleted, by id, into out (pool_list_free() it either way).
 * Returns 0 or -errno. */
int store_pools_list(struct store *s, struct pool_list *out);
/* Pool id (also one being deleted) into out (pool_rec_release() it). Returns 0, -ENOENT
 * or -errno. */
int store_pool_get(struct store *s, const char *id, struct pool_rec *out);
/* Inserts (create) or replaces the settings of (update) the pool described by pool, an
 * object with the columns above (checked by the caller). */
int store_pool_put(struct store *s, const json_t *pool, bool create, int64_t now);
/* One more failure of a desktop of pool id, with its cause: the pool waits 1 s, 2 s,
 * 4 s ... up to POOL_RETRY_MAX_S before its next start. Returns the failures in a row,
 * -ENOENT or -errno. */
int store_pool_failed(struct store *s, const char *id, const char *cause, int64_t now);
/* Sets (or with NULL clears) why pool id's template could not be checked. 0, -ENOENT or
 * -errno. */
int store_pool_set_template_warning(struct store *s, const char *id, const char *warning);
/* Ends pool id's run of failures. Returns 1 when there was one, 0, or -errno. */
int store_pool_healthy(struct store *s, const char *id);
/* Marks a pool as being deleted (hidden; removed once its desktops are gone). */
int store_pool_mark_deleting(struct store *s, const char *id);
int store_pool_delete(struct store *s, const char *id);
int store_entitlement_add(struct store *s, const char *pool, const char *kind, const char *name);
int store_entitlement_remove(struct store *s, const char *pool, const char *kind, const char *name);

/* ---- desktops: id, pool_id, host_id, address, vnc_password, owner, state, host_state
 * (as the host last said), on_host, since, created, in_use (a live session is on it).
 * Desktops come back as typed records, not JSON. ---- */

/* What the broker wants of a desktop (stored as its name, desktop_state_name()). */
enum desktop_state {
	DESKTOP_ANY = -1, /* store_desktop_set_state()'s "from": whatever it is */
	DESKTOP_PROVISIONING,
	DESKTOP_READY,
	DESKTOP_STOPPED,
	DESKTOP_REFRESHING,
	DESKTOP_DELETING,
	DESKTOP_ERROR,
	DESKTOP_LOST,
};

/* A desktop as stored. Strings are the record's own (NULL for a NULL column). */
struct desktop_rec {
	char *dr_id, *dr_pool, *dr_host, *dr_address, *dr_vnc_password, *dr_owner;
	enum desktop_state dr_state;
	char *dr_host_state;	   /* as its host last reported it; NULL: not yet */
	char *dr_failure;	   /* why it last failed, as its host said; NULL: never */
	json_t *dr_failure_detail; /* and how: {exit, serial_tail}; NULL: not said */
	bool dr_on_host;	   /* created on its host (as far as the broker knows) */
	bool dr_in_use;		   /* a live session is on it */
	int64_t dr_since;	   /* when it entered dr_state */
	int64_t dr_created;
};

struct desktop_list {
	struct desktop_rec *dl_recs;
	size_t dl_n;
};

const char *desktop_state_name(enum desktop_state state);
/* The state named name; -EINVAL for no state. */
int desktop_state_parse(const char *name, enum desktop_state *state);
/* Where d is in its life (lib/desktop_life.h), from what the broker decided (its state,
 * whether a host has it, a session on it) and what its host last said of its VMM. */
enum desktop_life desktop_rec_life(const struct desktop_rec *d);
/* The record as the admin API shows it: an object keyed by the column names above, and
 * its "life". */
json_t *desktop_rec_json(const struct desktop_rec *d);
void desktop_rec_release(struct desktop_rec *d);
void desktop_list_free(struct desktop_list *l);

/* The desktops of pool and/or host (NULL: any), ready ones first, then by creation, into
 * out (desktop_list_free() it either way). Returns 0 or -errno. */
int store_desktops_list(struct store *s, const char *pool, const char *host,
			struct desktop_list *out);
/* Desktop id into out (desktop_rec_release() it). Returns 0, -ENOENT or -errno. */
int store_desktop_get(struct store *s, const char *id, struct desktop_rec *out);
int store_desktop_add(struct store *s, const char *id, const char *pool, const char *host,
		      const char *address, const char *vnc_password, const char *owner,
		      enum desktop_state state, int64_t now);
/* Moves desktop id to state `to` if it is in state `from` (DESKTOP_ANY: any). Returns 1
 * when it moved, 0 when it was not in `from`, or a negative errno. */
int store_desktop_set_state(struct store *s, const char *id, enum desktop_state from,
			    enum desktop_state to, int64_t now);
/* Moves desktop id from state `from` to error, with cause as its failure. Returns 1
 * when it moved, 0 when it was not in `from`, or a negative errno. */
int store_desktop_set_error(struct store *s, const char *id, enum desktop_state from,
			    const char *cause, int64_t now);
/* The desktops of pool in error go to deleting, to be replaced. Returns how many, or a
 * negative errno. */
int store_pool_replace_failed(struct store *s, const char *pool, int64_t now);
int store_desktop_set_owner(struct store *s, const char *id, const char *owner);
int store_desktop_set_host_state(struct store *s, const char *id, const char *host_state);
/* Why desktop id last failed (NULL: forget it), and how (detail: {exit, serial_tail},
 * as its host said; NULL: not said). */
int store_desktop_set_failure(struct store *s, const char *id, const char *cause,
			      const json_t *detail);
int store_desktop_set_on_host(struct store *s, const char *id, bool on_host);
int store_desktop_delete(struct store *s, const char *id);

/* ---- sessions: id, username, pool_id, desktop_id, state, attached (a client used a
 * ticket), client_addr, created, since. Sessions come back as typed records. ---- */

/* Where a session is (stored as its name, session_state_name()). */
enum session_state {
	SESSION_CONNECTED,
	SESSION_DISCONNECTED,
	SESSION_LOGGED_OFF,
};

/* A session as stored. Strings are the record's own (NULL for a NULL column). */
struct session_rec {
	char *sr_id, *sr_user, *sr_pool, *sr_desktop, *sr_client_addr;
	enum session_state sr_state;
	bool sr_attached; /* a client used a ticket of it */
	int64_t sr_since; /* when it entered sr_state */
	int64_t sr_created;
};

struct session_list {
	struct session_rec *sl_recs;
	size_t sl_n;
};

const char *session_state_name(enum session_state state);
/* The state named name; -EINVAL for no state. */
int session_state_parse(const char *name, enum session_state *state);
/* The record as the admin API shows it: an object keyed by the column names above. */
json_t *session_rec_json(const struct session_rec *r);
void session_rec_release(struct session_rec *r);
void session_list_free(struct session_list *l);

/* Sessions of user and/or pool (NULL: any); live ones only (not logged off) if live;
 * connected ones last, then the newest state change first, into out (session_list_free()
 * it either way). Returns 0 or -errno. */
int store_sessions_list(struct store *s, const char *user, const char *pool, bool live,
			struct session_list *out);
/* Session id into out (session_rec_release() it). Returns 0, -ENOENT or -errno. */
int store_session_get(struct store *s, const char *id, struct session_rec *out);
/* -EEXIST when the desktop already has a live session. */
int store_session_add(struct store *s, const char *id, const char *user, const char *pool,
		      const char *desktop, enum session_state state, const char *client_addr,
		      int64_t now);
int store_session_set_state(struct store *s, const char *id, enum session_state state, int64_t now);
int store_session_set_attached(struct store *s, const char *id, bool attached);

/* ---- display tickets: hash, session_id, username, desktop_id, created, expires_at,
 * redeemed_at. A redeemed ticket comes back as a typed record. ---- */

/* A ticket as stored. Strings are the record's own. */
struct ticket_rec {
	char *tr_hash; /* the hex SHA-256 of the ticket */
	char *tr_session, *tr_user, *tr_desktop;
	int64_t tr_created, tr_expires_at;
	int64_t tr_redeemed_at; /* 0: not redeemed */
};

void ticket_rec_release(struct ticket_rec *t);

int store_ticket_add(struct store *s, const char *hash, const char *session, const char *user,
		     const char *desktop, int64_t now, int64_t expires_at);
/* Redeems a ticket atomically: UPDATE ... WHERE redeemed_at IS NULL AND expires_at > now,
 * one row changed or nothing. Returns 0 with the ticket in out (ticket_rec_release() it),
 * -EACCES (unknown, used or expired) or -errno. Call inside a transaction to act on the
 * result atomically. */
int store_ticket_redeem(struct store *s, const char *hash, int64_t now, struct ticket_rec *out);
/* Unredeemed, unexpired tickets of a session. */
int store_tickets_live(struct store *s, const char *session, int64_t now);

/* ---- web sessions: token_hash, username, display_name, groups [], admin, csrf,
 * bearer, client_addr, created, last_seen, expires_at ---- */
int store_websession_add(struct store *s, const char *token_hash, const char *username,
			 const char *display_name, const json_t *groups, bool admin,
			 const char *csrf, bool bearer, const char *client_addr, int64_t now,
			 int64_t expires_at);
/* The session if it exists, is not past expires_at and was seen after idle_before;
 * its last_seen moves to now (written at most once a minute). */
json_t *store_websession_get(struct store *s, const char *token_hash, int64_t now,
			     int64_t idle_before);
int store_websession_delete(struct store *s, const char *token_hash);
/* The users with web sessions not past their lifetime: [{"username"}, ...] by name. */
json_t *store_websession_users(struct store *s, int64_t now);
/* A user's web sessions take their groups and admin role as they are now. */
int store_websessions_set_user(struct store *s, const char *username, const json_t *groups,
			       bool admin);
/* A user's web sessions not past their lifetime, newest first: [{"id" (the first 16
 * characters of the token's hash: names it, opens nothing), "client_addr", "bearer",
 * "admin", "created", "last_seen", "expires_at"}]. NULL: the store failed. */
json_t *store_websessions_of_user(struct store *s, const char *username, int64_t now);
/* Ends every web session of a user. Returns how many, or -errno. */
int store_websessions_delete_user(struct store *s, const char *username);

/* Deletes expired web sessions, tickets that ended before `before` and audit rows older
 * than audit_before. Returns how many rows went, or -errno. */
int store_purge(struct store *s, int64_t now, int64_t before, int64_t audit_before);

/* ---- audit log: id, time, actor, action, target, result, client_addr, detail ---- */
int store_audit(struct store *s, int64_t now, const char *actor, const char *action,
		const char *target, const char *result, const char *client_addr,
		const char *detail);
/* Newest first, at most limit, with id < before when before > 0. */
json_t *store_audit_list(struct store *s, int limit, int64_t before);

#endif
