/* The policy data model: pools with their entitlements and access rules, and the views
 * of desktops, sessions, hosts and users the broker fills from its store before asking
 * for a decision. Every decision carries a reason code (enum policy_reason) with a
 * stable name for audit logs and API errors. Plain data: strings are borrowed, never
 * owned or freed by policy/, and nothing here does I/O or reads a clock. */
#ifndef VDI_POLICY_POLICY_H
#define VDI_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a decision came out as it did. Names (policy_reason_name()) are stable API. */
enum policy_reason {
	POLICY_OK, /* "ok" */
	/* access */
	POLICY_NOT_ENTITLED,   /* "not_entitled": neither the user nor a group of theirs */
	POLICY_POOL_DISABLED,  /* "pool_disabled" */
	POLICY_ADDRESS_DENIED, /* "address_denied": client outside the pool's networks */
	POLICY_OUTSIDE_HOURS,  /* "outside_hours": no time window open now */
	/* assignment */
	POLICY_RECONNECT,	   /* "reconnect": the user's existing session */
	POLICY_OWN_DESKTOP,	   /* "own_desktop": dedicated desktop already assigned */
	POLICY_FREE_DESKTOP,	   /* "free_desktop": an unused desktop of the pool */
	POLICY_NEW_DESKTOP,	   /* "new_desktop": one is to be created */
	POLICY_SESSION_LIMIT,	   /* "session_limit": the user has as many sessions as allowed */
	POLICY_DESKTOP_BUSY,	   /* "desktop_busy": own desktop being prepared; retry */
	POLICY_DESKTOP_FAILED,	   /* "desktop_failed": own desktop in error or going away */
	POLICY_DESKTOPS_PREPARING, /* "desktops_preparing": pool full, some soon free; retry */
	POLICY_NO_DESKTOP,	   /* "no_desktop_available" */
	/* placement */
	POLICY_NO_HOST,	    /* "no_host": no host up and allowed for the pool */
	POLICY_NO_ENGINE,   /* "engine_unavailable": hosts up, none can run the engine */
	POLICY_NO_CAPACITY, /* "no_capacity": hosts up, none with room */
	/* maintenance */
	POLICY_STEADY,	      /* "steady": nothing to do */
	POLICY_BELOW_MINIMUM, /* "below_minimum" */
	POLICY_SPARE_LOW,     /* "spare_low" */
	POLICY_SPARE_EXCESS,  /* "spare_excess" */
	POLICY_ABOVE_MAXIMUM, /* "above_maximum" */
	POLICY_MANUAL_POOL,   /* "manual_pool": desktops are not created or destroyed */
	/* sessions */
	POLICY_CONNECTED,	   /* "connected" */
	POLICY_TAKEOVER,	   /* "takeover": a new client replaces the connected one */
	POLICY_DISCONNECTED,	   /* "disconnected": kept until the disconnect timeout */
	POLICY_LOGGED_OFF,	   /* "logged_off": the user logged off */
	POLICY_DISCONNECT_TIMEOUT, /* "disconnect_timeout": disconnected too long */
	POLICY_DESKTOP_LOST,	   /* "desktop_lost": its desktop or host went away */
	POLICY_INVALID_TRANSITION, /* "invalid_transition" */
	POLICY_REASON_COUNT
};

/* "not_entitled" etc.; "unknown" for a value out of range. */
const char *policy_reason_name(enum policy_reason reason);

/* An address or network, IPv4 or IPv6. IPv4-mapped IPv6 addresses are stored as IPv4. */
struct policy_addr {
	int pa_family; /* AF_INET or AF_INET6 */
	uint8_t pa_bytes[16];
};

struct policy_cidr {
	struct policy_addr pc_net;
	int pc_prefix; /* 0..32 or 0..128 */
};

/* A weekly window in the pool's local time: on the days in pw_days (bit 0 Monday ...
 * bit 6 Sunday) from pw_start to pw_end minutes after midnight (end exclusive, up to
 * 1440). When pw_end < pw_start the window runs overnight into the next day. */
struct policy_window {
	uint8_t pw_days;
	uint16_t pw_start;
	uint16_t pw_end;
};

/* Access rules of a pool. Empty lists mean "any address" and "any time". */
struct policy_rules {
	const struct policy_cidr *pr_networks; /* client must be in one */
	size_t pr_nnetworks;
	const struct policy_window *pr_windows; /* now must be in one */
	size_t pr_nwindows;
	int pr_utc_offset; /* minutes east of UTC the windows are written in (-720..840) */
};

enum policy_principal { POLICY_PRINCIPAL_USER, POLICY_PRINCIPAL_GROUP };

struct policy_entitlement {
	enum policy_principal pe_kind;
	const char *pe_name; /* username or group name, ASCII case-insensitive */
};

/* Dedicated: a user keeps the desktop first assigned to them. Floating: any free one
 * for the session's length. */
enum policy_pool_kind { POLICY_FLOATING, POLICY_DEDICATED };
/* Automated: desktops created on hosts from a template, between min and max with
 * spare ones ready. Manual: existing endpoints (e.g. physical PCs) entered by an admin. */
enum policy_provisioning { POLICY_AUTOMATED, POLICY_MANUAL };
/* What happens to a floating desktop when its session ends. */
enum policy_logoff_action { POLICY_LOGOFF_REFRESH, POLICY_LOGOFF_DESTROY };

struct policy_pool {
	const char *pool_id;
	bool pool_enabled;
	enum policy_pool_kind pool_kind;
	enum policy_provisioning pool_provisioning;
	int pool_min;	    /* automated: desktops kept in existence */
	int pool_max;	    /* automated: never more than this */
	int pool_spare;	    /* automated: free desktops kept ready (or on their way) */
	int pool_memory_mb; /* one desktop's size, for placement */
	int pool_vcpus;
	int pool_disconnect_timeout; /* seconds a disconnected session is kept; <0 forever */
	enum policy_logoff_action pool_logoff_action; /* floating pools */
	const struct policy_entitlement *pool_entitlements;
	size_t pool_nentitlements;
	struct policy_rules pool_rules;
	const char *const *pool_hosts; /* hosts it may run on; none listed: any */
	size_t pool_nhosts;
	unsigned pool_engine; /* the POLICY_ENGINE_ bit its desktops run on (automated) */
};

/* The authenticated user: name and every group, nested ones included (auth/ expands
 * them). */
struct policy_user {
	const char *pu_name;
	const char *const *pu_groups;
	size_t pu_ngroups;
};

/* Where and when a request comes from. */
struct policy_client {
	const struct policy_addr *pc_addr; /* NULL: unknown (refused by address rules) */
	int64_t pc_now;			   /* Unix time, seconds */
};

enum policy_desktop_state {
	POLICY_DESKTOP_PROVISIONING, /* being created */
	POLICY_DESKTOP_READY,	     /* running and reachable */
	POLICY_DESKTOP_STOPPED,	     /* exists, powered off (automated pools) */
	POLICY_DESKTOP_REFRESHING,   /* being reset to its template */
	POLICY_DESKTOP_DELETING,     /* going away */
	POLICY_DESKTOP_ERROR,	     /* needs an administrator */
};

struct policy_desktop {
	const char *desk_id;
	const char *desk_host;	/* NULL for manual endpoints */
	const char *desk_owner; /* dedicated pools: the user it belongs to; NULL: unassigned */
	enum policy_desktop_state desk_state;
	bool desk_in_use; /* a session (connected or disconnected) is on it */
};

enum policy_session_state {
	POLICY_SESSION_CONNECTED,
	POLICY_SESSION_DISCONNECTED,
	POLICY_SESSION_LOGGED_OFF,
};

struct policy_session {
	const char *sess_id;
	const char *sess_user;
	const char *sess_pool;
	const char *sess_desktop;
	enum policy_session_state sess_state;
	int64_t sess_since; /* Unix time of the last state change */
};

/* Engines a host can run desktops on now, as bits: the pool names one of them, or none
 * (the host's default engine). */
enum policy_engine {
	POLICY_ENGINE_QEMU = 1u << 0,
	POLICY_ENGINE_VDIHV = 1u << 1,
	POLICY_ENGINE_DEFAULT = 1u << 2, /* whichever the host uses when none is named */
};

struct policy_host {
	const char *host_id;
	unsigned host_engines;	  /* POLICY_ENGINE_ bits available on it */
	bool host_up;		  /* heartbeats arriving */
	bool host_enabled;	  /* not draining (vdictl hosts drain) */
	int64_t host_mem_free_mb; /* memory left for new desktops */
	int host_vcpus_free;	  /* vCPUs left (after the host's overcommit ratio) */
	int host_desktops;	  /* desktops it runs now */
	int host_max_desktops;	  /* 0: no limit */
};

/* Name comparison used everywhere in policy/: ASCII case-insensitive, as LDAP does. */
bool policy_name_equal(const char *a, const char *b);

#endif
