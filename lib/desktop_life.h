/* A desktop's life, with one set of names for every part of the system: hostd says where
 * the desktop's VMM is in it, the broker adds what only it knows (no host has it yet, a
 * session is on it) and shows the result to administrators (API, console, vdictl) and to
 * the user who waits for it (connect's stage, the portal). The failure cause travels
 * with it: hostd's reason (the VMM's own last error line and how it ended), the exit
 * status and the tail of the guest's serial console, through the heartbeat to the
 * broker's store and API.
 *
 *   placing ──(a host created it; its VMM starts)──> booting ──(the VMM answers)──> ready
 *   ready <──(the session ends)── in_use <──(a session starts)── ready
 *   ready, in_use ──(stop, refresh, delete)──> stopping ──> stopped ──(start)──> booting
 *   booting, ready, in_use ──(the VMM fails or never comes up; the host is lost)──> failed
 *   failed ──(the pool's back-off is over: replaced or restarted)──> placing
 *
 * Pure: names and the mapping of each daemon's own states, no I/O. */
#ifndef VDI_DESKTOP_LIFE_H
#define VDI_DESKTOP_LIFE_H

#include <stdbool.h>

enum desktop_life {
	LIFE_PLACING,  /* the broker is choosing a host, or the host is creating it */
	LIFE_BOOTING,  /* its VMM runs; the guest is not ready for a viewer yet */
	LIFE_READY,    /* running, nobody on it */
	LIFE_IN_USE,   /* running, a session on it */
	LIFE_STOPPING, /* asked to stop; forced off after the host's stop_timeout */
	LIFE_STOPPED,  /* defined on its host, not running */
	LIFE_FAILED,   /* its VMM failed or never came up, or its host was lost */
};

/* "placing", "booting", "ready", "in_use", "stopping", "stopped", "failed". */
const char *desktop_life_name(enum desktop_life life);
/* The life named name; false when there is none of that name. */
bool desktop_life_parse(const char *name, enum desktop_life *life);

/* The VMM states hostd keeps and reports ("stopped", "starting", "running", "stopping",
 * "failed") as a life; any other (the broker's "missing" for a desktop its host does not
 * list), or none (NULL), is placing: no host has it now. */
enum desktop_life desktop_life_of_vmm(const char *vmm_state);

#endif
