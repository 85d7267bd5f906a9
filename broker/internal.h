/* The broker core's private header: the broker object, and what its files
 * (broker/README.md) call of each other, listed by the file that defines it. Files lower in this
 * list never call files above them: util, core, sessions, tickets, hosts, snapshot, sizing,
 * provision, then the jobs on top (websession, desktops, connect, admin, maintain, broker). api.c
 * and other folders use broker.h only; gateway.c still reads b_store and b_cfg here (to be moved to
 * broker_config() and the tickets' interface when gateway.c is next changed). */
#ifndef VDI_BROKER_INTERNAL_H
#define VDI_BROKER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/identity.h"
#include "broker/broker.h"
#include "broker/pool.h"
#include "broker/util.h"
#include "policy/assign.h"
#include "policy/lifecycle.h"
#include "policy/rules.h"

/* The broker object, opaque outside the broker's own files. */
struct broker {
	const struct broker_config *b_cfg;
	struct store *b_store;
	struct auth *b_auth;
	struct hostclient *b_hosts; /* NULL without [hosts] cert/key/ca */
	struct gateway *b_gateway;  /* the display gateway, while the API runs */
	pthread_t b_thread;
	bool b_thread_running;
	pthread_mutex_t b_lock;
	pthread_cond_t b_wake;
	bool b_stop, b_kicked;
	int64_t b_last_purge;
	int64_t b_last_recheck; /* accounts.c */
	size_t b_recheck_next;
	/* audit.c: failures of clients not signed in, counted per address and minute */
	pthread_mutex_t b_tally_lock;
	struct failure_tally *b_tallies;
	size_t b_ntallies;
	/* Registered host id -> {"message", "time"}: the last time something was refused
	 * for presenting another certificate than that host's (admin hosts list). */
	pthread_mutex_t b_alerts_lock;
	json_t *b_host_alerts;
};

/* vCPUs a host offers per CPU it has (placement's "vcpus free"). */
#define HOST_VCPU_OVERCOMMIT 4
/* The most a heartbeat's figures count: larger ones (and negative ones) are clamped, so
 * the arithmetic on them cannot overflow. Far beyond any real host: Linux's NR_CPUS
 * limit, 4 PiB of memory, a million desktops. */
#define HOST_CPUS_MAX	    8192
#define HOST_MEMORY_MAX_MIB (INT64_C(1) << 32)
#define HOST_DESKTOPS_MAX   (1 << 20)

/* ---- sessions.c ---- */
/* Stores session's next state and carries out the desktop action of t (refresh or
 * destroy an automated pool's desktop). Inside a transaction. Returns 0 or -errno. */
int session_apply_transition(struct broker *b, const struct session_rec *session,
			     const struct pool_view *pv, const struct policy_transition *t,
			     int64_t now);
/* Desktop d leaves service (its host is gone, it stopped there, an administrator
 * stopped it): the live sessions on it end under its pool's policy, each audited as
 * session_lost with detail, and it moves from the state it was read in to next. pool is
 * d's pool when the caller holds it, NULL to look it up. Inside a transaction. */
void desktop_out_of_service(struct broker *b, const struct desktop_rec *d,
			    const struct pool_rec *pool, enum desktop_state next, int64_t now,
			    const char *detail);
/* Maintenance: disconnect timeouts, and sessions whose ticket was never used. */
void sessions_tick(struct broker *b, int64_t now);

/* ---- tickets.c ---- */
/* Inserts a ticket for session, expiring after ticket_lifetime; the clear ticket goes to
 * ticket (BROKER_TICKET_LEN + 1 bytes). Returns 0 or -errno. */
int ticket_issue(struct broker *b, const char *session, const char *user, const char *desktop,
		 int64_t now, char *ticket, int64_t *expires);

/* ---- hosts.c ---- */
struct policy_host host_view(const struct host_rec *h);
/* What placement needs from a heartbeat's capacity object (NULL: all zero), clamped. */
struct host_capacity {
	int64_t hc_mem_free_mib;
	int hc_vcpus_free; /* cpus * HOST_VCPU_OVERCOMMIT - desktops running; may be < 0 */
	int hc_desktops, hc_max_desktops;
};
struct host_capacity host_capacity_of(const json_t *cap);
/* The host a new desktop of pv goes to, or NULL with *why. Returns a new string. */
char *hosts_place(struct broker *b, struct pool_view *pv, enum policy_reason *why);
/* Whether some host could run a desktop of the pool at all, room aside: POLICY_OK,
 * POLICY_NO_HOST (none up and allowed) or POLICY_NO_ENGINE, with each host's reason for
 * its engine in detail ("host-a: vdi-hv: cannot open /dev/kvm: ..."). */
enum policy_reason hosts_can_run(struct broker *b, const struct pool_view *pv, char *detail,
				 size_t len);
/* Maintenance: hosts silent for host_timeout marked down, their desktops lost. */
void hosts_expire(struct broker *b, int64_t now);
/* Records (and logs) that a certificate that does not name host was refused for it
 * (message printf-formatted): admins see it in the hosts list until the host proves
 * who it is on its API or relay. Only for registered hosts. */
void hosts_identity_refused(struct broker *b, const char *host, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* host's certificate named it on its API or relay: its alert goes. */
void hosts_identity_proven(struct broker *b, const char *host);
/* host's alert as {"message", "time"} (a new reference), or NULL. */
json_t *hosts_identity_alert(struct broker *b, const char *host);

/* ---- snapshot.c ---- */
/* Arrays of policy views over the store's records, for policy_assign(). */
struct snapshot {
	struct desktop_list sn_desktops;
	struct session_list sn_sessions;
	struct policy_desktop *sn_pd;
	struct policy_session *sn_ps;
};

void snapshot_user(const struct broker_user *u, struct policy_user *pu);
void snapshot_client(const char *addr, int64_t now, struct policy_addr *pa,
		     struct policy_client *pc);
/* The desktops of pool and the live sessions of user. Returns 0 or -errno; free sn
 * with snapshot_free() either way. */
int snapshot_load(struct broker *b, const char *pool, const char *user, struct snapshot *sn);
void snapshot_free(struct snapshot *sn);
/* policy_assign() for u on pv over sn. */
struct policy_assignment snapshot_assign(struct broker *b, struct pool_view *pv,
					 const struct broker_user *u,
					 const struct policy_client *pc, struct snapshot *sn);
/* The desktop id of sn, or NULL (borrowed). */
const struct desktop_rec *snapshot_desktop(const struct snapshot *sn, const char *id);

/* ---- sizing.c ---- */
/* A deleting pool: its desktops go; once none is left, the pool. */
void pool_retire(struct broker *b, const char *pid, int64_t now);
/* Maintenance: automated pools sized, deleting pools retired. */
void pools_tick(struct broker *b, int64_t now);

/* ---- provision.c ---- */
/* Maintenance: each desktop on a host moved one step towards its state. */
void desktops_tick(struct broker *b, int64_t now);
/* One more failure of desktop d (cause: why) against its pool: counted for the pool's
 * restart back-off and logged; the degraded_after-th in a row is logged and audited as
 * pool_degraded. Inside a transaction or not. */
void pool_count_failure(struct broker *b, const struct desktop_rec *d, const char *cause,
			int64_t now);

/* ---- template.c ---- */
/* Checks the template of rec (a pool record of pool_from_request(), automated) with
 * the hosts that could run the pool. Returns BROKER_OK, with *warning a new string
 * (free()) when no host could check it, else NULL; or BROKER_BAD_REQUEST with every
 * problem of the first host that found some, each naming the file and the host. No
 * store transaction may be held. */
enum broker_outcome template_check_pool(struct broker *b, const json_t *rec, char **warning,
					struct broker_result *res);

/* ---- audit.c ---- */
/* A failure of a client not signed in (a wrong login, an unknown ticket): the first of
 * an address and action in a minute is written at once, the others of that minute are
 * counted and written as one row when it is over (audit_flush()). */
void audit_failure(struct broker *b, const char *actor, const char *action, const char *target,
		   const char *addr, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Writes the counts of minutes that are over (all of them with all, at the end). */
void audit_flush(struct broker *b, int64_t now, bool all);

/* ---- accounts.c ---- */
/* Ends every web session and live desktop session of username now; why goes to the
 * log and the audit. */
void accounts_end_user(struct broker *b, const char *username, const char *why);
/* Maintenance: users with web sessions looked up again every [broker] account_recheck. */
void accounts_tick(struct broker *b, int64_t now);

/* ---- websession.c ---- */
/* auth/'s lookup of a local user (ctx: the broker). */
int websession_lookup_user(void *ctx, const char *username, struct identity **id, char **hash);
/* Whether a user with these groups is an administrator ([broker] admin_users and
 * admin_groups). */
bool websession_is_admin(const struct broker_config *cfg, const char *username,
			 const char *const *groups, size_t ngroups);
/* auth/'s store of a fresh hash for a local user whose login used a weaker one. */
int websession_set_user_hash(void *ctx, const char *username, const char *password_hash);

#endif
