/* What policy_assign() decides on, read from the store: a pool's desktops and the
 * user's live sessions as policy/ structs, the user and the client as policy/ sees them.
 * Shared by the desktop list and connect. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/internal.h"

void snapshot_user(const struct broker_user *u, struct policy_user *pu)
{
	pu->pu_name = u->bu_name;
	pu->pu_groups = u->bu_groups;
	pu->pu_ngroups = u->bu_ngroups;
}

void snapshot_client(const char *addr, int64_t now, struct policy_addr *pa,
		     struct policy_client *pc)
{
	pc->pc_addr = addr && policy_addr_parse(addr, pa) == 0 ? pa : NULL;
	pc->pc_now = now;
}

int snapshot_load(struct broker *b, const char *pool, const char *user, struct snapshot *sn)
{
	memset(sn, 0, sizeof(*sn));
	if (store_desktops_list(b->b_store, pool, NULL, &sn->sn_desktops) < 0)
		return -EIO;
	if (store_sessions_list(b->b_store, user, NULL, true, &sn->sn_sessions) < 0)
		return -EIO;
	sn->sn_pd = calloc(sn->sn_desktops.dl_n + 1, sizeof(*sn->sn_pd));
	sn->sn_ps = calloc(sn->sn_sessions.sl_n + 1, sizeof(*sn->sn_ps));
	if (!sn->sn_pd || !sn->sn_ps)
		return -ENOMEM;
	pool_desktops_view(&sn->sn_desktops, sn->sn_pd);
	pool_sessions_view(&sn->sn_sessions, sn->sn_ps);
	return 0;
}

void snapshot_free(struct snapshot *sn)
{
	desktop_list_free(&sn->sn_desktops);
	session_list_free(&sn->sn_sessions);
	free(sn->sn_pd);
	free(sn->sn_ps);
}

struct policy_assignment snapshot_assign(struct broker *b, struct pool_view *pv,
					 const struct broker_user *u,
					 const struct policy_client *pc, struct snapshot *sn)
{
	struct policy_user pu;

	snapshot_user(u, &pu);
	return policy_assign(&(struct policy_assign_request){
	    .ar_pool = &pv->pv_pool,
	    .ar_user = &pu,
	    .ar_client = pc,
	    .ar_desktops = sn->sn_pd,
	    .ar_ndesktops = sn->sn_desktops.dl_n,
	    .ar_sessions = sn->sn_ps,
	    .ar_nsessions = sn->sn_sessions.sl_n,
	    .ar_max_sessions = b->b_cfg->bc_max_sessions,
	});
}

const struct desktop_rec *snapshot_desktop(const struct snapshot *sn, const char *id)
{
	for (size_t i = 0; id && i < sn->sn_desktops.dl_n; i++)
		if (!strcmp(sn->sn_desktops.dl_recs[i].dr_id, id))
			return &sn->sn_desktops.dl_recs[i];
	return NULL;
}
