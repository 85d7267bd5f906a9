/* poll(2) loop over a small table of descriptors. Removal during a callback only marks
 * the slot; slots are compacted before the next poll. */
#include "hv/mainloop.h"
#include "lib/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#define MAX_WATCHES 256

struct watch {
	int w_fd;
	short w_events;
	mainloop_fd_fn *w_fn;
	void *w_arg;
};

struct mainloop {
	struct watch ml_watches[MAX_WATCHES];
	int ml_count;
	bool ml_quit;
	int ml_tick_ms;
	bool ml_tick_active; /* the last tick had more work, or an fd callback ran since */
	mainloop_tick_fn *ml_tick_fn;
	void *ml_tick_arg;
};

struct mainloop *mainloop_create(void)
{
	return calloc(1, sizeof(struct mainloop));
}

void mainloop_free(struct mainloop *loop)
{
	free(loop);
}

int mainloop_add(struct mainloop *loop, int fd, short events, mainloop_fd_fn *fn, void *arg)
{
	if (loop->ml_count == MAX_WATCHES)
		return -ENOSPC;
	loop->ml_watches[loop->ml_count++] = (struct watch){fd, events, fn, arg};
	return 0;
}

void mainloop_remove(struct mainloop *loop, int fd)
{
	for (int i = 0; i < loop->ml_count; i++)
		if (loop->ml_watches[i].w_fd == fd)
			loop->ml_watches[i].w_fd = -1;
}

void mainloop_set_tick(struct mainloop *loop, int interval_ms, mainloop_tick_fn *fn, void *arg)
{
	loop->ml_tick_ms = interval_ms;
	loop->ml_tick_active = true;
	loop->ml_tick_fn = fn;
	loop->ml_tick_arg = arg;
}

void mainloop_quit(struct mainloop *loop)
{
	loop->ml_quit = true;
}

void mainloop_run(struct mainloop *loop)
{
	struct pollfd pfds[MAX_WATCHES];
	long long next_tick = monotonic_ms();

	while (!loop->ml_quit) {
		int n = 0, timeout = -1;

		for (int i = 0; i < loop->ml_count; i++) /* compact removed slots */
			if (loop->ml_watches[i].w_fd >= 0)
				loop->ml_watches[n++] = loop->ml_watches[i];
		loop->ml_count = n;
		for (int i = 0; i < n; i++)
			pfds[i] = (struct pollfd){loop->ml_watches[i].w_fd,
						  loop->ml_watches[i].w_events, 0};
		if (loop->ml_tick_ms > 0 && loop->ml_tick_active) {
			long long left = next_tick - monotonic_ms();

			timeout = left < 0 ? 0 : (int)left;
		}
		if (poll(pfds, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (loop->ml_tick_ms > 0 && loop->ml_tick_active && monotonic_ms() >= next_tick) {
			next_tick = monotonic_ms() + loop->ml_tick_ms;
			loop->ml_tick_active = loop->ml_tick_fn(loop->ml_tick_arg);
		}
		for (int i = 0; i < n && !loop->ml_quit; i++) {
			struct watch *w = &loop->ml_watches[i];

			if (pfds[i].revents && w->w_fd == pfds[i].fd) {
				w->w_fn(w->w_arg, w->w_fd, pfds[i].revents);
				loop->ml_tick_active = true;
			}
		}
	}
}
