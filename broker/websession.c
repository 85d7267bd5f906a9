/* Logins into web sessions (only the token's hash is stored), the caller of a request
 * loaded from its session, logout, local users added and looked up for auth/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/identity.h"
#include "auth/password.h"
#include "broker/internal.h"

int websession_lookup_user(void *ctx, const char *username, struct identity **id, char **hash)
{
	struct broker *b = ctx;
	json_t *u = store_user_get(b->b_store, username), *g;
	size_t i;

	if (!u)
		return errno == ENOENT ? -ENOENT : -EIO;
	*id = identity_new(jstr(u, "username"), NULL, jstr(u, "display_name"), jstr(u, "mail"));
	*hash = strdup(jstr(u, "password_hash") ? jstr(u, "password_hash") : "");
	if (!*id || !*hash)
		goto out_nomem;
	json_array_foreach (json_object_get(u, "groups"), i, g)
		if (json_is_string(g) && identity_add_group(*id, json_string_value(g)) == -ENOMEM)
			goto out_nomem;
	json_decref(u);
	return 0;
out_nomem:
	identity_free(*id);
	free(*hash);
	*id = NULL;
	*hash = NULL;
	json_decref(u);
	return -ENOMEM;
}

int websession_set_user_hash(void *ctx, const char *username, const char *password_hash)
{
	struct broker *b = ctx;

	return store_user_set_hash(b->b_store, username, password_hash);
}

bool websession_is_admin(const struct broker_config *cfg, const char *username,
			 const char *const *groups, size_t ngroups)
{
	if (broker_config_list_has(cfg->bc_admin_users, username))
		return true;
	for (size_t i = 0; i < ngroups; i++)
		if (broker_config_list_has(cfg->bc_admin_groups, groups[i]))
			return true;
	return false;
}

/* A printable copy of what the client sent as a user name, for the audit log. */
static void printable_name(const char *user, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)user[i];

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

json_t *broker_user_json(const struct broker_user *u)
{
	return json_pack("{s:{s:s, s:s, s:b}, s:s}", "user", "username", u->bu_name, "display_name",
			 u->bu_display_name ? u->bu_display_name : u->bu_name, "admin", u->bu_admin,
			 "csrf_token", u->bu_csrf);
}

/* What a login's errno means for the client. */
static enum broker_outcome login_outcome(int r, int retry_after, struct broker_result *res)
{
	switch (r) {
	case 0: return broker_result_set(res, BROKER_OK, NULL, "logged in");
	case -EAGAIN:
		res->br_retry_after = retry_after;
		return broker_result_set(res, BROKER_THROTTLED, NULL,
					 "too many failed logins; wait");
	case -EACCES:
		return broker_result_set(res, BROKER_BAD_CREDENTIALS, NULL,
					 "invalid username or password");
	case -EINVAL: return broker_result_set(res, BROKER_BAD_REQUEST, NULL, "invalid username");
	case LDAPDIR_PASSWORD_CHANGE:
		return broker_result_set(res, BROKER_PASSWORD_CHANGE, NULL,
					 "your password must be changed before you can sign in");
	case LDAPDIR_ACCOUNT_DISABLED:
		return broker_result_set(res, BROKER_ACCOUNT_DISABLED, NULL,
					 "your account is disabled");
	case LDAPDIR_ACCOUNT_EXPIRED:
		return broker_result_set(res, BROKER_ACCOUNT_EXPIRED, NULL,
					 "your account has expired");
	case LDAPDIR_ACCOUNT_LOCKED:
		return broker_result_set(res, BROKER_ACCOUNT_LOCKED, NULL,
					 "your account is locked");
	case LDAPDIR_PASSWORD_REJECTED:
		return broker_result_set(res, BROKER_PASSWORD_REJECTED, NULL,
					 "the new password does not meet the password policy");
	case -EPERM:
		return broker_result_set(
		    res, BROKER_PASSWORD_FIXED, NULL,
		    "passwords cannot be changed here; ask your administrator");
	case -EBUSY:
		res->br_retry_after = retry_after;
		return broker_result_set(res, BROKER_LOGINS_BUSY, NULL,
					 "too many logins at once, retry in %d s", retry_after);
	default:
		return broker_result_set(res, BROKER_DIRECTORY_UNAVAILABLE, NULL,
					 "the user directory is not answering; try again later");
	}
}

/* A new web session for id; its token in token, the login's answer in *out. Returns 0
 * or -errno. */
static int websession_open(struct broker *b, const struct identity *id, bool admin,
			   const char *addr, bool bearer, int64_t now, json_t **out,
			   char token[TOKEN_LEN + 1])
{
	char hash[TOKEN_HASH_LEN + 1], csrf[TOKEN_LEN + 1];
	json_t *groups = json_array();
	int r;

	for (size_t i = 0; groups && i < id->id_ngroups; i++)
		json_array_append_new(groups, json_string(id->id_groups[i]));
	if (!groups || token_generate(token) < 0 || token_generate(csrf) < 0 ||
	    token_hash(token, hash) < 0) {
		r = -EIO;
		goto out;
	}
	r = store_websession_add(b->b_store, hash, id->id_username, id->id_display_name, groups,
				 admin, csrf, bearer, addr, now,
				 now + b->b_cfg->bc_session_lifetime);
	if (r < 0) {
		r = -EIO;
		goto out;
	}
	*out = json_pack("{s:{s:s, s:s, s:b}, s:s}", "user", "username", id->id_username,
			 "display_name", id->id_display_name, "admin", admin, "csrf_token", csrf);
	if (*out && bearer)
		json_object_set_new(*out, "token", json_string(token));
	if (!*out) {
		store_websession_delete(b->b_store, hash);
		r = -ENOMEM;
	}
out:
	explicit_bzero(csrf, sizeof(csrf));
	json_decref(groups);
	return r;
}

enum broker_outcome broker_login(struct broker *b, const char *user, size_t user_len,
				 const char *password, size_t password_len, const char *addr,
				 bool bearer, json_t **out, char token[TOKEN_LEN + 1],
				 struct broker_result *res)
{
	int64_t now = (int64_t)time(NULL);
	char err[512] = "", shown[300];
	struct auth_request req = {
	    .ar_username = user,
	    .ar_username_len = user_len,
	    .ar_password = password,
	    .ar_password_len = password_len,
	    .ar_client_addr = addr,
	    .ar_now = now,
	};
	struct identity *id = NULL;
	int r, retry_after = 0;
	bool admin;

	*out = NULL;
	memset(res, 0, sizeof(*res));
	printable_name(user, user_len < 256 ? user_len : 256, shown, sizeof(shown));
	r = auth_login(b->b_auth, &req, &id, &retry_after, err, sizeof(err));
	if (r < 0) {
		audit_failure(b, shown, "login", shown, addr, "%s", err);
		return login_outcome(r, retry_after, res);
	}
	admin = websession_is_admin(b->b_cfg, id->id_username, (const char *const *)id->id_groups,
				    id->id_ngroups);
	r = websession_open(b, id, admin, addr, bearer, now, out, token);
	if (r == 0)
		broker_audit(b, id->id_username, "login", id->id_username, "success", addr,
			     "%s session%s, %zu group(s)", bearer ? "bearer" : "cookie",
			     admin ? ", admin" : "", id->id_ngroups);
	identity_free(id);
	return login_outcome(r, 0, res);
}

enum broker_outcome broker_change_password(struct broker *b, const char *user, size_t user_len,
					   const char *password, size_t password_len,
					   const char *new_password, size_t new_password_len,
					   const char *addr, struct broker_result *res)
{
	struct auth_request req = {
	    .ar_username = user,
	    .ar_username_len = user_len,
	    .ar_password = password,
	    .ar_password_len = password_len,
	    .ar_client_addr = addr,
	    .ar_now = (int64_t)time(NULL),
	};
	char err[512] = "", shown[300];
	int r, retry_after = 0;

	memset(res, 0, sizeof(*res));
	printable_name(user, user_len < 256 ? user_len : 256, shown, sizeof(shown));
	r = auth_change_password(b->b_auth, &req, new_password, new_password_len, &retry_after, err,
				 sizeof(err));
	if (r < 0)
		audit_failure(b, shown, "password_change", shown, addr, "%s", err);
	else
		broker_audit(b, shown, "password_change", shown, "success", addr, "by the user");
	return login_outcome(r, retry_after, res);
}

int broker_user_load(struct broker *b, const char *token, bool bearer, struct broker_user *u)
{
	char hash[TOKEN_HASH_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	json_t *groups, *g;
	size_t i;

	memset(u, 0, sizeof(*u));
	if (!token || !token_well_formed(token) || token_hash(token, hash) < 0)
		return -EACCES;
	u->bu_record = store_websession_get(b->b_store, hash, now, now - b->b_cfg->bc_session_idle);
	if (!u->bu_record)
		return -EACCES;
	if (json_is_true(json_object_get(u->bu_record, "bearer")) != bearer) {
		broker_user_free(u);
		return -EACCES;
	}
	u->bu_name = jstr(u->bu_record, "username");
	u->bu_display_name = jstr(u->bu_record, "display_name");
	u->bu_csrf = jstr(u->bu_record, "csrf");
	u->bu_admin = json_is_true(json_object_get(u->bu_record, "admin"));
	u->bu_bearer = bearer;
	groups = json_object_get(u->bu_record, "groups");
	u->bu_groups = calloc(json_array_size(groups) + 1, sizeof(*u->bu_groups));
	if (!u->bu_groups) {
		broker_user_free(u);
		return -ENOMEM;
	}
	json_array_foreach (groups, i, g)
		if (json_is_string(g))
			u->bu_groups[u->bu_ngroups++] = json_string_value(g);
	/* The role as the configuration gives it now, not as it was at the login. */
	u->bu_admin = websession_is_admin(b->b_cfg, u->bu_name, u->bu_groups, u->bu_ngroups);
	return 0;
}

void broker_user_free(struct broker_user *u)
{
	free(u->bu_groups);
	json_decref(u->bu_record);
	memset(u, 0, sizeof(*u));
}

int broker_logout(struct broker *b, const char *token, const struct broker_user *u,
		  const char *addr)
{
	char hash[TOKEN_HASH_LEN + 1];
	int r = token_hash(token, hash);

	if (r == 0)
		r = store_websession_delete(b->b_store, hash);
	broker_audit(b, u->bu_name, "logout", u->bu_name, r == 0 ? "success" : "failure", addr,
		     NULL);
	return r;
}

int broker_user_add(struct broker *b, const char *username, const char *password,
		    const char *display_name, const char *mail, const json_t *groups, char *err,
		    size_t errlen)
{
	struct password_params params = password_default_params;
	char hash[PASSWORD_HASH_MAX];
	int r;

	params.pp_ln = b->b_cfg->bc_password_cost;
	if (!identity_valid_username(username, strlen(username))) {
		snprintf(err, errlen, "invalid username");
		return -EINVAL;
	}
	r = password_hash_with(password, &params, hash, sizeof(hash));
	if (r < 0) {
		snprintf(err, errlen,
			 r == -EINVAL ? "the password must be 1 to %d bytes"
				      : "cannot hash the password",
			 PASSWORD_MAX_LEN);
		return r;
	}
	r = store_user_add(b->b_store, username, hash, display_name, mail, groups,
			   (int64_t)time(NULL));
	explicit_bzero(hash, sizeof(hash));
	if (r == -EEXIST)
		snprintf(err, errlen, "user '%s' exists already", username);
	else if (r < 0)
		snprintf(err, errlen, "cannot store the user");
	return r;
}
