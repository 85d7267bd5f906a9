/* One-time display tickets: issued (only their SHA-256 is stored) and redeemed for the
 * gateway, once and before they expire, marking the session connected. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "broker/internal.h"
#include "lib/log.h"

int ticket_issue(struct broker *b, const char *session, const char *user, const char *desktop,
		 int64_t now, char *ticket, int64_t *expires)
{
	char hash[65];

	*expires = now + b->b_cfg->bc_ticket_lifetime;
	if (random_hex(ticket, BROKER_TICKET_LEN / 2) < 0 || ticket_hash(ticket, hash) < 0)
		return -EIO;
	return store_ticket_add(b->b_store, hash, session, user, desktop, now, *expires);
}

/* Connects session s of a redeemed ticket (policy's CONNECT event: a takeover when it
 * was attached already) and marks it attached. Inside the transaction. Returns 0 with
 * *takeover, or -errno. */
static int redeem_connect(struct broker *b, const struct session_rec *s,
			  const struct pool_rec *pool, int64_t now, bool *takeover)
{
	struct policy_session ps = {
	    .sess_id = s->sr_id,
	    .sess_state = pool_session_state(s->sr_state),
	    .sess_since = s->sr_since,
	};
	struct policy_transition tr;
	struct pool_view pv;
	int r;

	if (pool_view_init(&pv, pool) == -ENOMEM)
		return -ENOMEM;
	tr = policy_session_event(&pv.pv_pool, &ps, POLICY_EVENT_CONNECT, now);
	*takeover = tr.pt_reason == POLICY_TAKEOVER && s->sr_attached;
	r = session_apply_transition(b, s, &pv, &tr, now);
	if (r == 0)
		r = store_session_set_attached(b->b_store, s->sr_id, true);
	pool_view_free(&pv);
	return r < 0 ? r : 0;
}

/* Where the gateway connects for session s on desktop d: a host's display relay, or a
 * manual desktop's address and VNC password. */
static json_t *redeem_target(struct broker *b, const struct session_rec *s,
			     const struct desktop_rec *d)
{
	struct host_rec h = {0};
	bool on_host = d->dr_host && store_host_get(b->b_store, d->dr_host, &h) == 0;
	json_t *out =
	    json_pack("{s:s, s:s, s:s, s:s, s:s}", "session", s->sr_id, "username", s->sr_user,
		      "pool", s->sr_pool, "desktop", d->dr_id, "kind", on_host ? "host" : "manual");

	if (out && on_host) {
		json_object_set_new(out, "host", json_string(h.hr_id));
		json_object_set_new(out, "relay", json_string(h.hr_relay));
	} else if (out) {
		json_object_set_new(out, "address",
				    d->dr_address ? json_string(d->dr_address) : json_null());
		json_object_set_new(out, "vnc_password",
				    d->dr_vnc_password ? json_string(d->dr_vnc_password)
						       : json_null());
	}
	host_rec_release(&h);
	return out;
}

/* A refusal (ticket t, or none that could be redeemed), audited. Ends the
 * transaction: the redemption itself stays, a ticket is spent even when refused
 * afterwards. */
static void redeem_refused(struct broker *b, const struct ticket_rec *t, const char *addr)
{
	if (t)
		broker_audit(b, t->tr_user, "ticket", t->tr_desktop, "failure", addr,
			     "session over or desktop not ready");
	else
		audit_failure(b, NULL, "ticket", NULL, addr, "unknown, used or expired ticket");
	if (store_commit(b->b_store) < 0)
		log_warnx("ticket: cannot record a refused redemption");
	errno = EACCES;
}

json_t *broker_ticket_redeem(struct broker *b, const char *ticket, const char *addr)
{
	int64_t now = (int64_t)time(NULL);
	json_t *out = NULL;
	struct pool_rec pool = {0};
	struct ticket_rec t;
	struct session_rec s = {0};
	struct desktop_rec d = {0};
	bool have_t, have_s = false, have_d = false, have_pool = false, takeover = false;
	char hash[65];

	if (!ticket_well_formed(ticket) || ticket_hash(ticket, hash) < 0) {
		errno = EACCES;
		return NULL;
	}
	if (store_begin(b->b_store) < 0) {
		errno = EIO;
		return NULL;
	}
	have_t = store_ticket_redeem(b->b_store, hash, now, &t) == 0;
	if (have_t) {
		have_s = store_session_get(b->b_store, t.tr_session, &s) == 0;
		have_d = store_desktop_get(b->b_store, t.tr_desktop, &d) == 0;
		have_pool = have_s && store_pool_get(b->b_store, s.sr_pool, &pool) == 0;
	}
	if (!have_s || !have_d || !have_pool || s.sr_state == SESSION_LOGGED_OFF ||
	    d.dr_state != DESKTOP_READY || redeem_connect(b, &s, &pool, now, &takeover) < 0) {
		redeem_refused(b, have_t ? &t : NULL, addr);
		goto out;
	}
	out = redeem_target(b, &s, &d);
	broker_audit(b, s.sr_user, "ticket", d.dr_id, "success", addr, "session=%s redeemed%s",
		     s.sr_id, takeover ? " (takeover)" : "");
	if (!out || store_commit(b->b_store) < 0) {
		if (!out)
			store_rollback(b->b_store);
		json_decref(out);
		out = NULL;
		errno = EIO;
	}
out:
	ticket_rec_release(&t);
	session_rec_release(&s);
	desktop_rec_release(&d);
	pool_rec_release(&pool);
	return out;
}
