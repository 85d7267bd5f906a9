/* Connect: in one store transaction, reconnect the user's session or let
 * policy_assign() take, start or create a desktop, and issue a ticket once the desktop
 * is ready; after the commit the ticket is registered with the desktop's host. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/hostclient.h"
#include "broker/internal.h"
#include "lib/log.h"

#define RETRY_AFTER_S 2

static json_t *error_body(const char *code, const char *msg)
{
	return json_pack("{s:s, s:s}", "error", msg, "code", code);
}

static const char *deny_message(enum policy_reason r)
{
	switch (r) {
	case POLICY_NOT_ENTITLED: return "you are not entitled to this pool";
	case POLICY_POOL_DISABLED: return "this pool is disabled";
	case POLICY_ADDRESS_DENIED: return "this pool is not available from your address";
	case POLICY_OUTSIDE_HOURS: return "this pool is not available at this time";
	case POLICY_SESSION_LIMIT: return "you have as many sessions as allowed";
	case POLICY_DESKTOP_FAILED: return "your desktop has failed; contact an administrator";
	default: return "no desktop is available";
	}
}

static unsigned deny_status(enum policy_reason r)
{
	switch (r) {
	case POLICY_SESSION_LIMIT: return 409;
	case POLICY_DESKTOP_FAILED:
	case POLICY_NO_DESKTOP:
	case POLICY_NO_HOST:
	case POLICY_NO_CAPACITY: return 503;
	default: return 403;
	}
}

/* A new session on desktop for u; its id goes to id (room for 20). */
static int new_session(struct broker *b, const struct broker_user *u, const char *pool,
		       const char *desktop, const char *addr, int64_t now, char *id)
{
	strcpy(id, "s-");
	if (random_hex(id + 2, 8) < 0)
		return -EIO;
	return store_session_add(b->b_store, id, u->bu_name, pool, desktop, "connected", addr, now);
}

/* What connect does after the transaction: register the ticket with the host. */
struct connect_plan {
	char cp_session[24], cp_desktop[48], cp_ticket[BROKER_TICKET_LEN + 1];
	int64_t cp_expires;
	bool cp_ticket_issued;
	char *cp_host_url; /* NULL: a manual desktop */
};

int broker_connect(struct broker *b, const struct broker_user *u, const char *pool_id,
		   const char *addr, const char *gateway_host, json_t **out)
{
	int64_t now = (int64_t)time(NULL);
	struct connect_plan plan;
	struct policy_assignment a;
	struct policy_client pc;
	struct policy_addr pa;
	struct pool_view pv;
	struct snapshot sn;
	json_t *pool, *d;
	char err[512], url[1024];
	unsigned status = 200;
	int r;

	memset(&plan, 0, sizeof(plan));
	memset(&sn, 0, sizeof(sn));
	*out = NULL;
	snapshot_client(addr, now, &pa, &pc);
	if (store_begin(b->b_store) < 0) {
		*out = error_body("unavailable", "the broker's store is unavailable");
		return 503;
	}
	pool = store_pool_get(b->b_store, pool_id);
	if (!pool || json_is_true(json_object_get(pool, "deleting"))) {
		store_rollback(b->b_store);
		json_decref(pool);
		*out = error_body("not_found", "no such pool");
		return 404;
	}
	r = pool_view_init(&pv, pool);
	json_decref(pool);
	if (r == -ENOMEM || snapshot_load(b, pool_id, u->bu_name, &sn) < 0) {
		status = 503;
		*out = error_body("unavailable", "the broker's store is unavailable");
		goto out_rollback;
	}
	a = snapshot_assign(b, &pv, u, &pc, &sn);
	switch (a.as_action) {
	case POLICY_ASSIGN_DENY:
		status = deny_status(a.as_reason);
		*out = error_body(policy_reason_name(a.as_reason), deny_message(a.as_reason));
		broker_audit(b, u->bu_name, "assign", pool_id, "denied", addr, "%s",
			     policy_reason_name(a.as_reason));
		if (store_commit(b->b_store) < 0)
			status = 503;
		goto out;
	case POLICY_ASSIGN_WAIT:
		status = 503;
		*out = json_pack("{s:s, s:s, s:i}", "error", "desktops are being prepared; retry",
				 "code", policy_reason_name(a.as_reason), "retry_after",
				 RETRY_AFTER_S);
		goto out_rollback;
	case POLICY_ASSIGN_RECONNECT:
		snprintf(plan.cp_session, sizeof(plan.cp_session), "%s", a.as_session->sess_id);
		snprintf(plan.cp_desktop, sizeof(plan.cp_desktop), "%s",
			 a.as_session->sess_desktop);
		if (a.as_session->sess_state != POLICY_SESSION_CONNECTED)
			r = store_session_set_state(b->b_store, plan.cp_session, "connected", now);
		else
			r = 0;
		break;
	case POLICY_ASSIGN_CONNECT:
	case POLICY_ASSIGN_START:
		snprintf(plan.cp_desktop, sizeof(plan.cp_desktop), "%s", a.as_desktop->desk_id);
		r = new_session(b, u, pool_id, plan.cp_desktop, addr, now, plan.cp_session);
		if (r == 0 && a.as_claim)
			r = store_desktop_set_owner(b->b_store, plan.cp_desktop, u->bu_name);
		if (r == 0 && a.as_action == POLICY_ASSIGN_START)
			r = store_desktop_set_state(b->b_store, plan.cp_desktop, "stopped",
						    "provisioning", now) < 0
				? -EIO
				: 0;
		break;
	case POLICY_ASSIGN_CREATE: {
		enum policy_reason why;
		char *host = hosts_place(b, &pv, &why);

		if (!host) {
			status = 503;
			*out = error_body(policy_reason_name(why), "no host can run a new desktop");
			broker_audit(b, u->bu_name, "assign", pool_id, "failure", addr, "%s",
				     policy_reason_name(why));
			if (store_commit(b->b_store) < 0)
				status = 503;
			goto out;
		}
		snprintf(plan.cp_desktop, sizeof(plan.cp_desktop), "%s-", pool_id);
		r = random_hex(plan.cp_desktop + strlen(plan.cp_desktop), 4);
		if (r == 0)
			r = store_desktop_add(b->b_store, plan.cp_desktop, pool_id, host, NULL,
					      NULL, a.as_claim ? u->bu_name : NULL, "provisioning",
					      now);
		free(host);
		if (r == 0)
			r = new_session(b, u, pool_id, plan.cp_desktop, addr, now, plan.cp_session);
		break;
	}
	}
	if (r < 0) {
		/* -EEXIST: the database refused a second session on a desktop */
		log_warnx("connect user=%s pool=%s: cannot record the assignment: %s", u->bu_name,
			  pool_id, strerror(-r));
		status = 503;
		*out = error_body("unavailable", "cannot record the assignment; retry");
		goto out_rollback;
	}
	d = store_desktop_get(b->b_store, plan.cp_desktop);
	if (a.as_action != POLICY_ASSIGN_RECONNECT)
		broker_audit(b, u->bu_name, "assign", plan.cp_desktop, "success", addr,
			     "pool=%s session=%s %s", pool_id, plan.cp_session,
			     policy_reason_name(a.as_reason));
	if (d && !strcmp(jstr(d, "state"), "ready")) {
		r = ticket_issue(b, plan.cp_session, u->bu_name, plan.cp_desktop, now,
				 plan.cp_ticket, &plan.cp_expires);
		plan.cp_ticket_issued = r == 0;
		if (jstr(d, "host_id")) {
			json_t *h = store_host_get(b->b_store, jstr(d, "host_id"));

			plan.cp_host_url = h ? strdup(jstr(h, "url")) : NULL;
			json_decref(h);
		}
		broker_audit(b, u->bu_name, "connect", plan.cp_desktop,
			     r == 0 ? "success" : "failure", addr,
			     "session=%s pool=%s ticket issued", plan.cp_session, pool_id);
	} else {
		status = 202;
	}
	json_decref(d);
	if (r < 0 || store_commit(b->b_store) < 0) {
		if (r < 0)
			store_rollback(b->b_store);
		status = 503;
		*out = error_body("unavailable", "cannot record the assignment; retry");
		goto out_free;
	}
	broker_kick(b);
	if (status == 202) {
		*out = json_pack("{s:s, s:i, s:s, s:s}", "state", "starting", "retry_after",
				 RETRY_AFTER_S, "session", plan.cp_session, "desktop",
				 plan.cp_desktop);
		goto out_free;
	}
	if (plan.cp_host_url) {
		json_t *body = json_pack("{s:s, s:I}", "ticket", plan.cp_ticket, "expires",
					 (json_int_t)plan.cp_expires),
		       *reply = NULL;
		char path[128];

		snprintf(path, sizeof(path), "/api/v1/desktops/%s/ticket", plan.cp_desktop);
		r = b->b_hosts ? hostclient_call(b->b_hosts, plan.cp_host_url, "POST", path, body,
						 &reply, err, sizeof(err))
			       : -ENOTCONN;
		json_decref(body);
		json_decref(reply);
		if (r != 200) {
			log_warnx("connect desktop=%s: the host did not take the ticket: %s",
				  plan.cp_desktop,
				  r == -ENOTCONN ? "no [hosts] certificates" : err);
			status = 503;
			*out = json_pack("{s:s, s:s, s:i}", "error",
					 "the desktop's host is not answering; retry", "code",
					 "host_unavailable", "retry_after", RETRY_AFTER_S);
			goto out_free;
		}
	}
	snprintf(url, sizeof(url), "wss://%s/gateway?ticket=%s", gateway_host, plan.cp_ticket);
	*out = json_pack("{s:s, s:I, s:s, s:s, s:s}", "ticket", plan.cp_ticket, "expires",
			 (json_int_t)plan.cp_expires, "gateway_url", url, "session",
			 plan.cp_session, "desktop", plan.cp_desktop);
	log_info("connect user=%s pool=%s desktop=%s session=%s: ticket issued", u->bu_name,
		 pool_id, plan.cp_desktop, plan.cp_session);
	goto out_free;

out_rollback:
	store_rollback(b->b_store);
out:
out_free:
	explicit_bzero(plan.cp_ticket, sizeof(plan.cp_ticket));
	explicit_bzero(url, sizeof(url));
	free(plan.cp_host_url);
	snapshot_free(&sn);
	pool_view_free(&pv);
	if (!*out)
		*out = error_body("internal", "internal error");
	return (int)status;
}
