/* vdi-broker's configuration: one option table ([broker], [http], [hosts], and auth's
 * [auth] and [ldap]) with defaults and bounds, plus the checks across options and
 * against the file system. Not the store and not the HTTP layer. */
#ifndef VDI_BROKER_CONFIG_H
#define VDI_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "auth/auth.h"

struct broker_config {
	/* [broker] */
	char *bc_state_dir;	/* broker.db, the generated HTTPS certificate */
	char *bc_user;		/* started as root: run as this user */
	int bc_log_level;	/* enum log_level */
	char *bc_admin_users;	/* comma-separated */
	char *bc_admin_groups;	/* comma-separated */
	int bc_max_sessions;	/* per user, 0: no limit */
	int bc_ticket_lifetime; /* seconds, 5..60 */
	int bc_session_idle;	/* web sessions: seconds without a request */
	int bc_account_recheck;
	int bc_audit_retention;
	/* seconds */		 /* seconds between lookups of signed-in users; 0: never */
	int bc_session_lifetime; /* web sessions: seconds after login */
	int bc_maintenance_interval;
	int bc_provision_timeout; /* a desktop not running after this is in error */
	int bc_degraded_after;	  /* failures in a row that make a pool degraded */
	int bc_password_cost;	  /* scrypt ln for passwords the broker hashes */
	/* [http] */
	char *bc_listen;
	char *bc_cert, *bc_key; /* empty: a self-signed pair in state_dir */
	char *bc_static_dir;	/* empty: no static files */
	char *bc_public_url;	/* https://host[:port] users reach; empty: from Host */
	int bc_max_body;
	int bc_max_connections;
	int bc_http_idle; /* seconds */
	int bc_max_per_address, bc_request_timeout;
	/* [gateway] */
	int bc_gateway_idle;	 /* seconds without traffic either way */
	int bc_gateway_lifetime; /* seconds after the connection opened */
	/* [hosts] */
	char *bc_host_cert, *bc_host_key, *bc_host_ca; /* mutual TLS with vdi-hostd */
	char *bc_heartbeat_listen;		       /* empty: heartbeats not accepted */
	int bc_host_timeout;			       /* silence before a host is down */
	int bc_host_request_timeout;
	/* [metrics] */
	char *bc_metrics_listen; /* empty: /metrics only for admins on bc_listen */
	/* [auth], [ldap] */
	struct auth_config bc_auth;
};

/* Loads and checks path. Returns 0, or -EINVAL etc. with "file:line: message" (or
 * "file: message") in err. Free with broker_config_free() whatever the outcome. */
int broker_config_load(const char *path, struct broker_config *cfg, char *err, size_t errlen);
void broker_config_free(struct broker_config *cfg);
void broker_config_print(FILE *out, const struct broker_config *cfg);

/* True when name is one of the comma-separated names in list (ASCII case-insensitive). */
bool broker_config_list_has(const char *list, const char *name);

#endif
