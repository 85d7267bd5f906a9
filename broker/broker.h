/* The connection broker's domain: logins into web sessions, the pools a user may see,
 * connect (reconnect first, else policy_assign() inside the store transaction that
 * claims the desktop) with a one-time display ticket, session disconnect and logoff,
 * ticket redemption for the gateway, host heartbeats, the maintenance thread, and the
 * administrators' operations. Operations answer with an enum broker_outcome and a
 * struct broker_result, never an HTTP status: HTTP is web/'s and broker/api.c's;
 * decisions are policy/'s; state is the store's. One file per job (broker/README.md). */
#ifndef VDI_BROKER_BROKER_H
#define VDI_BROKER_BROKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/token.h"
#include "broker/config.h"
#include "broker/store.h"

/* Display tickets: 128 random bits as 32 lowercase hex characters. */
#define BROKER_TICKET_LEN 32

/* The broker: opaque outside its own files (its definition is in internal.h). */
struct broker;
struct gateway;

/* What a broker operation came to. broker/api.c maps each outcome to one HTTP status
 * and error code (its outcome table); the broker itself knows nothing of HTTP. */
enum broker_outcome {
	BROKER_OK,
	BROKER_STARTING,	      /* accepted: the desktop is being prepared; retry */
	BROKER_BAD_REQUEST,	      /* the request is invalid (message says how) */
	BROKER_BAD_CREDENTIALS,	      /* wrong user name or password */
	BROKER_DENIED,		      /* policy refuses (br_reason says why) */
	BROKER_NOT_FOUND,	      /* no such pool, session, host, user... */
	BROKER_UNKNOWN_HOST,	      /* a heartbeat from a host not registered */
	BROKER_WRONG_HOST,	      /* a heartbeat for a host its certificate does not name */
	BROKER_EXISTS,		      /* it exists already */
	BROKER_BUSY,		      /* it is in use */
	BROKER_LOGGED_OFF,	      /* the session has ended already */
	BROKER_AUTOMATED_POOL,	      /* manual desktops asked of an automated pool */
	BROKER_LIMIT,		      /* the user has as many sessions as allowed (br_reason) */
	BROKER_THROTTLED,	      /* too many failed logins: wait br_retry_after */
	BROKER_INTERNAL,	      /* out of memory and the like */
	BROKER_UNAVAILABLE,	      /* the store failed: retry later */
	BROKER_NO_CAPACITY,	      /* no desktop or host for it now (br_reason) */
	BROKER_HOST_UNAVAILABLE,      /* the desktop's host is not answering */
	BROKER_DIRECTORY_UNAVAILABLE, /* the user directory is not answering */
	BROKER_LOGINS_BUSY,	      /* too many logins at once: retry after br_retry_after */
	BROKER_DESKTOP_FAILED,	      /* the desktop failed to start (message: why); retry */
	BROKER_PASSWORD_CHANGE,	      /* the right password, which must be changed first */
	BROKER_ACCOUNT_DISABLED,      /* the directory has the account disabled */
	BROKER_ACCOUNT_EXPIRED,	      /* ... expired */
	BROKER_ACCOUNT_LOCKED,	      /* ... locked out (too many wrong passwords there) */
	BROKER_PASSWORD_REJECTED,     /* the password policy refused the new password */
	BROKER_PASSWORD_FIXED,	      /* users may not change their password here */
	BROKER_OUTCOMES
};

/* An operation's outcome with what the client is told. */
struct broker_result {
	enum broker_outcome br_outcome;
	const char *br_reason; /* policy/'s reason name (the error code), or NULL */
	char br_message[256];  /* for the client, never a secret */
	int br_retry_after;    /* seconds after which a retry may succeed; 0: none */
};

/* Fills res (message printf-formatted) and returns outcome. */
enum broker_outcome broker_result_set(struct broker_result *res, enum broker_outcome outcome,
				      const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A connect's answer: the session and desktop, and once the desktop is ready a one-time
 * ticket for the gateway (BROKER_TICKET_LEN hex characters) and when it expires. */
struct broker_connection {
	char cn_session[24], cn_desktop[48], cn_ticket[BROKER_TICKET_LEN + 1];
	int64_t cn_expires;
	/* While starting: placing (no host has it yet), booting, almost_ready (its host
	 * runs it), waiting (its pool waits before starting again after failures). */
	const char *cn_stage;
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
/* The configuration b was opened with. */
const struct broker_config *broker_config(const struct broker *b);
/* The display gateway the HTTP layer runs for b (NULL: none), set while its API runs. */
void broker_set_gateway(struct broker *b, struct gateway *gw);
struct gateway *broker_gateway(const struct broker *b);
/* Starts / stops the maintenance thread. */
int broker_start(struct broker *b);
void broker_stop(struct broker *b);
/* Ends the logins under way (their directory servers may hang) and refuses new ones:
 * called first when the process stops. */
void broker_cancel_logins(struct broker *b);
/* Wakes the maintenance thread now (a heartbeat arrived, a desktop was claimed). */
void broker_kick(struct broker *b);
/* One maintenance pass at time now (the thread's body; tests call it directly). */
void broker_maintain(struct broker *b, int64_t now);

/* Appends to the audit log; detail is printf-formatted (never a secret). */
void broker_audit(struct broker *b, const char *actor, const char *action, const char *target,
		  const char *result, const char *addr, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* POST /login. Returns BROKER_OK with the answer body in *out and a new session token
 * in token (a cookie, or for bearer sessions also in the body), or why not in res:
 * THROTTLED (with br_retry_after), BAD_CREDENTIALS, BAD_REQUEST, DIRECTORY_UNAVAILABLE
 * (the directory, or the broker, failed), LOGINS_BUSY (too many password checks at
 * once; with br_retry_after). The attempt is audited either way, never
 * with the password. */
enum broker_outcome broker_login(struct broker *b, const char *user, size_t user_len,
				 const char *password, size_t password_len, const char *addr,
				 bool bearer, json_t **out, char token[TOKEN_LEN + 1],
				 struct broker_result *res);
/* POST /password: changes user's password from password to new_password, throttled
 * and audited like a login (a wrong old password is a failed guess). Returns BROKER_OK,
 * or login's outcomes, PASSWORD_REJECTED (the directory's policy; message says so) or
 * PASSWORD_FIXED (the backend does not let users change it). A user whose password
 * must be changed before they can log in changes it here. */
enum broker_outcome broker_change_password(struct broker *b, const char *user, size_t user_len,
					   const char *password, size_t password_len,
					   const char *new_password, size_t new_password_len,
					   const char *addr, struct broker_result *res);
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

/* POST /desktops/{pool}/connect: reconnect u's session in pool_id, or let policy
 * assign, start or create a desktop. Returns BROKER_OK with a one-time ticket for the
 * gateway in cn, BROKER_STARTING (the desktop is being prepared; cn names session and
 * desktop, res the retry delay), or why not in res: NOT_FOUND, DENIED, LIMIT,
 * NO_CAPACITY, HOST_UNAVAILABLE, UNAVAILABLE. The caller wipes cn's ticket. */
enum broker_outcome broker_connect(struct broker *b, const struct broker_user *u,
				   const char *pool_id, const char *addr,
				   struct broker_connection *cn, struct broker_result *res);

/* Disconnect (POLICY_EVENT_DISCONNECT) or log off (POLICY_EVENT_LOGOFF) session id on
 * behalf of u (an admin may end anyone's). Returns BROKER_OK, or in res NOT_FOUND (no
 * such session of theirs), LOGGED_OFF (ended already), UNAVAILABLE. */
enum broker_outcome broker_session_event(struct broker *b, const struct broker_user *u,
					 const char *id, int event, const char *addr,
					 struct broker_result *res);

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

/* POST /hosts/heartbeat from a host's agent, whose client certificate the listener
 * verified and whose name (CN) is cert_name (NULL: none readable). A host speaks for
 * itself only: the body's host_id must be cert_name. Returns BROKER_OK, or in res
 * WRONG_HOST (another host's id: nothing recorded), UNKNOWN_HOST (not registered) or
 * BAD_REQUEST (malformed, the message says why). */
enum broker_outcome broker_heartbeat(struct broker *b, const json_t *body, const char *cert_name,
				     struct broker_result *res);

/* Admin: registers a local user with a password hashed here. Returns 0, -EEXIST,
 * -EINVAL (err), -EIO. */
int broker_user_add(struct broker *b, const char *username, const char *password,
		    const char *display_name, const char *mail, const json_t *groups, char *err,
		    size_t errlen);

/* ---- administration (admin.c): writes are checked and audited under u's name ---- */

/* The hosts with their "state" (up, down), "draining" and "desktop_ids"; NULL: the
 * store failed. */
json_t *broker_admin_hosts(struct broker *b);
/* Registers host req {id, url, relay?}; its record in *out. BAD_REQUEST, EXISTS. */
enum broker_outcome broker_admin_host_add(struct broker *b, const struct broker_user *u,
					  const char *addr, const json_t *req, json_t **out,
					  struct broker_result *res);
/* Removes a host without desktops. NOT_FOUND, BUSY. */
enum broker_outcome broker_admin_host_remove(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *id,
					     struct broker_result *res);
/* Drains host id (drain: placement puts no new desktop on it; those it runs stay) or
 * resumes it; the host in *out. NOT_FOUND. */
enum broker_outcome broker_admin_host_drain(struct broker *b, const struct broker_user *u,
					    const char *addr, const char *id, bool drain,
					    json_t **out, struct broker_result *res);
/* Stops every desktop host id runs (through its vdi-hostd, in the maintenance pass):
 * their sessions end; owned desktops stay stopped on the host until their owner
 * connects, others are deleted (and replaced where placement says). *out:
 * {"host", "desktops": [ids]}. NOT_FOUND. */
enum broker_outcome broker_admin_host_stop_desktops(struct broker *b, const struct broker_user *u,
						    const char *addr, const char *id, json_t **out,
						    struct broker_result *res);
/* The pools with their desktops (no VNC passwords), desktop counts and state; NULL: the
 * store failed. */
json_t *broker_admin_pools(struct broker *b);
enum broker_outcome broker_admin_pool_get(struct broker *b, const char *id, json_t **out,
					  struct broker_result *res);
/* Creates (id NULL) or updates pool id from request body (pool_from_request()), a
 * create with its entitlements and manual desktops; the stored pool in *out.
 * NOT_FOUND, BAD_REQUEST, EXISTS. */
enum broker_outcome broker_admin_pool_write(struct broker *b, const struct broker_user *u,
					    const char *addr, const char *id, const json_t *body,
					    json_t **out, struct broker_result *res);
/* Deletes a pool without live sessions: at once, or once the maintenance pass has
 * removed its desktops from their hosts. NOT_FOUND, BUSY. */
enum broker_outcome broker_admin_pool_delete(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *id,
					     struct broker_result *res);
/* Entitles (kind "user" or "group") name to pool, or takes it back. */
enum broker_outcome broker_admin_entitle(struct broker *b, const struct broker_user *u,
					 const char *addr, const char *pool, const char *kind,
					 const char *name, struct broker_result *res);
enum broker_outcome broker_admin_unentitle(struct broker *b, const struct broker_user *u,
					   const char *addr, const char *pool, const char *kind,
					   const char *name, struct broker_result *res);
/* Adds desktop {id?, address, password?} to a manual pool. AUTOMATED_POOL, EXISTS. */
enum broker_outcome broker_admin_desktop_add(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *pool,
					     const json_t *desktop, struct broker_result *res);
/* Live sessions, or all with all; every user the broker knows (local ones, those of
 * [auth] users_file, and any who signed in, e.g. from LDAP, with their "source" and
 * "last_login"); audit entries (newest first, at most limit, before an id when
 * before > 0). NULL: the store failed. */
json_t *broker_admin_sessions(struct broker *b, bool all);
json_t *broker_admin_users(struct broker *b);
json_t *broker_admin_audit(struct broker *b, int limit, int64_t before);
/* Adds local user req {username, password, display_name?, mail?, groups?}. */
enum broker_outcome broker_admin_user_add(struct broker *b, const struct broker_user *u,
					  const char *addr, const json_t *req,
					  struct broker_result *res);
enum broker_outcome broker_admin_user_delete(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *name,
					     struct broker_result *res);
/* The account of a signed-in user looked up again now: gone, every session of theirs
 * ends (-ENOENT); its groups changed, their web sessions take the new groups and admin
 * role and their desktop sessions in pools no longer entitled end (0). Another negative
 * errno when the backend cannot tell (the sessions stay as they are). */
int broker_account_recheck(struct broker *b, const char *username);
/* Who signs users in: {"backend": "local"|"ldap", "servers": [{"uri", "state":
 * "ok"|"failing", "retry_in" (seconds until it is asked in its turn again), "error"
 * (why it failed)}]} (no servers for local users). */
json_t *broker_admin_directory(struct broker *b);
/* A user's web sessions (store_websessions_of_user()); NULL: the store failed. */
json_t *broker_admin_user_websessions(struct broker *b, const char *name);
/* Ends every web session of user name (they must sign in again), audited as
 * websessions_revoke with how many. */
enum broker_outcome broker_admin_user_revoke(struct broker *b, const struct broker_user *u,
					     const char *addr, const char *name,
					     struct broker_result *res);

#endif
