/* Unit tests for policy/lifecycle: connect, takeover, disconnect with its timeout
 * (including 0 and "never"), ticks before and at the deadline, logoff, lost desktops,
 * what happens to floating and dedicated desktops, and events on ended sessions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "policy/lifecycle.h"

#define T0 1704110400LL

static struct policy_pool pool(enum policy_pool_kind kind, int timeout)
{
	return (struct policy_pool){.pool_id = "p",
				    .pool_enabled = true,
				    .pool_kind = kind,
				    .pool_disconnect_timeout = timeout,
				    .pool_logoff_action = POLICY_LOGOFF_REFRESH};
}

static struct policy_session session(enum policy_session_state state, int64_t since)
{
	return (struct policy_session){"s1", "alice", "p", "d1", state, since};
}

#define EXPECT(t, state, changed, desktop, deadline, reason)                                       \
	do {                                                                                       \
		struct policy_transition t_ = (t);                                                 \
		assert_int_equal(t_.pt_state, (state));                                            \
		assert_int_equal(t_.pt_changed, (changed));                                        \
		assert_int_equal(t_.pt_desktop, (desktop));                                        \
		assert_int_equal(t_.pt_deadline, (deadline));                                      \
		assert_int_equal(t_.pt_reason, (reason));                                          \
	} while (0)

static void test_connect_disconnect(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, 900);
	struct policy_session s = session(POLICY_SESSION_CONNECTED, T0);

	(void)state;
	/* a second client: the session stays connected, the old client is dropped */
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_CONNECT, T0 + 5), POLICY_SESSION_CONNECTED,
	       false, POLICY_DESKTOP_KEEP, 0, POLICY_TAKEOVER);
	/* disconnect: kept 15 minutes, a tick due then */
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_DISCONNECT, T0 + 100),
	       POLICY_SESSION_DISCONNECTED, true, POLICY_DESKTOP_KEEP, T0 + 1000,
	       POLICY_DISCONNECTED);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_TICK, T0 + 100), POLICY_SESSION_CONNECTED,
	       false, POLICY_DESKTOP_KEEP, 0, POLICY_CONNECTED);
	s = session(POLICY_SESSION_DISCONNECTED, T0 + 100);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_CONNECT, T0 + 200),
	       POLICY_SESSION_CONNECTED, true, POLICY_DESKTOP_KEEP, 0, POLICY_RECONNECT);
	/* a repeated disconnect does not restart the clock */
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_DISCONNECT, T0 + 500),
	       POLICY_SESSION_DISCONNECTED, false, POLICY_DESKTOP_KEEP, T0 + 1000,
	       POLICY_DISCONNECTED);
}

static void test_disconnect_timeout(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, 900);
	struct policy_session s = session(POLICY_SESSION_DISCONNECTED, T0);

	(void)state;
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_TICK, T0 + 899),
	       POLICY_SESSION_DISCONNECTED, false, POLICY_DESKTOP_KEEP, T0 + 900,
	       POLICY_DISCONNECTED);
	/* at the deadline exactly: logged off, the floating desktop refreshed */
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_TICK, T0 + 900), POLICY_SESSION_LOGGED_OFF,
	       true, POLICY_DESKTOP_REFRESH, 0, POLICY_DISCONNECT_TIMEOUT);
	/* or destroyed, if the pool says so */
	p.pool_logoff_action = POLICY_LOGOFF_DESTROY;
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_TICK, T0 + 5000),
	       POLICY_SESSION_LOGGED_OFF, true, POLICY_DESKTOP_DESTROY, 0,
	       POLICY_DISCONNECT_TIMEOUT);
	/* a dedicated desktop is kept for its owner */
	p = pool(POLICY_DEDICATED, 900);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_TICK, T0 + 900), POLICY_SESSION_LOGGED_OFF,
	       true, POLICY_DESKTOP_KEEP, 0, POLICY_DISCONNECT_TIMEOUT);
	/* timeout 0: a disconnect logs off at once */
	p = pool(POLICY_FLOATING, 0);
	s = session(POLICY_SESSION_CONNECTED, T0);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_DISCONNECT, T0 + 1),
	       POLICY_SESSION_LOGGED_OFF, true, POLICY_DESKTOP_REFRESH, 0,
	       POLICY_DISCONNECT_TIMEOUT);
	/* negative: kept forever, no timer */
	p = pool(POLICY_FLOATING, -1);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_DISCONNECT, T0 + 1),
	       POLICY_SESSION_DISCONNECTED, true, POLICY_DESKTOP_KEEP, 0, POLICY_DISCONNECTED);
	s = session(POLICY_SESSION_DISCONNECTED, T0);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_TICK, T0 + 86400 * 365),
	       POLICY_SESSION_DISCONNECTED, false, POLICY_DESKTOP_KEEP, 0, POLICY_DISCONNECTED);
}

static void test_logoff_and_lost(void **state)
{
	struct policy_pool floating = pool(POLICY_FLOATING, 900);
	struct policy_pool dedicated = pool(POLICY_DEDICATED, 900);
	struct policy_session s = session(POLICY_SESSION_CONNECTED, T0);

	(void)state;
	EXPECT(policy_session_event(&floating, &s, POLICY_EVENT_LOGOFF, T0),
	       POLICY_SESSION_LOGGED_OFF, true, POLICY_DESKTOP_REFRESH, 0, POLICY_LOGGED_OFF);
	EXPECT(policy_session_event(&dedicated, &s, POLICY_EVENT_LOGOFF, T0),
	       POLICY_SESSION_LOGGED_OFF, true, POLICY_DESKTOP_KEEP, 0, POLICY_LOGGED_OFF);
	s = session(POLICY_SESSION_DISCONNECTED, T0);
	EXPECT(policy_session_event(&floating, &s, POLICY_EVENT_LOGOFF, T0),
	       POLICY_SESSION_LOGGED_OFF, true, POLICY_DESKTOP_REFRESH, 0, POLICY_LOGGED_OFF);
	/* the host died: a floating desktop is written off, a dedicated one is kept for
	 * recovery elsewhere */
	EXPECT(policy_session_event(&floating, &s, POLICY_EVENT_DESKTOP_LOST, T0),
	       POLICY_SESSION_LOGGED_OFF, true, POLICY_DESKTOP_DESTROY, 0, POLICY_DESKTOP_LOST);
	EXPECT(policy_session_event(&dedicated, &s, POLICY_EVENT_DESKTOP_LOST, T0),
	       POLICY_SESSION_LOGGED_OFF, true, POLICY_DESKTOP_KEEP, 0, POLICY_DESKTOP_LOST);
}

static void test_ended_sessions(void **state)
{
	struct policy_pool p = pool(POLICY_FLOATING, 900);
	struct policy_session s = session(POLICY_SESSION_LOGGED_OFF, T0);

	(void)state;
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_CONNECT, T0), POLICY_SESSION_LOGGED_OFF,
	       false, POLICY_DESKTOP_KEEP, 0, POLICY_INVALID_TRANSITION);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_LOGOFF, T0), POLICY_SESSION_LOGGED_OFF,
	       false, POLICY_DESKTOP_KEEP, 0, POLICY_INVALID_TRANSITION);
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_DISCONNECT, T0), POLICY_SESSION_LOGGED_OFF,
	       false, POLICY_DESKTOP_KEEP, 0, POLICY_INVALID_TRANSITION);
	/* a late timer is harmless */
	EXPECT(policy_session_event(&p, &s, POLICY_EVENT_TICK, T0), POLICY_SESSION_LOGGED_OFF,
	       false, POLICY_DESKTOP_KEEP, 0, POLICY_LOGGED_OFF);
	/* an unknown event is refused, not guessed at */
	s = session(POLICY_SESSION_CONNECTED, T0);
	EXPECT(policy_session_event(&p, &s, (enum policy_session_event)99, T0),
	       POLICY_SESSION_CONNECTED, false, POLICY_DESKTOP_KEEP, 0, POLICY_INVALID_TRANSITION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_connect_disconnect),
	    cmocka_unit_test(test_disconnect_timeout),
	    cmocka_unit_test(test_logoff_and_lost),
	    cmocka_unit_test(test_ended_sessions),
	};
	return cmocka_run_group_tests_name("policy_lifecycle", tests, NULL, NULL);
}
