/* The login gate: a counter of slots in use and of waiters under one mutex. A newcomer
 * takes a free slot only when nobody waits, so a steady stream of arrivals cannot starve
 * the queue; a waiter re-checks after every wake-up, timeout included, so a slot freed
 * just as a wait timed out is still used. */
#include "auth/gate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct gate {
	pthread_mutex_t g_lock;
	pthread_cond_t g_freed; /* a slot was given back */
	int g_slots, g_queue;
	int g_inside, g_waiting;
};

struct gate *gate_new(int slots, int queue)
{
	pthread_condattr_t attr;
	struct gate *g;

	if (slots < 1 || queue < 0) {
		errno = EINVAL;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->g_slots = slots;
	g->g_queue = queue;
	pthread_mutex_init(&g->g_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&g->g_freed, &attr);
	pthread_condattr_destroy(&attr);
	return g;
}

void gate_free(struct gate *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->g_freed);
	pthread_mutex_destroy(&g->g_lock);
	free(g);
}

int gate_enter(struct gate *g, int timeout_ms)
{
	struct timespec deadline;
	int r = 0;

	pthread_mutex_lock(&g->g_lock);
	if (g->g_inside < g->g_slots && g->g_waiting == 0)
		goto out_enter;
	if (g->g_waiting >= g->g_queue) {
		r = -EBUSY;
		goto out_unlock;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	g->g_waiting++;
	while (g->g_inside >= g->g_slots) {
		if (pthread_cond_timedwait(&g->g_freed, &g->g_lock, &deadline) == ETIMEDOUT &&
		    g->g_inside >= g->g_slots) {
			r = -ETIMEDOUT;
			break;
		}
	}
	g->g_waiting--;
	if (r < 0)
		goto out_unlock;
out_enter:
	g->g_inside++;
out_unlock:
	pthread_mutex_unlock(&g->g_lock);
	return r;
}

void gate_leave(struct gate *g)
{
	pthread_mutex_lock(&g->g_lock);
	g->g_inside--;
	if (g->g_waiting > 0)
		pthread_cond_signal(&g->g_freed);
	pthread_mutex_unlock(&g->g_lock);
}

void gate_counts(struct gate *g, int *inside, int *waiting)
{
	pthread_mutex_lock(&g->g_lock);
	*inside = g->g_inside;
	*waiting = g->g_waiting;
	pthread_mutex_unlock(&g->g_lock);
}
