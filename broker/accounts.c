/* Accounts checked again after the login: a user deleted (by an admin, or from the
 * directory) loses every web session and desktop session at once; a user whose groups
 * changed keeps their web sessions with the new groups and admin role, and loses the
 * desktop sessions of pools they are no longer entitled to. The maintenance pass looks
 * the users with web sessions up again every [broker] account_recheck, and each admin
 * request looks its administrator up first. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "broker/internal.h"
#include "lib/log.h"
#include "policy/access.h"

/* At most this many lookups a pass: the rest wait for the next pass. */
#define RECHECK_PER_PASS 200

/* The actor the audit log names for what the broker ends by itself. */
static const struct broker_user broker_actor = {.bu_name = "broker", .bu_admin = true};

/* Whether user (NULL: nobody any more) is still entitled to pool. */
static bool still_entitled(struct broker *b, const char *pool, const struct identity *user)
{
	struct policy_user pu;
	struct pool_rec rec;
	struct pool_view pv;
	bool ok = false;

	if (!user)
		return false;
	if (store_pool_get(b->b_store, pool, &rec) < 0)
		return true; /* cannot tell: the session stays */
	if (pool_view_init(&pv, &rec) == 0) {
		pu = (struct policy_user){.pu_name = user->id_username,
					  .pu_groups = (const char *const *)user->id_groups,
					  .pu_ngroups = user->id_ngroups};
		ok = policy_is_entitled(&pv.pv_pool, &pu);
		pool_view_free(&pv);
	} else {
		ok = true;
	}
	pool_rec_release(&rec);
	return ok;
}

/* Logs off username's live desktop sessions in pools user (NULL: all) may no longer
 * use. Returns how many. */
static int end_desktop_sessions(struct broker *b, const char *username, const struct identity *user,
				const char *why)
{
	struct session_list sessions;
	struct broker_result res;
	int n = 0;

	if (store_sessions_list(b->b_store, username, NULL, true, &sessions) < 0)
		return 0;
	for (size_t i = 0; i < sessions.sl_n; i++) {
		const struct session_rec *s = &sessions.sl_recs[i];

		if (still_entitled(b, s->sr_pool, user))
			continue;
		if (broker_session_event(b, &broker_actor, s->sr_id, POLICY_EVENT_LOGOFF, NULL,
					 &res) == BROKER_OK) {
			log_info("session=%s user=%s pool=%s logged off: %s", s->sr_id, username,
				 s->sr_pool, why);
			n++;
		}
	}
	session_list_free(&sessions);
	return n;
}

void accounts_end_user(struct broker *b, const char *username, const char *why)
{
	int web = store_websessions_delete_user(b->b_store, username);
	int desktops = end_desktop_sessions(b, username, NULL, why);

	if (web > 0 || desktops > 0)
		broker_audit(b, "broker", "sessions_end", username, "success", NULL,
			     "%s: %d web session(s), %d desktop session(s) ended", why,
			     web > 0 ? web : 0, desktops);
}

/* username as the backend knows them now: gone, changed or unknown (the backend
 * could not tell: nothing changes). */
int broker_account_recheck(struct broker *b, const char *username)
{
	struct identity *id = NULL;
	json_t *groups;
	char err[512];
	bool admin;
	int r = auth_lookup(b->b_auth, username, &id, err, sizeof(err));

	if (r == -ENOENT) {
		accounts_end_user(b, username, "the user no longer exists");
		return -ENOENT;
	}
	if (r < 0) {
		log_warnx("account check of user=%s: %s; their sessions stay", username, err);
		return r;
	}
	groups = json_array();
	for (size_t i = 0; groups && i < id->id_ngroups; i++)
		json_array_append_new(groups, json_string(id->id_groups[i]));
	admin = websession_is_admin(b->b_cfg, id->id_username, (const char *const *)id->id_groups,
				    id->id_ngroups);
	if (groups)
		store_websessions_set_user(b->b_store, username, groups, admin);
	json_decref(groups);
	if (end_desktop_sessions(b, username, id, "no longer entitled to the pool") > 0)
		broker_audit(b, "broker", "sessions_end", username, "success", NULL,
			     "groups changed: sessions in pools no longer entitled ended");
	identity_free(id);
	return 0;
}

void accounts_tick(struct broker *b, int64_t now)
{
	json_t *users;
	size_t n;

	if (!b->b_cfg->bc_account_recheck || now - b->b_last_recheck < b->b_cfg->bc_account_recheck)
		return;
	b->b_last_recheck = now;
	users = store_websession_users(b->b_store, now);
	n = json_array_size(users);
	/* round robin: with more users than a pass checks, the next pass goes on */
	for (size_t i = 0; i < n && i < RECHECK_PER_PASS; i++)
		broker_account_recheck(
		    b, jstr(json_array_get(users, (b->b_recheck_next + i) % n), "username"));
	b->b_recheck_next = n ? (b->b_recheck_next + RECHECK_PER_PASS) % n : 0;
	json_decref(users);
}
