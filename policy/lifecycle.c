/* The session state machine. */
#include "policy/lifecycle.h"

static struct policy_transition stay(const struct policy_session *s, enum policy_reason reason)
{
	return (struct policy_transition){.pt_state = s->sess_state, .pt_reason = reason};
}

static struct policy_transition end(const struct policy_pool *pool, enum policy_reason reason)
{
	struct policy_transition t = {
	    .pt_state = POLICY_SESSION_LOGGED_OFF, .pt_changed = true, .pt_reason = reason};

	if (pool->pool_kind == POLICY_DEDICATED)
		t.pt_desktop = POLICY_DESKTOP_KEEP;
	else if (reason == POLICY_DESKTOP_LOST || pool->pool_logoff_action == POLICY_LOGOFF_DESTROY)
		t.pt_desktop = POLICY_DESKTOP_DESTROY;
	else
		t.pt_desktop = POLICY_DESKTOP_REFRESH;
	return t;
}

/* A disconnected session at time now: kept with a timer, or ended by the timeout. */
static struct policy_transition disconnected(const struct policy_pool *pool,
					     const struct policy_session *s, int64_t since,
					     int64_t now)
{
	struct policy_transition t;

	if (pool->pool_disconnect_timeout < 0) {
		t = stay(s, POLICY_DISCONNECTED);
	} else if (now - since >= pool->pool_disconnect_timeout) {
		return end(pool, POLICY_DISCONNECT_TIMEOUT);
	} else {
		t = stay(s, POLICY_DISCONNECTED);
		t.pt_deadline = since + pool->pool_disconnect_timeout;
	}
	t.pt_state = POLICY_SESSION_DISCONNECTED;
	t.pt_changed = s->sess_state != POLICY_SESSION_DISCONNECTED;
	return t;
}

struct policy_transition policy_session_event(const struct policy_pool *pool,
					      const struct policy_session *s,
					      enum policy_session_event event, int64_t now)
{
	struct policy_transition t;

	if (s->sess_state == POLICY_SESSION_LOGGED_OFF)
		return stay(s, event == POLICY_EVENT_TICK ? POLICY_LOGGED_OFF
							  : POLICY_INVALID_TRANSITION);
	switch (event) {
	case POLICY_EVENT_CONNECT:
		if (s->sess_state == POLICY_SESSION_CONNECTED)
			return stay(s, POLICY_TAKEOVER);
		t = stay(s, POLICY_RECONNECT);
		t.pt_state = POLICY_SESSION_CONNECTED;
		t.pt_changed = true;
		return t;
	case POLICY_EVENT_DISCONNECT:
		if (s->sess_state == POLICY_SESSION_DISCONNECTED)
			return disconnected(pool, s, s->sess_since, now);
		return disconnected(pool, s, now, now);
	case POLICY_EVENT_TICK:
		if (s->sess_state == POLICY_SESSION_DISCONNECTED)
			return disconnected(pool, s, s->sess_since, now);
		return stay(s, POLICY_CONNECTED);
	case POLICY_EVENT_LOGOFF: return end(pool, POLICY_LOGGED_OFF);
	case POLICY_EVENT_DESKTOP_LOST: return end(pool, POLICY_DESKTOP_LOST);
	}
	return stay(s, POLICY_INVALID_TRANSITION);
}
