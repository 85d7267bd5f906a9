/* GET /desktops: the pools a user may use from where they are now, each with the state
 * connect would find (ready, starting, running, disconnected, unavailable and why). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "broker/internal.h"
#include "policy/access.h"

json_t *broker_desktops(struct broker *b, const struct broker_user *u, const char *addr)
{
	json_t *out = json_array();
	struct policy_client pc;
	struct policy_addr pa;
	struct policy_user pu;
	struct pool_list pools;

	if (store_pools_list(b->b_store, &pools) < 0 || !out) {
		pool_list_free(&pools);
		json_decref(out);
		return NULL;
	}
	snapshot_client(addr, (int64_t)time(NULL), &pa, &pc);
	snapshot_user(u, &pu);
	for (size_t i = 0; i < pools.pl_n; i++) {
		const struct pool_rec *p = &pools.pl_recs[i];
		struct pool_view pv;
		struct snapshot sn;
		struct policy_assignment a;
		const char *state = "ready", *reason = NULL;
		json_t *session = json_null(), *item;

		if (pool_view_init(&pv, p) == -ENOMEM)
			break;
		if (!policy_check_access(&pv.pv_pool, &pu, &pc).pa_allowed) {
			pool_view_free(&pv);
			continue;
		}
		if (snapshot_load(b, p->pr_id, u->bu_name, &sn) < 0) {
			snapshot_free(&sn);
			pool_view_free(&pv);
			continue;
		}
		a = snapshot_assign(b, &pv, u, &pc, &sn);
		if (a.as_action == POLICY_ASSIGN_RECONNECT) {
			const struct desktop_rec *d =
			    snapshot_desktop(&sn, a.as_session->sess_desktop);
			bool ready = d && d->dr_state == DESKTOP_READY;

			state = !ready ? "starting"
				: a.as_session->sess_state == POLICY_SESSION_CONNECTED
				    ? "running"
				    : "disconnected";
			session = json_pack(
			    "{s:s, s:s, s:s, s:s}", "id", a.as_session->sess_id, "state",
			    session_state_name(pool_stored_session_state(a.as_session->sess_state)),
			    "desktop", a.as_session->sess_desktop, "desktop_life",
			    desktop_life_name(d ? desktop_rec_life(d) : LIFE_PLACING));
		} else if (a.as_action == POLICY_ASSIGN_CREATE ||
			   a.as_action == POLICY_ASSIGN_START) {
			char detail[512];
			enum policy_reason why = hosts_can_run(b, &pv, detail, sizeof(detail));

			if (why != POLICY_OK) {
				state = "unavailable";
				reason = policy_reason_name(why);
			}
		} else if (a.as_action == POLICY_ASSIGN_WAIT) {
			state = "starting";
			reason = policy_reason_name(a.as_reason);
		} else if (a.as_action == POLICY_ASSIGN_DENY) {
			state = "unavailable";
			reason = policy_reason_name(a.as_reason);
		}
		item = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", p->pr_id, "name",
				 p->pr_name, "kind", pool_kind_name(p->pr_kind), "source",
				 pool_source_name(p->pr_source), "state", state, "session",
				 session ? session : json_null());
		if (item && reason)
			json_object_set_new(item, "reason", json_string(reason));
		json_array_append_new(out, item);
		snapshot_free(&sn);
		pool_view_free(&pv);
	}
	pool_list_free(&pools);
	return json_pack("{s:o}", "pools", out);
}
