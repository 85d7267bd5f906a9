/* The maintenance thread: every maintenance_interval (or when kicked) one pass marks
 * silent hosts down (hosts.c), asks failed directory servers again (auth.c), times out sessions
 * (sessions.c), checks accounts again (accounts.c), sizes and retires pools (sizing.c), drives
 * desktops on their hosts (provision.c) and purges what expired. */
#include <errno.h>
#include <time.h>

#include "broker/internal.h"

#define PURGE_EVERY_S 60

void broker_maintain(struct broker *b, int64_t now)
{
	hosts_expire(b, now);
	auth_probe(b->b_auth);
	sessions_tick(b, now);
	accounts_tick(b, now);
	pools_tick(b, now);
	desktops_tick(b, now);
	audit_flush(b, now, false);
	if (now - b->b_last_purge >= PURGE_EVERY_S) {
		store_purge(b->b_store, now, now - 3600, now - b->b_cfg->bc_audit_retention);
		b->b_last_purge = now;
	}
}

static void *maintenance_main(void *arg)
{
	struct broker *b = arg;

	pthread_setname_np(pthread_self(), "maintenance");
	pthread_mutex_lock(&b->b_lock);
	while (!b->b_stop) {
		struct timespec until;

		b->b_kicked = false;
		pthread_mutex_unlock(&b->b_lock);
		broker_maintain(b, (int64_t)time(NULL));
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += b->b_cfg->bc_maintenance_interval;
		pthread_mutex_lock(&b->b_lock);
		while (!b->b_stop && !b->b_kicked &&
		       pthread_cond_timedwait(&b->b_wake, &b->b_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&b->b_lock);
	return NULL;
}

int broker_start(struct broker *b)
{
	if (pthread_create(&b->b_thread, NULL, maintenance_main, b) != 0)
		return -EAGAIN;
	b->b_thread_running = true;
	return 0;
}

void broker_cancel_logins(struct broker *b)
{
	auth_cancel(b->b_auth);
}

void broker_stop(struct broker *b)
{
	if (!b->b_thread_running)
		return;
	pthread_mutex_lock(&b->b_lock);
	b->b_stop = true;
	pthread_cond_signal(&b->b_wake);
	pthread_mutex_unlock(&b->b_lock);
	pthread_join(b->b_thread, NULL);
	b->b_thread_running = false;
}
