/* The login path the broker calls: [auth] options, username and password checks,
 * throttling per account and per client address, then the configured backend (LDAP /
 * Active Directory, or local users from a users file or the broker's store). One line
 * is logged per login outcome; passwords never are. Not sessions or cookies (token.h
 * gives the token; the broker keeps sessions) and not what a user may use (policy/). */
#ifndef VDI_AUTH_AUTH_H
#define VDI_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "auth/identity.h"
#include "auth/ldapdir.h"
#include "lib/config.h"

enum auth_backend { AUTH_BACKEND_LOCAL, AUTH_BACKEND_LDAP };
extern const char *const auth_backends[]; /* "local", "ldap" */

/* The [auth] section, with the [ldap] one inside. */
struct auth_config {
	int ac_backend;		 /* enum auth_backend */
	char *ac_users_file;	 /* local backend: the users file (see localdir.h) */
	int ac_user_failures;	 /* failed logins of one account from one address before
				  * it is delayed there */
	int ac_account_failures; /* failed logins of one account from anywhere before it
				  * is delayed everywhere */
	int ac_addr_failures;	 /* failed logins from one address before delays start */
	int ac_failure_window;	 /* seconds after the last failure when a count restarts */
	int ac_lockout;		 /* seconds of the first delay, doubling per failure */
	int ac_lockout_max;	 /* seconds, cap of a delay */
	int ac_throttle_entries; /* accounts + addresses remembered */
	int ac_max_checks;  /* password checks at once; 0 in the file: online CPUs (x 8 for ldap) */
	int ac_check_queue; /* logins waiting for a check beyond those */
	int ac_check_wait;  /* seconds a login waits in that queue at most */
	int ac_password_cost; /* scrypt ln of the program's new hashes (not read from
			       * [auth]: the broker's [broker] password_cost); 0: default */
	struct ldapdir_config ac_ldap;
};

#define AUTH_OPT_(base, name, type, field, ...)                                                    \
	{                                                                                          \
		.co_section = "auth", .co_name = (name), .co_type = (type),                        \
		.co_offset = (base) + offsetof(struct auth_config, field), __VA_ARGS__             \
	}

/* The [auth] and [ldap] entries of a config_option table for a struct auth_config at
 * byte offset base of the table's target, e.g.
 *   static const struct config_option options[] = {
 *       ...broker options...,
 *       AUTH_CONFIG_OPTIONS(offsetof(struct broker_config, bc_auth)),
 *       CONFIG_END,
 *   };
 * then config_load() and auth_config_finish(). */
#define AUTH_CONFIG_OPTIONS(base)                                                                  \
	AUTH_OPT_(base, "backend", CONFIG_ENUM, ac_backend, .co_default = "local",                 \
		  .co_choices = auth_backends, .co_help = "local (users file or store) or ldap"),  \
	    AUTH_OPT_(base, "users_file", CONFIG_STRING, ac_users_file, .co_max = 4096,            \
		      .co_help = "local users file; unset: the broker's store"),                   \
	    AUTH_OPT_(base, "max_user_failures", CONFIG_INT, ac_user_failures, .co_default = "5",  \
		      .co_min = 1, .co_max = 1000,                                                 \
		      .co_help = "failed logins of an account from one address before it is "      \
				 "delayed there"),                                                 \
	    AUTH_OPT_(base, "max_account_failures", CONFIG_INT, ac_account_failures,               \
		      .co_default = "50", .co_min = 1, .co_max = 100000,                           \
		      .co_help = "failed logins of an account from all addresses before it is "    \
				 "delayed everywhere"),                                            \
	    AUTH_OPT_(base, "max_address_failures", CONFIG_INT, ac_addr_failures,                  \
		      .co_default = "20", .co_min = 1, .co_max = 100000,                           \
		      .co_help = "failed logins from an address (IPv6 /64) before it is delayed"), \
	    AUTH_OPT_(base, "failure_window", CONFIG_DURATION, ac_failure_window,                  \
		      .co_default = "15m", .co_min = 1, .co_max = 86400,                           \
		      .co_help = "quiet time after which failures are forgotten"),                 \
	    AUTH_OPT_(base, "lockout", CONFIG_DURATION, ac_lockout, .co_default = "30s",           \
		      .co_min = 1, .co_max = 86400,                                                \
		      .co_help = "first delay; doubles with each further failure"),                \
	    AUTH_OPT_(base, "lockout_max", CONFIG_DURATION, ac_lockout_max, .co_default = "15m",   \
		      .co_min = 1, .co_max = 86400, .co_help = "longest delay"),                   \
	    AUTH_OPT_(base, "throttle_entries", CONFIG_INT, ac_throttle_entries,                   \
		      .co_default = "8192", .co_min = 16, .co_max = 1048576,                       \
		      .co_help = "accounts and addresses remembered (fixed memory)"),              \
	    AUTH_OPT_(base, "max_password_checks", CONFIG_INT, ac_max_checks, .co_default = "0",   \
		      .co_min = 0, .co_max = 4096,                                                 \
		      .co_help = "password checks at once; 0: online CPUs (ldap: 8 per CPU)"),     \
	    AUTH_OPT_(base, "password_check_queue", CONFIG_INT, ac_check_queue,                    \
		      .co_default = "64", .co_min = 0, .co_max = 65536,                            \
		      .co_help = "logins waiting for a check; more are answered busy"),            \
	    AUTH_OPT_(base, "password_check_wait", CONFIG_DURATION, ac_check_wait,                 \
		      .co_default = "10s", .co_min = 1, .co_max = 300,                             \
		      .co_help = "longest wait for a check; then busy"),                           \
	    LDAPDIR_CONFIG_OPTIONS((base) + offsetof(struct auth_config, ac_ldap))

/* Checks a loaded [auth] section (and [ldap] when backend = ldap, see
 * ldapdir_config_finish()); max_password_checks = 0 becomes the number of online
 * CPUs, 8 times that with backend = ldap (an LDAP login mostly waits). Returns 0 or
 * a negative errno with "file: ..." in err. */
int auth_config_finish(struct auth_config *cfg, const char *file, char *err, size_t errlen);

/* Local users kept elsewhere (the broker's store). lookup returns 0 with a new identity
 * and a malloc'd password hash (password_hash() format), -ENOENT for an unknown user,
 * or another negative errno. set_hash (may be NULL) stores a fresh hash of the password
 * a user just logged in with when the stored one is weaker than today's cost
 * (password_needs_rehash()); its failure is logged and the login still succeeds. Both
 * may be called from several threads at once. */
struct auth_user_source {
	int (*aus_lookup)(void *ctx, const char *username, struct identity **id,
			  char **password_hash);
	int (*aus_set_hash)(void *ctx, const char *username, const char *password_hash);
	void *aus_ctx;
};

/* Returns a new authenticator (free with auth_close()) or NULL with the reason in err.
 * cfg must have been finished and must outlive it. With backend = local, users come
 * from users_file when set (read now), otherwise from source, which must then be given;
 * source is copied. Thread-safe: auth_login() may run in many threads at once. */
struct auth *auth_open(const struct auth_config *cfg, const struct auth_user_source *source,
		       char *err, size_t errlen);
void auth_close(struct auth *a);

struct localdir;

/* The users of [auth] users_file (backend local), or NULL when logins do not read one.
 * Borrowed: valid until auth_close(). */
const struct localdir *auth_users_file(const struct auth *a);

/* The hash an unknown local user's password is checked against: random, at the
 * configured cost (ac_password_cost, r and p of password_default_params), so the
 * answer for an unknown user takes as long as for a known one with a wrong password. */
const char *auth_dummy_hash(const struct auth *a);

struct auth_request {
	const char *ar_username; /* as received: not NUL-terminated, length below */
	size_t ar_username_len;
	const char *ar_password;
	size_t ar_password_len;
	const char *ar_client_addr; /* numeric IPv4/IPv6 address, or NULL */
	int64_t ar_now;		    /* seconds, monotonic or wall clock, but always the same */
};

/* Authenticates one login. Returns 0 with a new identity in *out (identity_free()), or:
 *   -EAGAIN   throttled: *retry_after holds the seconds to wait (HTTP 429)
 *   -EBUSY    max_password_checks run already and the queue is full, or the wait in it
 *             ran out: *retry_after holds the seconds to wait (HTTP 503); not counted
 *             as a failed login
 *   -EACCES   bad username or password: unknown user, wrong, empty or over-long
 *             password; tell the user only "invalid username or password" (HTTP 401)
 *   -EINVAL   the username is not acceptable (identity_valid_username()) or a field
 *             holds a NUL (HTTP 400)
 *   other     the directory failed: -ETIMEDOUT, -EHOSTDOWN, -EPROTO, -ENOTUNIQ, -EIO,
 *             -ENOMEM (HTTP 503; not counted as a failed login)
 * err gets a one-line reason for logs and audit, never the password. May block for
 * the LDAP timeouts: call it from a worker thread, not an event loop. */
int auth_login(struct auth *a, const struct auth_request *req, struct identity **out,
	       int *retry_after, char *err, size_t errlen);

/* Changes the password of req's user from req's password to new_password (not
 * NUL-terminated, new_password_len bytes), under the same throttle and gate as a login:
 * a wrong old password is a failed guess. LDAP: ldapdir_change_password(); local users:
 * a fresh hash stored through the source's set_hash. Returns 0, or auth_login()'s
 * errors (no identity), or:
 *   LDAPDIR_PASSWORD_REJECTED  the new password is empty, over-long, or the directory's
 *             password policy refused it (not a failed guess)
 *   -EPERM    the backend does not let users change their password (not a failed guess)
 * A user whose directory says the password must be changed can change it here. */
int auth_change_password(struct auth *a, const struct auth_request *req, const char *new_password,
			 size_t new_password_len, int *retry_after, char *err, size_t errlen);

/* Maintenance: directory servers that failed are asked again once their back-off is
 * over (ldapdir_probe()); nothing for local users. */
void auth_probe(struct auth *a);
/* Ends the logins under way and refuses new ones (-ECANCELED): the process stops. */
void auth_cancel(struct auth *a);

/* A signed-in user as the backend knows them now, without a password: 0 with a new
 * identity (their current groups), -ENOENT when the user is gone, or another negative
 * errno when the backend cannot tell (err says why). Not throttled, not gated. */
int auth_lookup(struct auth *a, const char *username, struct identity **out, char *err,
		size_t errlen);

#endif
