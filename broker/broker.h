/* The connection broker's domain logic: logins into web sessions, the pools a user may
 * see, connect (reconnect first, else policy_assign() inside the store transaction
 * that claims the desktop) with a one-time display ticket, session disconnect and
 * logoff, ticket redemption for the gateway, host heartbeats, and the maintenance
 * thread (host timeouts, session timeouts, pool sizing, desktops driven on hosts).
 * HTTP is web/'s and broker/api.c's; decisions are policy/'s; state is the store's. */
#ifndef VDI_BROKER_BROKER_H
#define VDI_BROKER_BROKER_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/token.h"
#include "broker/config.h"
#include "broker/store.h"

/* Display tickets: 128 random bits as 32 lowercase hex characters. */
#define BROKER_TICKET_LEN 32

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
};

/* The caller of a request, from their web session. */
struct broker_user {
	json_t *bu_record; /* the web session record */
	const char *bu_name, *bu_display_name, *bu_csrf;
	bool bu_admin, bu_bearer;
	const char **bu_groups;
	size_t bu_ngroups;
};

/* Opens the store (state_dir/broker.db) and the authenticator. Returns the broker
 * (broker_close()) or NULL with err set. cfg must outlive it. */
struct broker *broker_open(const struct broker_config *cfg, char *err, size_t errlen);
void broker_close(struct broker *b);
/* Starts / stops the maintenance thread. */
int broker_start(struct broker *b);
void broker_stop(struct broker *b);
/* Wakes the maintenance thread now (a heartbeat arrived, a desktop was claimed). */
void broker_kick(struct broker *b);
/* One maintenance pass at time now (the thread's body; tests call it directly). */
void broker_maintain(struct broker *b, int64_t now);

/* Appends to the audit log; detail is printf-formatted (never a secret). */
void broker_audit(struct broker *b, const char *actor, const char *action, const char *target,
		  const char *result, const char *addr, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* POST /login. Returns 0 with the answer body in *out and a new session token in token
 * (a cookie, or for bearer sessions also in the body), or auth_login()'s errors
 * (-EAGAIN with *retry_after, -EACCES, -EINVAL, others: the directory failed). The
 * attempt is audited either way, never with the password. */
int broker_login(struct broker *b, const char *user, size_t user_len, const char *password,
		 size_t password_len, const char *addr, bool bearer, json_t **out,
		 char token[TOKEN_LEN + 1], int *retry_after);
/* The web session of token (a cookie's or a bearer's, as bearer says). Returns 0 with
 * u filled (broker_user_free()), or -EACCES for no, an expired or another kind of
 * session. */
int broker_user_load(struct broker *b, const char *token, bool bearer, struct broker_user *u);
void broker_user_free(struct broker_user *u);
/* {"user": {...}, "csrf_token"} as login answers it. */
json_t *broker_user_json(const struct broker_user *u);
int broker_logout(struct broker *b, const char *token, const struct broker_user *u,
		  const char *addr);

/* GET /desktops: the pools u may use from addr now, with their state. */
json_t *broker_desktops(struct broker *b, const struct broker_user *u, const char *addr);

/* POST /desktops/{pool}/connect. Returns the HTTP status with its body in *out
 * (200 ticket, 202 starting, 403/404/409/503 {"error","code"}). gateway_host names the
 * broker in gateway URLs ("name:port"). */
int broker_connect(struct broker *b, const struct broker_user *u, const char *pool_id,
		   const char *addr, const char *gateway_host, json_t **out);

/* Disconnect (POLICY_EVENT_DISCONNECT) or log off (POLICY_EVENT_LOGOFF) session id on
 * behalf of u (an admin may end anyone's). Returns 0, -ENOENT (no such session of
 * theirs), -EINVAL (already logged off), -EIO. */
int broker_session_event(struct broker *b, const struct broker_user *u, const char *id, int event,
			 const char *addr);

/* The gateway's call: redeems ticket atomically (once, before it expires) and marks its
 * session connected. Returns where to connect: {"session", "username", "pool",
 * "desktop", "kind": "host"|"manual", "host", "relay" (host:port of the host's display
 * relay), "address" and "vnc_password" (manual desktops)} as a new reference, or NULL
 * with errno EACCES (unknown, used or expired ticket, session over) or EIO. */
json_t *broker_ticket_redeem(struct broker *b, const char *ticket, const char *addr);

/* The gateway's call when a client's display connection ends: the session becomes
 * disconnected (its disconnect timeout starts). Returns 0, -ENOENT, -EINVAL (logged off
 * already), -EIO. */
int broker_session_closed(struct broker *b, const char *session_id, const char *addr);

/* POST /hosts/heartbeat from a host's agent (its client certificate already checked).
 * Returns 0, -ENOENT (host not registered), -EINVAL (malformed, err says why). */
int broker_heartbeat(struct broker *b, const json_t *body, char *err, size_t errlen);

/* Admin: registers a local user with a password hashed here. Returns 0, -EEXIST,
 * -EINVAL (err), -EIO. */
int broker_user_add(struct broker *b, const char *username, const char *password,
		    const char *display_name, const char *mail, const json_t *groups, char *err,
		    size_t errlen);

#endif
