/* The vdi-hv control socket: a unix stream socket speaking one JSON object per line,
 * request {"cmd": VERB, ...} and reply {"ok": true, ...} or {"error": "..."}. Used by
 * vdi-hostd and by people debugging a VM. Verbs: status, pause, resume, quit, sendkey,
 * type, screendump, serial, mouse, pointer, and for the VNC server set-ticket,
 * clear-tickets, display. */
#ifndef VDI_HV_CONTROL_H
#define VDI_HV_CONTROL_H

#include <stdbool.h>

struct machine;

/* Listens on path (created with mode 0600; a stale socket file is replaced) and serves
 * clients from m->m_loop. Returns NULL with a log line on failure. */
struct control *control_create(struct machine *m, const char *path);
void control_free(struct control *ctl);

#endif

/* Feeds queued keystrokes to the guest at a pace it can follow; call every few ms while
 * it returns true (keystrokes still queued). */
bool control_tick(struct control *ctl);
