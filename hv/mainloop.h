/* The main thread's poll loop: file descriptors with callbacks and one periodic tick.
 * vCPUs run in their own threads; everything else in vdi-hv runs here. */
#ifndef VDI_HV_MAINLOOP_H
#define VDI_HV_MAINLOOP_H

#include <stdbool.h>

struct mainloop;

typedef void mainloop_fd_fn(void *arg, int fd, short revents);
typedef void mainloop_tick_fn(void *arg);

/* Returns a new loop; free with mainloop_free(). */
struct mainloop *mainloop_create(void);
void mainloop_free(struct mainloop *loop);
/* Watches fd for events (POLLIN/POLLOUT). Returns 0 or -errno. */
int mainloop_add(struct mainloop *loop, int fd, short events, mainloop_fd_fn *fn, void *arg);
/* Stops watching fd; safe from inside a callback. */
void mainloop_remove(struct mainloop *loop, int fd);
/* Calls fn every interval_ms (0 disables). One tick per loop. */
void mainloop_set_tick(struct mainloop *loop, int interval_ms, mainloop_tick_fn *fn, void *arg);
/* Runs until mainloop_quit(). */
void mainloop_run(struct mainloop *loop);
void mainloop_quit(struct mainloop *loop);

#endif
