/* Connect: in one store transaction, reconnect the user's session or let
 * policy_assign() take, start or create a desktop, and issue a ticket once the desktop
 * is ready; after the commit the ticket is registered with the desktop's host. Answers
 * are domain outcomes (api.c turns them into HTTP). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/hostclient.h"
#include "broker/internal.h"
#include "lib/log.h"

#define RETRY_AFTER_S 2

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

/* A refusal's kind: the user's own limit, nothing to run on now, or policy says no. */
static enum broker_outcome deny_outcome(enum policy_reason r)
{
	switch (r) {
	case POLICY_SESSION_LIMIT: return BROKER_LIMIT;
	case POLICY_DESKTOP_FAILED:
	case POLICY_NO_DESKTOP:
	case POLICY_NO_HOST:
	case POLICY_NO_CAPACITY: return BROKER_NO_CAPACITY;
	default: return BROKER_DENIED;
	}
}

/* A new session on desktop for u; its id goes to id (room for 20). */
static int new_session(struct broker *b, const struct broker_user *u, const char *pool,
		       const char *desktop, const char *addr, int64_t now, char *id)
{
	strcpy(id, "s-");
	if (random_hex(id + 2, 8) < 0)
		return -EIO;
	return store_session_add(b->b_store, id, u->bu_name, pool, desktop, SESSION_CONNECTED, addr,
				 now);
}

/* Refused (recorded in the audit log) or asked to wait (nothing recorded). Ends the
 * transaction. */
static void connect_refused(struct broker *b, const struct broker_user *u, const char *pool_id,
			    const char *addr, const struct policy_assignment *a,
			    struct broker_result *res)
{
	const char *why = policy_reason_name(a->as_reason);

	if (a->as_action == POLICY_ASSIGN_WAIT) {
		store_rollback(b->b_store);
		broker_result_set(res, BROKER_NO_CAPACITY, why,
				  "desktops are being prepared; retry");
		res->br_retry_after = RETRY_AFTER_S;
		return;
	}
	broker_result_set(res, deny_outcome(a->as_reason), why, "%s", deny_message(a->as_reason));
	broker_audit(b, u->bu_name, "assign", pool_id, "denied", addr, "%s", why);
	if (store_commit(b->b_store) < 0)
		res->br_outcome = BROKER_UNAVAILABLE;
}

/* A new desktop of pool_id on the host placement picks, with u's session on it.
 * Returns 0, -EHOSTUNREACH with *why (no host can take it) or -errno. */
static int create_desktop(struct broker *b, const struct broker_user *u, const char *pool_id,
			  const char *addr, struct pool_view *pv, bool claim, int64_t now,
			  struct broker_connection *cn, enum policy_reason *why)
{
	char *host = hosts_place(b, pv, why);
	int r;

	if (!host)
		return -EHOSTUNREACH;
	snprintf(cn->cn_desktop, sizeof(cn->cn_desktop), "%s-", pool_id);
	r = random_hex(cn->cn_desktop + strlen(cn->cn_desktop), 4);
	if (r == 0)
		r = store_desktop_add(b->b_store, cn->cn_desktop, pool_id, host, NULL, NULL,
				      claim ? u->bu_name : NULL, DESKTOP_PROVISIONING, now);
	free(host);
	if (r == 0)
		r = new_session(b, u, pool_id, cn->cn_desktop, addr, now, cn->cn_session);
	return r;
}

/* Writes assignment a: the session reconnected, or a new one on a free, stopped (then
 * started) or new desktop. Inside the transaction. Returns 0, -EHOSTUNREACH with *why
 * or -errno (-EEXIST: the database refused a second session on a desktop). */
static int record_assignment(struct broker *b, const struct broker_user *u, const char *pool_id,
			     const char *addr, struct pool_view *pv,
			     const struct policy_assignment *a, int64_t now,
			     struct broker_connection *cn, enum policy_reason *why)
{
	int r = 0;

	switch (a->as_action) {
	case POLICY_ASSIGN_RECONNECT:
		snprintf(cn->cn_session, sizeof(cn->cn_session), "%s", a->as_session->sess_id);
		snprintf(cn->cn_desktop, sizeof(cn->cn_desktop), "%s", a->as_session->sess_desktop);
		if (a->as_session->sess_state != POLICY_SESSION_CONNECTED)
			r = store_session_set_state(b->b_store, cn->cn_session, SESSION_CONNECTED,
						    now);
		return r;
	case POLICY_ASSIGN_CONNECT:
	case POLICY_ASSIGN_START:
		snprintf(cn->cn_desktop, sizeof(cn->cn_desktop), "%s", a->as_desktop->desk_id);
		r = new_session(b, u, pool_id, cn->cn_desktop, addr, now, cn->cn_session);
		if (r == 0 && a->as_claim)
			r = store_desktop_set_owner(b->b_store, cn->cn_desktop, u->bu_name);
		if (r == 0 && a->as_action == POLICY_ASSIGN_START)
			r = store_desktop_set_state(b->b_store, cn->cn_desktop, DESKTOP_STOPPED,
						    DESKTOP_PROVISIONING, now) < 0
				? -EIO
				: 0;
		return r;
	case POLICY_ASSIGN_CREATE:
		return create_desktop(b, u, pool_id, addr, pv, a->as_claim, now, cn, why);
	default: return -EINVAL;
	}
}

/* Issues cn's ticket if its desktop is ready (*ready), with its host's id in *host
 * (NULL: a manual desktop). Inside the transaction. Returns 0 or -errno. */
static int ticket_if_ready(struct broker *b, const struct broker_user *u, const char *pool_id,
			   const char *addr, int64_t now, struct broker_connection *cn, char **host,
			   bool *ready)
{
	struct desktop_rec d;
	int r = 0;

	*ready =
	    store_desktop_get(b->b_store, cn->cn_desktop, &d) == 0 && d.dr_state == DESKTOP_READY;
	if (*ready) {
		r = ticket_issue(b, cn->cn_session, u->bu_name, cn->cn_desktop, now, cn->cn_ticket,
				 &cn->cn_expires);
		if (d.dr_host)
			*host = strdup(d.dr_host);
		broker_audit(b, u->bu_name, "connect", cn->cn_desktop,
			     r == 0 ? "success" : "failure", addr,
			     "session=%s pool=%s ticket issued", cn->cn_session, pool_id);
	}
	desktop_rec_release(&d);
	return r;
}

/* The answer while cn's desktop is not ready: how far it is, or that it failed (with
 * its host's reason, and when it will be tried again). After the transaction. */
static enum broker_outcome starting(struct broker *b, struct broker_connection *cn, int64_t now,
				    struct broker_result *res)
{
	struct desktop_rec d;
	struct pool_rec pool = {0};
	const char *hs;
	int64_t wait = 0;
	bool failed;

	res->br_retry_after = RETRY_AFTER_S;
	cn->cn_stage = "booting";
	if (store_desktop_get(b->b_store, cn->cn_desktop, &d) < 0)
		return broker_result_set(res, BROKER_STARTING, NULL, "starting");
	if (store_pool_get(b->b_store, d.dr_pool, &pool) == 0 && pool.pr_retry_at > now)
		wait = pool.pr_retry_at - now;
	hs = d.dr_host_state;
	failed = d.dr_state == DESKTOP_ERROR || (hs && !strcmp(hs, "failed") && d.dr_failure);
	if (failed) {
		if (wait > 0)
			res->br_retry_after = (int)wait;
		broker_result_set(res, BROKER_DESKTOP_FAILED, NULL,
				  "your desktop failed to start: %.300s%s",
				  d.dr_failure ? d.dr_failure : "it did not start in time",
				  wait > 0 ? "; it will be started again shortly" : "");
	} else {
		cn->cn_stage = desktop_rec_life(&d) == LIFE_PLACING ? "placing"
			       : wait > 0			    ? "waiting"
			       : hs && !strcmp(hs, "running")	    ? "almost_ready"
								    : "booting";
		broker_result_set(res, BROKER_STARTING, NULL, "starting");
	}
	desktop_rec_release(&d);
	pool_rec_release(&pool);
	return res->br_outcome;
}

/* Decides and records, with its audit rows, on the snapshot of pool pv. Ends the
 * transaction. */
static enum broker_outcome connect_decide(struct broker *b, const struct broker_user *u,
					  const char *pool_id, const char *addr, int64_t now,
					  struct pool_view *pv, struct snapshot *sn,
					  struct broker_connection *cn, char **host,
					  struct broker_result *res)
{
	struct policy_assignment a;
	struct policy_client pc;
	struct policy_addr pa;
	enum policy_reason why;
	bool ready;
	int r;

	snapshot_client(addr, now, &pa, &pc);
	a = snapshot_assign(b, pv, u, &pc, sn);
	if (a.as_action == POLICY_ASSIGN_DENY || a.as_action == POLICY_ASSIGN_WAIT) {
		connect_refused(b, u, pool_id, addr, &a, res);
		return res->br_outcome;
	}
	r = record_assignment(b, u, pool_id, addr, pv, &a, now, cn, &why);
	if (r == -EHOSTUNREACH) {
		char detail[512] = "";

		if (why == POLICY_NO_ENGINE)
			hosts_can_run(b, pv, detail, sizeof(detail));
		broker_audit(b, u->bu_name, "assign", pool_id, "failure", addr, "%s%s%s",
			     policy_reason_name(why), detail[0] ? ": " : "", detail);
		store_commit(b->b_store);
		if (detail[0])
			log_warnx("connect user=%s pool=%s: no host can run its desktops: %s",
				  u->bu_name, pool_id, detail);
		return broker_result_set(res, BROKER_NO_CAPACITY, policy_reason_name(why), "%s",
					 why == POLICY_NO_ENGINE
					     ? "this desktop is not available right now"
					     : "no host can run a new desktop");
	}
	if (r < 0) {
		log_warnx("connect user=%s pool=%s: cannot record the assignment: %s", u->bu_name,
			  pool_id, strerror(-r));
		store_rollback(b->b_store);
		return broker_result_set(res, BROKER_UNAVAILABLE, NULL,
					 "cannot record the assignment; retry");
	}
	if (a.as_action != POLICY_ASSIGN_RECONNECT)
		broker_audit(b, u->bu_name, "assign", cn->cn_desktop, "success", addr,
			     "pool=%s session=%s %s", pool_id, cn->cn_session,
			     policy_reason_name(a.as_reason));
	r = ticket_if_ready(b, u, pool_id, addr, now, cn, host, &ready);
	if (r < 0 || store_commit(b->b_store) < 0) {
		if (r < 0)
			store_rollback(b->b_store);
		return broker_result_set(res, BROKER_UNAVAILABLE, NULL,
					 "cannot record the assignment; retry");
	}
	if (ready)
		return broker_result_set(res, BROKER_OK, NULL, "ticket issued");
	return starting(b, cn, now, res);
}

/* The transaction of a connect: the pool and the snapshot read, then decided. */
static enum broker_outcome connect_in_store(struct broker *b, const struct broker_user *u,
					    const char *pool_id, const char *addr, int64_t now,
					    struct broker_connection *cn, char **host,
					    struct broker_result *res)
{
	struct pool_view pv;
	struct snapshot sn;
	struct pool_rec pool;
	int r;

	if (store_begin(b->b_store) < 0)
		return broker_result_set(res, BROKER_UNAVAILABLE, NULL,
					 "the broker's store is unavailable");
	if (store_pool_get(b->b_store, pool_id, &pool) < 0 || pool.pr_deleting) {
		store_rollback(b->b_store);
		pool_rec_release(&pool);
		return broker_result_set(res, BROKER_NOT_FOUND, NULL, "no such pool");
	}
	memset(&sn, 0, sizeof(sn));
	r = pool_view_init(&pv, &pool);
	if (r == -ENOMEM || snapshot_load(b, pool_id, u->bu_name, &sn) < 0) {
		store_rollback(b->b_store);
		broker_result_set(res, BROKER_UNAVAILABLE, NULL,
				  "the broker's store is unavailable");
	} else {
		connect_decide(b, u, pool_id, addr, now, &pv, &sn, cn, host, res);
	}
	snapshot_free(&sn);
	pool_view_free(&pv);
	pool_rec_release(&pool);
	return res->br_outcome;
}

/* Registers cn's ticket with the desktop's host (hostd makes it the VM's VNC
 * password). Returns 0 or -errno (logged). */
static int register_ticket(struct broker *b, const char *host, const struct broker_connection *cn)
{
	json_t *body = json_pack("{s:s, s:I}", "ticket", cn->cn_ticket, "expires",
				 (json_int_t)cn->cn_expires),
	       *reply = NULL;
	char path[128], err[512] = "";
	struct host_rec h;
	int r = -ENOTCONN;

	snprintf(path, sizeof(path), "/api/v1/desktops/%s/ticket", cn->cn_desktop);
	if (store_host_get(b->b_store, host, &h) < 0) {
		snprintf(err, sizeof(err), "host=%s is no longer registered", host);
		r = -ENOENT;
	} else if (b->b_hosts) {
		r = hostclient_call(b->b_hosts, h.hr_id, h.hr_url, "POST", path, body, &reply, err,
				    sizeof(err));
	}
	host_rec_release(&h);
	json_decref(body);
	json_decref(reply);
	if (r == -EPERM)
		hosts_identity_refused(b, host, "connect desktop=%s: %s", cn->cn_desktop, err);
	else if (r >= 0)
		hosts_identity_proven(b, host);
	if (r == 200)
		return 0;
	log_warnx("connect desktop=%s: the host did not take the ticket: %s", cn->cn_desktop,
		  r == -ENOTCONN ? "no [hosts] certificates" : err);
	return r < 0 ? r : -EPROTO;
}

enum broker_outcome broker_connect(struct broker *b, const struct broker_user *u,
				   const char *pool_id, const char *addr,
				   struct broker_connection *cn, struct broker_result *res)
{
	char *host = NULL;

	memset(cn, 0, sizeof(*cn));
	memset(res, 0, sizeof(*res));
	connect_in_store(b, u, pool_id, addr, (int64_t)time(NULL), cn, &host, res);
	if (res->br_outcome != BROKER_OK && res->br_outcome != BROKER_STARTING)
		goto out;
	broker_kick(b);
	if (res->br_outcome == BROKER_OK && host && register_ticket(b, host, cn) < 0) {
		broker_result_set(res, BROKER_HOST_UNAVAILABLE, NULL,
				  "the desktop's host is not answering; retry");
		res->br_retry_after = RETRY_AFTER_S;
	} else if (res->br_outcome == BROKER_OK) {
		log_info("connect user=%s pool=%s desktop=%s session=%s: ticket issued", u->bu_name,
			 pool_id, cn->cn_desktop, cn->cn_session);
	}
out:
	if (res->br_outcome != BROKER_OK)
		explicit_bzero(cn->cn_ticket, sizeof(cn->cn_ticket));
	free(host);
	return res->br_outcome;
}
