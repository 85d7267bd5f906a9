/* Session life cycle: disconnect and logoff asked for by users, admins and the gateway,
 * each in one transaction with policy_session_event(), and the session timers the
 * maintenance pass runs (disconnect timeouts, sessions whose ticket was never used). */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/internal.h"
#include "lib/log.h"

int session_apply_transition(struct broker *b, const struct session_rec *session,
			     const struct pool_view *pv, const struct policy_transition *t,
			     int64_t now)
{
	int r = 0;

	if (t->pt_changed)
		r = store_session_set_state(b->b_store, session->sr_id,
					    pool_stored_session_state(t->pt_state), now);
	if (r == 0 && t->pt_state == POLICY_SESSION_LOGGED_OFF)
		r = store_session_set_attached(b->b_store, session->sr_id, false);
	if (r < 0 || pv->pv_pool.pool_provisioning == POLICY_MANUAL)
		return r;
	if (t->pt_desktop == POLICY_DESKTOP_REFRESH)
		r = store_desktop_set_state(b->b_store, session->sr_desktop, DESKTOP_ANY,
					    DESKTOP_REFRESHING, now);
	else if (t->pt_desktop == POLICY_DESKTOP_DESTROY)
		r = store_desktop_set_state(b->b_store, session->sr_desktop, DESKTOP_ANY,
					    DESKTOP_DELETING, now);
	return r < 0 ? r : 0;
}

static void sessions_desktop_lost(struct broker *b, const struct desktop_rec *d,
				  const struct pool_view *pv, int64_t now, const char *detail)
{
	struct session_list sessions;

	store_sessions_list(b->b_store, NULL, d->dr_pool, true, &sessions);
	for (size_t i = 0; i < sessions.sl_n; i++) {
		const struct session_rec *s = &sessions.sl_recs[i];
		struct policy_session ps = pool_session_view(s);
		struct policy_transition t;

		if (strcmp(s->sr_desktop, d->dr_id))
			continue;
		t = policy_session_event(&pv->pv_pool, &ps, POLICY_EVENT_DESKTOP_LOST, now);
		t.pt_desktop = POLICY_DESKTOP_KEEP; /* the desktop's fate is its caller's */
		session_apply_transition(b, s, pv, &t, now);
		broker_audit(b, s->sr_user, "session_lost", s->sr_id, "success", NULL, "%s",
			     detail);
	}
	session_list_free(&sessions);
}

void desktop_out_of_service(struct broker *b, const struct desktop_rec *d,
			    const struct pool_rec *pool, enum desktop_state next, int64_t now,
			    const char *detail)
{
	struct pool_rec looked_up = {0};
	struct pool_view pv;

	if (!pool && store_pool_get(b->b_store, d->dr_pool, &looked_up) == 0)
		pool = &looked_up;
	if (pool && pool_view_init(&pv, pool) != -ENOMEM) {
		sessions_desktop_lost(b, d, &pv, now, detail);
		pool_view_free(&pv);
	}
	pool_rec_release(&looked_up);
	store_desktop_set_state(b->b_store, d->dr_id, d->dr_state, next, now);
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
	struct session_rec s;
	struct pool_rec pool;
	struct pool_view pv;
	int r;

	if (store_begin(b->b_store) < 0)
		return -EIO;
	if (store_session_get(b->b_store, id, &s) < 0 ||
	    (!u->bu_admin && strcasecmp(s.sr_user, u->bu_name))) {
		store_rollback(b->b_store);
		session_rec_release(&s);
		return -ENOENT;
	}
	r = store_pool_get(b->b_store, s.sr_pool, &pool);
	if (r < 0 || pool_view_init(&pv, &pool) == -ENOMEM) {
		if (r == 0)
			pool_view_free(&pv);
		store_rollback(b->b_store);
		session_rec_release(&s);
		pool_rec_release(&pool);
		return -EIO;
	}
	ps = pool_session_view(&s);
	t = policy_session_event(&pv.pv_pool, &ps, (enum policy_session_event)event, now);
	if (t.pt_reason == POLICY_INVALID_TRANSITION) {
		r = -EINVAL;
		store_rollback(b->b_store);
		goto out;
	}
	r = session_apply_transition(b, &s, &pv, &t, now);
	broker_audit(b, u->bu_name, what, id, r == 0 ? "success" : "failure", addr,
		     "user=%s desktop=%s -> %s", s.sr_user, s.sr_desktop,
		     session_state_name(pool_stored_session_state(t.pt_state)));
	if (r < 0) {
		store_rollback(b->b_store);
	} else if (store_commit(b->b_store) < 0) {
		r = -EIO;
	} else {
		log_info("session=%s user=%s: %s by %s", id, s.sr_user, what, u->bu_name);
		broker_kick(b);
	}
out:
	pool_view_free(&pv);
	pool_rec_release(&pool);
	session_rec_release(&s);
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
static bool never_opened(struct broker *b, const struct session_rec *s, int64_t now)
{
	int lifetime = b->b_cfg->bc_ticket_lifetime;
	struct desktop_rec d;
	bool r;

	if (s->sr_attached || s->sr_since + lifetime > now ||
	    store_tickets_live(b->b_store, s->sr_id, now) != 0)
		return false;
	if (store_desktop_get(b->b_store, s->sr_desktop, &d) < 0)
		return false;
	r = d.dr_state == DESKTOP_READY && d.dr_since + lifetime <= now;
	desktop_rec_release(&d);
	return r;
}

/* A session no client holds whose desktop will not come: the desktop is gone or in
 * error (the session ends), or it has not been ready for provision_timeout after the
 * session began and no ticket is waiting (the session is disconnected, then ends by the
 * pool's disconnect timeout). POLICY_EVENT_TICK: neither. */
static enum policy_session_event stranded(struct broker *b, const struct session_rec *s,
					  int64_t now)
{
	enum policy_session_event ev = POLICY_EVENT_TICK;
	struct desktop_rec d;
	int r;

	if (s->sr_attached)
		return ev;
	r = store_desktop_get(b->b_store, s->sr_desktop, &d);
	if (r < 0)
		return r == -ENOENT ? POLICY_EVENT_DESKTOP_LOST : ev;
	if (d.dr_state == DESKTOP_ERROR)
		ev = POLICY_EVENT_DESKTOP_LOST;
	else if (s->sr_state == SESSION_CONNECTED && d.dr_state != DESKTOP_READY &&
		 s->sr_since + b->b_cfg->bc_provision_timeout <= now &&
		 store_tickets_live(b->b_store, s->sr_id, now) == 0)
		ev = POLICY_EVENT_DISCONNECT;
	desktop_rec_release(&d);
	return ev;
}

void sessions_tick(struct broker *b, int64_t now)
{
	struct session_list sessions;

	store_sessions_list(b->b_store, NULL, NULL, true, &sessions);
	for (size_t i = 0; i < sessions.sl_n; i++) {
		const struct session_rec *s = &sessions.sl_recs[i];
		const char *id = s->sr_id;
		enum policy_session_event ev = POLICY_EVENT_TICK;
		struct policy_transition t;
		struct policy_session ps;
		struct session_rec cur;
		struct pool_rec pool = {0};
		struct pool_view pv;
		bool have_pool;

		ev = stranded(b, s, now);
		if (ev == POLICY_EVENT_TICK && s->sr_state == SESSION_CONNECTED) {
			if (!never_opened(b, s, now))
				continue;
			ev = POLICY_EVENT_DISCONNECT;
		}
		if (store_begin(b->b_store) < 0)
			break;
		have_pool = store_session_get(b->b_store, id, &cur) == 0 &&
			    store_pool_get(b->b_store, cur.sr_pool, &pool) == 0;
		if (!have_pool || cur.sr_state != s->sr_state ||
		    pool_view_init(&pv, &pool) == -ENOMEM) {
			store_rollback(b->b_store);
			session_rec_release(&cur);
			pool_rec_release(&pool);
			continue;
		}
		ps = pool_session_view(&cur);
		t = policy_session_event(&pv.pv_pool, &ps, ev, now);
		if (t.pt_changed) {
			session_apply_transition(b, &cur, &pv, &t, now);
			broker_audit(b, cur.sr_user,
				     ev == POLICY_EVENT_DISCONNECT ? "disconnect" : "logoff", id,
				     "success", NULL, "%s, desktop=%s",
				     policy_reason_name(t.pt_reason), cur.sr_desktop);
			log_info("session=%s user=%s: %s (%s)", id, cur.sr_user,
				 session_state_name(pool_stored_session_state(t.pt_state)),
				 policy_reason_name(t.pt_reason));
		}
		if (store_commit(b->b_store) < 0)
			log_warnx("session=%s: cannot record its timeout", id);
		pool_view_free(&pv);
		pool_rec_release(&pool);
		session_rec_release(&cur);
	}
	session_list_free(&sessions);
}
