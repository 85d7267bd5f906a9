/* Session life cycle: disconnect and logoff asked for by users, admins and the gateway,
 * each in one transaction with policy_session_event(), and the session timers the
 * maintenance pass runs (disconnect timeouts, sessions whose ticket was never used). */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/internal.h"
#include "lib/log.h"

int session_apply_transition(struct broker *b, const json_t *session, const struct pool_view *pv,
			     const struct policy_transition *t, int64_t now)
{
	const char *id = jstr(session, "id"), *desktop = jstr(session, "desktop_id");
	int r = 0;

	if (t->pt_changed)
		r = store_session_set_state(b->b_store, id, pool_session_state_name(t->pt_state),
					    now);
	if (r == 0 && t->pt_state == POLICY_SESSION_LOGGED_OFF)
		r = store_session_set_attached(b->b_store, id, false);
	if (r < 0 || pv->pv_pool.pool_provisioning == POLICY_MANUAL)
		return r;
	if (t->pt_desktop == POLICY_DESKTOP_REFRESH)
		r = store_desktop_set_state(b->b_store, desktop, DESKTOP_ANY, DESKTOP_REFRESHING,
					    now);
	else if (t->pt_desktop == POLICY_DESKTOP_DESTROY)
		r = store_desktop_set_state(b->b_store, desktop, DESKTOP_ANY, DESKTOP_DELETING,
					    now);
	return r < 0 ? r : 0;
}

void sessions_desktop_lost(struct broker *b, const struct desktop_rec *d,
			   const struct pool_view *pv, int64_t now, const char *detail)
{
	json_t *sessions = store_sessions_list(b->b_store, NULL, d->dr_pool, true), *s;
	size_t i;

	json_array_foreach (sessions, i, s) {
		struct policy_session ps = {
		    .sess_id = jstr(s, "id"),
		    .sess_state = pool_session_state(jstr(s, "state")),
		    .sess_since = jint(s, "since"),
		};
		struct policy_transition t;

		if (strcmp(jstr(s, "desktop_id"), d->dr_id))
			continue;
		t = policy_session_event(&pv->pv_pool, &ps, POLICY_EVENT_DESKTOP_LOST, now);
		t.pt_desktop = POLICY_DESKTOP_KEEP; /* the desktop's fate is its caller's */
		session_apply_transition(b, s, pv, &t, now);
		broker_audit(b, jstr(s, "username"), "session_lost", jstr(s, "id"), "success", NULL,
			     "%s", detail);
	}
	json_decref(sessions);
}

/* Disconnect or logoff of session id for u, in one transaction. Returns 0, -ENOENT (no
 * such session of theirs), -EINVAL (logged off already) or -EIO. */
static int session_event(struct broker *b, const struct broker_user *u, const char *id, int event,
			 const char *addr)
{
	int64_t now = (int64_t)time(NULL);
	const char *what = event == POLICY_EVENT_LOGOFF ? "logoff" : "disconnect";
	struct policy_transition t;
	struct policy_session ps;
	struct pool_view pv;
	json_t *s, *pool = NULL;
	int r;

	if (store_begin(b->b_store) < 0)
		return -EIO;
	s = store_session_get(b->b_store, id);
	if (!s || (!u->bu_admin && strcasecmp(jstr(s, "username"), u->bu_name))) {
		store_rollback(b->b_store);
		json_decref(s);
		return -ENOENT;
	}
	pool = store_pool_get(b->b_store, jstr(s, "pool_id"));
	if (!pool || pool_view_init(&pv, pool) == -ENOMEM) {
		if (pool)
			pool_view_free(&pv);
		store_rollback(b->b_store);
		json_decref(s);
		json_decref(pool);
		return -EIO;
	}
	ps = (struct policy_session){
	    .sess_id = jstr(s, "id"),
	    .sess_user = jstr(s, "username"),
	    .sess_pool = jstr(s, "pool_id"),
	    .sess_desktop = jstr(s, "desktop_id"),
	    .sess_state = pool_session_state(jstr(s, "state")),
	    .sess_since = jint(s, "since"),
	};
	t = policy_session_event(&pv.pv_pool, &ps, (enum policy_session_event)event, now);
	if (t.pt_reason == POLICY_INVALID_TRANSITION) {
		r = -EINVAL;
		store_rollback(b->b_store);
		goto out;
	}
	r = session_apply_transition(b, s, &pv, &t, now);
	broker_audit(b, u->bu_name, what, id, r == 0 ? "success" : "failure", addr,
		     "user=%s desktop=%s -> %s", jstr(s, "username"), jstr(s, "desktop_id"),
		     pool_session_state_name(t.pt_state));
	if (r < 0) {
		store_rollback(b->b_store);
	} else if (store_commit(b->b_store) < 0) {
		r = -EIO;
	} else {
		log_info("session=%s user=%s: %s by %s", id, jstr(s, "username"), what, u->bu_name);
		broker_kick(b);
	}
out:
	pool_view_free(&pv);
	json_decref(pool);
	json_decref(s);
	return r;
}

enum broker_outcome broker_session_event(struct broker *b, const struct broker_user *u,
					 const char *id, int event, const char *addr,
					 struct broker_result *res)
{
	int r = session_event(b, u, id, event, addr);

	memset(res, 0, sizeof(*res));
	if (r == 0)
		return broker_result_set(res, BROKER_OK, NULL, "done");
	if (r == -ENOENT)
		return broker_result_set(res, BROKER_NOT_FOUND, NULL, "no such session");
	if (r == -EINVAL)
		return broker_result_set(res, BROKER_LOGGED_OFF, NULL,
					 "the session has ended already");
	return broker_result_set(res, BROKER_UNAVAILABLE, NULL,
				 "the broker's store is unavailable");
}

int broker_session_closed(struct broker *b, const char *session_id, const char *addr)
{
	struct broker_user gateway = {.bu_name = "gateway", .bu_admin = true};

	return session_event(b, &gateway, session_id, POLICY_EVENT_DISCONNECT, addr);
}

/* A connected session handed out but never opened: no client used a ticket, and none is
 * left (the desktop has been ready for a ticket's lifetime). It is then disconnected. */
static bool never_opened(struct broker *b, const json_t *s, int64_t now)
{
	int lifetime = b->b_cfg->bc_ticket_lifetime;
	struct desktop_rec d;
	bool r;

	if (json_is_true(json_object_get(s, "attached")) || jint(s, "since") + lifetime > now ||
	    store_tickets_live(b->b_store, jstr(s, "id"), now) != 0)
		return false;
	if (store_desktop_get(b->b_store, jstr(s, "desktop_id"), &d) < 0)
		return false;
	r = d.dr_state == DESKTOP_READY && d.dr_since + lifetime <= now;
	desktop_rec_release(&d);
	return r;
}

void sessions_tick(struct broker *b, int64_t now)
{
	json_t *sessions = store_sessions_list(b->b_store, NULL, NULL, true), *s;
	size_t i;

	json_array_foreach (sessions, i, s) {
		const char *id = jstr(s, "id");
		enum policy_session_event ev = POLICY_EVENT_TICK;
		struct policy_transition t;
		struct policy_session ps;
		struct pool_view pv;
		json_t *cur, *pool;

		if (!strcmp(jstr(s, "state"), "connected")) {
			if (!never_opened(b, s, now))
				continue;
			ev = POLICY_EVENT_DISCONNECT;
		}
		if (store_begin(b->b_store) < 0)
			break;
		cur = store_session_get(b->b_store, id);
		pool = cur ? store_pool_get(b->b_store, jstr(cur, "pool_id")) : NULL;
		if (!cur || !pool || strcmp(jstr(cur, "state"), jstr(s, "state")) ||
		    pool_view_init(&pv, pool) == -ENOMEM) {
			store_rollback(b->b_store);
			json_decref(cur);
			json_decref(pool);
			continue;
		}
		ps = (struct policy_session){
		    .sess_id = id,
		    .sess_state = pool_session_state(jstr(cur, "state")),
		    .sess_since = jint(cur, "since"),
		};
		t = policy_session_event(&pv.pv_pool, &ps, ev, now);
		if (t.pt_changed) {
			session_apply_transition(b, cur, &pv, &t, now);
			broker_audit(b, jstr(cur, "username"),
				     ev == POLICY_EVENT_TICK ? "logoff" : "disconnect", id,
				     "success", NULL, "%s, desktop=%s",
				     policy_reason_name(t.pt_reason), jstr(cur, "desktop_id"));
			log_info("session=%s user=%s: %s (%s)", id, jstr(cur, "username"),
				 pool_session_state_name(t.pt_state),
				 policy_reason_name(t.pt_reason));
		}
		if (store_commit(b->b_store) < 0)
			log_warnx("session=%s: cannot record its timeout", id);
		pool_view_free(&pv);
		json_decref(pool);
		json_decref(cur);
	}
	json_decref(sessions);
}
