/* Session state transitions: connect, disconnect, logoff, the disconnect timeout and a
 * lost desktop, each giving the session's next state, what to do with its desktop
 * (floating desktops are refreshed or destroyed when their session ends) and when to
 * look again. Pure: the caller passes the time and applies the result. */
#ifndef VDI_POLICY_LIFECYCLE_H
#define VDI_POLICY_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"

enum policy_session_event {
	POLICY_EVENT_CONNECT,	   /* a client attached (gateway opened) */
	POLICY_EVENT_DISCONNECT,   /* the client went away without logging off */
	POLICY_EVENT_LOGOFF,	   /* the user logged off (or an admin ended the session) */
	POLICY_EVENT_TICK,	   /* a timer: re-evaluate timeouts */
	POLICY_EVENT_DESKTOP_LOST, /* the desktop or its host is gone */
};

enum policy_desktop_action {
	POLICY_DESKTOP_KEEP,	/* leave it as it is (dedicated desktops, live sessions) */
	POLICY_DESKTOP_REFRESH, /* reset it to its template; it becomes free again */
	POLICY_DESKTOP_DESTROY, /* delete it (maintenance creates replacements) */
};

struct policy_transition {
	enum policy_session_state pt_state;    /* the session's next state */
	bool pt_changed;		       /* pt_state differs from the current one */
	enum policy_desktop_action pt_desktop; /* what to do with the session's desktop */
	int64_t pt_deadline;		       /* send a TICK at this time; 0: no timer */
	enum policy_reason pt_reason;
};

/* The transition of session s of pool on event at time now:
 *   connect:    disconnected -> connected (reconnect); connected stays (takeover: the
 *               old client is to be dropped)
 *   disconnect: connected -> disconnected, a TICK due at since + disconnect_timeout
 *               (a timeout of 0 logs off at once, a negative one never)
 *   tick:       disconnected past its timeout -> logged off (disconnect_timeout)
 *   logoff:     -> logged off
 *   desktop lost: -> logged off (desktop_lost)
 * When a session ends, a floating pool's desktop gets the pool's logoff action
 * (refresh or destroy; destroy when lost); a dedicated desktop is kept. Events on a
 * logged-off session are invalid_transition (a tick is simply nothing to do). */
struct policy_transition policy_session_event(const struct policy_pool *pool,
					      const struct policy_session *s,
					      enum policy_session_event event, int64_t now);

#endif
