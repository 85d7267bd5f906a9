/* The login path: input checks, throttle, a turn at the password check gate, backend
 * (the account throttled again under its canonical name once found), outcome recorded
 * and logged. The throttle and the gate are the only shared mutable state; backends
 * are read-only or per call. */
#include "auth/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/gate.h"
#include "auth/localdir.h"
#include "auth/password.h"
#include "auth/throttle.h"
#include "lib/log.h"

const char *const auth_backends[] = {"local", "ldap", NULL};

struct auth {
	const struct auth_config *a_cfg;
	struct throttle *a_throttle;
	struct gate *a_gate; /* around the password check: bounds CPU and memory */
	struct localdir *a_localdir;
	struct auth_user_source a_source;
	char a_dummy_hash[PASSWORD_HASH_MAX]; /* checked for unknown users */
};

/* Password checks at once per online CPU with backend = ldap (max_password_checks = 0). */
#define LDAP_CHECKS_PER_CPU 8

int auth_config_finish(struct auth_config *cfg, const char *file, char *err, size_t errlen)
{
	if (cfg->ac_lockout_max < cfg->ac_lockout) {
		snprintf(err, errlen, "%s: [auth] lockout_max is shorter than lockout", file);
		return -EINVAL;
	}
	if (cfg->ac_max_checks == 0) {
		/* scrypt keeps a CPU busy; an LDAP login mostly waits for the directory */
		long n = sysconf(_SC_NPROCESSORS_ONLN) *
			 (cfg->ac_backend == AUTH_BACKEND_LDAP ? LDAP_CHECKS_PER_CPU : 1);

		cfg->ac_max_checks = n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
	}
	if (cfg->ac_backend == AUTH_BACKEND_LDAP)
		return ldapdir_config_finish(&cfg->ac_ldap, file, err, errlen);
	return 0;
}

static int lookup_localdir(void *ctx, const char *username, struct identity **id, char **hash)
{
	return localdir_lookup(ctx, username, id, hash);
}

struct auth *auth_open(const struct auth_config *cfg, const struct auth_user_source *source,
		       char *err, size_t errlen)
{
	struct throttle_config tc = {
	    .tc_user_failures = cfg->ac_user_failures,
	    .tc_account_failures = cfg->ac_account_failures,
	    .tc_addr_failures = cfg->ac_addr_failures,
	    .tc_window = cfg->ac_failure_window,
	    .tc_base_delay = cfg->ac_lockout,
	    .tc_max_delay = cfg->ac_lockout_max,
	    .tc_entries = cfg->ac_throttle_entries,
	};
	struct password_params params = password_default_params;
	struct auth *a = calloc(1, sizeof(*a));
	int r;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->a_cfg = cfg;
	params.pp_ln = cfg->ac_password_cost ? cfg->ac_password_cost : params.pp_ln;
	r = password_dummy_hash(&params, a->a_dummy_hash, sizeof(a->a_dummy_hash));
	if (r < 0) {
		snprintf(err, errlen, "password cost ln=%d: %s", params.pp_ln, strerror(-r));
		goto out_free;
	}
	a->a_throttle = throttle_new(&tc);
	if (!a->a_throttle) {
		snprintf(err, errlen, "[auth] throttle settings: %s", strerror(errno));
		goto out_free;
	}
	a->a_gate = gate_new(cfg->ac_max_checks > 0 ? cfg->ac_max_checks : 1, cfg->ac_check_queue);
	if (!a->a_gate) {
		snprintf(err, errlen, "[auth] password check limits: %s", strerror(errno));
		goto out_free;
	}
	if (cfg->ac_backend != AUTH_BACKEND_LOCAL)
		return a;
	if (cfg->ac_users_file && *cfg->ac_users_file) {
		a->a_localdir = localdir_load(cfg->ac_users_file, err, errlen);
		if (!a->a_localdir)
			goto out_free;
		a->a_source.aus_lookup = lookup_localdir;
		a->a_source.aus_ctx = a->a_localdir;
	} else if (source && source->aus_lookup) {
		a->a_source = *source;
	} else {
		snprintf(err, errlen, "[auth] backend = local needs users_file");
		goto out_free;
	}
	return a;
out_free:
	auth_close(a);
	return NULL;
}

void auth_close(struct auth *a)
{
	if (!a)
		return;
	throttle_free(a->a_throttle);
	gate_free(a->a_gate);
	localdir_free(a->a_localdir);
	free(a);
}

const struct localdir *auth_users_file(const struct auth *a)
{
	return a->a_localdir;
}

const char *auth_dummy_hash(const struct auth *a)
{
	return a->a_dummy_hash;
}

/* Stores a fresh hash of password (today's cost) as username's, through the source. */
static int store_fresh_hash(struct auth *a, const char *username, const char *password)
{
	char fresh[PASSWORD_HASH_MAX];
	int r = password_hash(password, fresh, sizeof(fresh));

	if (r == 0)
		r = a->a_source.aus_set_hash(a->a_source.aus_ctx, username, fresh);
	explicit_bzero(fresh, sizeof(fresh));
	return r;
}

/* Replaces a user's stored hash, weaker than today's cost, with a fresh one. */
static void upgrade_hash(struct auth *a, const char *username, const char *password)
{
	int r = store_fresh_hash(a, username, password);

	if (r < 0)
		log_warnx("auth: the password hash of '%s' could not be upgraded: %s", username,
			  strerror(-r));
	else
		log_info("auth: the password hash of '%s' upgraded to today's cost", username);
}

/* One login's account as the backend knows it. */
struct attempt {
	struct auth *at_auth;
	const char *at_addr; /* or NULL */
	int64_t at_now;
	char at_account[IDENTITY_USERNAME_MAX + 1]; /* the backend's spelling, once found */
	int at_wait;				    /* seconds it is throttled for */
};

/* The backend found the account, before its password is checked. From here on it is
 * throttled under the backend's canonical name, whatever spelling was typed: a
 * directory matches other cases and Unicode compatibility forms (LDAP's string
 * preparation folds them), and each spelling must not get fresh attempts. Returns 0,
 * or -EAGAIN when that account is delayed. */
static int account_found(void *ctx, const char *username)
{
	struct attempt *at = ctx;

	snprintf(at->at_account, sizeof(at->at_account), "%s", username);
	at->at_wait = throttle_check(at->at_auth->a_throttle, username, at->at_addr, at->at_now);
	return at->at_wait > 0 ? -EAGAIN : 0;
}

static int login_local(struct auth *a, struct attempt *at, const char *username,
		       const char *password, struct identity **out, char *err, size_t errlen)
{
	struct identity *id = NULL;
	char *hash = NULL;
	int r;

	r = a->a_source.aus_lookup(a->a_source.aus_ctx, username, &id, &hash);
	if (r == 0 && (r = account_found(at, id->id_username)) < 0) {
		identity_free(id);
		free(hash);
		return r;
	}
	if (r == -ENOENT) {
		/* the same work as a wrong password of a user hashed at today's cost */
		password_verify(password, a->a_dummy_hash);
		snprintf(err, errlen, "no such user");
		return -EACCES;
	}
	if (r < 0) {
		snprintf(err, errlen, "user lookup failed: %s", strerror(-r));
		return r;
	}
	r = password_verify(password, hash);
	if (r == 0 && a->a_source.aus_set_hash && password_needs_rehash(hash))
		upgrade_hash(a, username, password);
	free(hash);
	if (r == -EACCES) {
		snprintf(err, errlen, "wrong password");
	} else if (r == -EINVAL) {
		snprintf(err, errlen, "the stored password hash is malformed");
		r = -EIO;
	} else if (r < 0) {
		snprintf(err, errlen, "password check failed: %s", strerror(-r));
	}
	if (r < 0) {
		identity_free(id);
		return r;
	}
	*out = id;
	return 0;
}

/* Waits for a turn to check a password. Returns 0 (gate_leave() after the check) or
 * -EBUSY with the seconds to wait in *retry_after: with a full queue about one second
 * per round of checks ahead (a guess: scrypt takes 0.1 s, an LDAP login up to a
 * second), after a wait that ran out the whole wait again. */
static int wait_turn(struct auth *a, int *retry_after, char *err, size_t errlen)
{
	int wait = a->a_cfg->ac_check_wait, inside, waiting, r;

	r = gate_enter(a->a_gate, wait * 1000);
	if (r == 0)
		return 0;
	gate_counts(a->a_gate, &inside, &waiting);
	*retry_after = r == -EBUSY ? 1 + waiting / (inside > 0 ? inside : 1) : wait;
	if (*retry_after > wait)
		*retry_after = wait;
	snprintf(err, errlen, "too many logins at once (%d checking, %d waiting)%s", inside,
		 waiting, r == -EBUSY ? "" : " after a wait");
	return -EBUSY;
}

/* A local user's new password, once the old one was right. */
static int set_local_password(struct auth *a, const char *username, const char *new_password,
			      char *err, size_t errlen)
{
	int r;

	if (!a->a_source.aus_set_hash) {
		snprintf(err, errlen, "the users file is edited by an administrator");
		return -EPERM;
	}
	r = store_fresh_hash(a, username, new_password);
	if (r < 0)
		snprintf(err, errlen, "the new password could not be stored: %s", strerror(-r));
	return r;
}

/* A login, or with new_password a password change: throttled, gated and counted the
 * same way, for the old password is checked either way. */
static int attempt(struct auth *a, const struct auth_request *req, const char *new_password,
		   struct identity **out, int *retry_after, char *err, size_t errlen)
{
	const char *what = new_password ? "password change" : "login";
	const char *addr = req->ar_client_addr ? req->ar_client_addr : "-";
	bool valid = identity_valid_username(req->ar_username, req->ar_username_len);
	char username[IDENTITY_USERNAME_MAX + 1], *password = NULL;
	struct attempt at = {.at_auth = a, .at_addr = req->ar_client_addr, .at_now = req->ar_now};
	struct ldapdir_hook hook = {.lh_found = account_found, .lh_ctx = &at};
	const char *account = username; /* throttled under; the canonical name once known */
	int wait, r;

	*out = NULL;
	*retry_after = 0;
	err[0] = '\0';
	if (valid) {
		memcpy(username, req->ar_username, req->ar_username_len);
		username[req->ar_username_len] = '\0';
	}
	wait = throttle_check(a->a_throttle, valid ? username : NULL, req->ar_client_addr,
			      req->ar_now);
	if (wait > 0) {
		*retry_after = wait;
		snprintf(err, errlen, "throttled for %ds", wait);
		log_warnx("%s refused user=%s addr=%s: %s", what, valid ? username : "(invalid)",
			  addr, err);
		return -EAGAIN;
	}
	if (!valid) {
		snprintf(err, errlen, "invalid username (%zu bytes)", req->ar_username_len);
		r = -EINVAL;
		goto out_failed;
	}
	if (req->ar_password_len == 0 || req->ar_password_len > PASSWORD_MAX_LEN ||
	    memchr(req->ar_password, '\0', req->ar_password_len)) {
		snprintf(err, errlen, "%s password refused",
			 req->ar_password_len == 0 ? "empty" : "over-long or malformed");
		r = req->ar_password_len && req->ar_password_len <= PASSWORD_MAX_LEN ? -EINVAL
										     : -EACCES;
		goto out_failed;
	}
	password = malloc(req->ar_password_len + 1);
	if (!password) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(password, req->ar_password, req->ar_password_len);
	password[req->ar_password_len] = '\0';
	/* Not a failed login: the client did nothing wrong, the broker is busy. */
	r = wait_turn(a, retry_after, err, errlen);
	if (r < 0) {
		log_warnx("%s refused user=%s addr=%s: %s", what, username, addr, err);
		goto out_free;
	}
	if (a->a_cfg->ac_backend == AUTH_BACKEND_LDAP && new_password)
		r = ldapdir_change_password(&a->a_cfg->ac_ldap, username, password, new_password,
					    &hook, err, errlen);
	else if (a->a_cfg->ac_backend == AUTH_BACKEND_LDAP)
		r = ldapdir_login_hooked(&a->a_cfg->ac_ldap, username, password, &hook, out, err,
					 errlen);
	else
		r = login_local(a, &at, username, password, out, err, errlen);
	if (r == 0 && new_password && *out)
		r = set_local_password(a, (*out)->id_username, new_password, err, errlen);
	gate_leave(a->a_gate);
	/* -EBUSY is the gate's and -EAGAIN the throttle's: from a store, a failure */
	if ((r == -EBUSY || r == -EAGAIN) && at.at_wait == 0)
		r = -EIO;
	if (at.at_account[0])
		account = at.at_account;
out_free:
	OPENSSL_cleanse(password, req->ar_password_len);
	free(password);
	if (r == -EAGAIN) {
		*retry_after = at.at_wait;
		snprintf(err, errlen, "account %s throttled for %ds", account, at.at_wait);
		log_warnx("%s refused user=%s addr=%s: %s", what, username, addr, err);
		return r;
	}
	if (r == 0) {
		throttle_success(a->a_throttle, account, req->ar_client_addr, req->ar_now);
		if (new_password)
			log_info("password changed user=%s addr=%s backend=%s", account, addr,
				 auth_backends[a->a_cfg->ac_backend]);
		else
			log_info("login user=%s addr=%s backend=%s groups=%zu", (*out)->id_username,
				 addr, auth_backends[a->a_cfg->ac_backend], (*out)->id_ngroups);
		return 0;
	}
	identity_free(*out); /* a local user whose new password could not be stored */
	*out = NULL;
	if (r == -EBUSY)
		return r;
	if (r == LDAPDIR_PASSWORD_CHANGE || r == LDAPDIR_ACCOUNT_DISABLED ||
	    r == LDAPDIR_ACCOUNT_EXPIRED || r == LDAPDIR_ACCOUNT_LOCKED ||
	    r == LDAPDIR_PASSWORD_REJECTED || r == -EPERM) {
		/* the directory's say on the account, not a guess: not counted */
		log_warnx("%s refused user=%s addr=%s: %s", what, username, addr, err);
		return r;
	}
	if (r != -EACCES && r != -EINVAL) {
		log_warnx("%s error user=%s addr=%s: %s", what, username, addr, err);
		return r;
	}
out_failed:
	throttle_failure(a->a_throttle, valid ? account : NULL, req->ar_client_addr, req->ar_now);
	log_warnx("%s failed user=%s addr=%s: %s", what, valid ? username : "(invalid)", addr, err);
	return r;
}

int auth_login(struct auth *a, const struct auth_request *req, struct identity **out,
	       int *retry_after, char *err, size_t errlen)
{
	return attempt(a, req, NULL, out, retry_after, err, errlen);
}

int auth_change_password(struct auth *a, const struct auth_request *req, const char *new_password,
			 size_t new_password_len, int *retry_after, char *err, size_t errlen)
{
	struct identity *id = NULL;
	char *copy;
	int r;

	*retry_after = 0;
	if (new_password_len == 0 || new_password_len > PASSWORD_MAX_LEN ||
	    memchr(new_password, '\0', new_password_len)) {
		snprintf(err, errlen, "the new password is %s",
			 new_password_len ? "over-long or holds a NUL" : "empty");
		return LDAPDIR_PASSWORD_REJECTED;
	}
	copy = malloc(new_password_len + 1);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(copy, new_password, new_password_len);
	copy[new_password_len] = '\0';
	r = attempt(a, req, copy, &id, retry_after, err, errlen);
	identity_free(id);
	OPENSSL_cleanse(copy, new_password_len);
	free(copy);
	return r;
}

void auth_probe(struct auth *a)
{
	if (a->a_cfg->ac_backend == AUTH_BACKEND_LDAP)
		ldapdir_probe(&a->a_cfg->ac_ldap);
}

void auth_cancel(struct auth *a)
{
	if (a->a_cfg->ac_backend == AUTH_BACKEND_LDAP)
		ldapdir_cancel();
}

int auth_lookup(struct auth *a, const char *username, struct identity **out, char *err,
		size_t errlen)
{
	char *hash = NULL;
	int r;

	*out = NULL;
	err[0] = '\0';
	if (a->a_cfg->ac_backend == AUTH_BACKEND_LDAP)
		return ldapdir_lookup(&a->a_cfg->ac_ldap, username, out, err, errlen);
	r = a->a_source.aus_lookup(a->a_source.aus_ctx, username, out, &hash);
	free(hash);
	if (r == -ENOENT)
		snprintf(err, errlen, "no such local user");
	else if (r < 0)
		snprintf(err, errlen, "local users: %s", strerror(-r));
	return r;
}
