/* The main thread's poll loop: file descriptors with callbacks and one periodic tick that
 * runs only while it has work. vCPUs and the VNC server run in their own threads;
 * everything else in vdi-hv runs here. */
#ifndef VDI_HV_MAINLOOP_H
#define VDI_HV_MAINLOOP_H

#include <stdbool.h>

struct mainloop;

typedef void mainloop_fd_fn(void *arg, int fd, short revents);
/* Returns whether it has more work. Once it returns false, ticks stop until some file
 * descriptor callback has run (new work comes only through one), so an idle VM does not
 * wake the main thread at all. */
typedef bool mainloop_tick_fn(void *arg);

/* Returns a new loop; free with mainloop_free(). */
struct mainloop *mainloop_create(void);
void mainloop_free(struct mainloop *loop);
/* Watches fd for events (POLLIN/POLLOUT). Returns 0 or -errno. */
int mainloop_add(struct mainloop *loop, int fd, short events, mainloop_fd_fn *fn, void *arg);
/* Stops watching fd; safe from inside a callback. */
void mainloop_remove(struct mainloop *loop, int fd);
/* Calls fn every interval_ms (0 disables) while it has work. One tick per loop. */
void mainloop_set_tick(struct mainloop *loop, int interval_ms, mainloop_tick_fn *fn, void *arg);
/* Runs until mainloop_quit(). */
void mainloop_run(struct mainloop *loop);
void mainloop_quit(struct mainloop *loop);

#endif
