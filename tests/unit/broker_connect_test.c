/* Unit tests for broker/connect.c and broker/tickets.c on a real store (broker_fixture.h):
 * connect's outcomes (no such pool, not entitled, a manual desktop with its ticket,
 * reconnect, a new desktop being prepared, a host that does not take the ticket) with
 * their audit rows, and ticket redemption (once only, refused when unknown or when its
 * session has ended). */
#include "broker_fixture.h"

static const char *staff[] = {"staff"};

static const char *const manual_pool =
    "{\"id\": \"man\", \"name\": \"Manual\", \"kind\": \"floating\", \"source\": \"manual\","
    " \"desktops\": [{\"id\": \"man-1\", \"address\": \"10.0.0.9:5900\", \"password\": \"pw\"}],"
    " \"entitlements\": [{\"kind\": \"group\", \"name\": \"staff\"}]}";

static const char *const auto_pool =
    "{\"id\": \"auto\", \"kind\": \"dedicated\", \"source\": \"automated\", \"min\": 0,"
    " \"max\": 3, \"spare\": 0, \"memory_mib\": 256, \"vcpus\": 1,"
    " \"template\": {\"engine\": \"vdi-hv\", \"kernel\": \"k.elf\", \"disk\": \"base.img\"},"
    " \"entitlements\": [{\"kind\": \"group\", \"name\": \"staff\"}]}";

static void test_no_such_pool(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	struct broker_connection cn;
	struct broker_result res;

	assert_int_equal(broker_connect(f->f_broker, &u, "nope", "10.1.1.1", &cn, &res),
			 BROKER_NOT_FOUND);
	assert_string_equal(res.br_message, "no such pool");
	assert_null(res.br_reason);
}

static void test_not_entitled_is_denied_and_audited(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("mallory", NULL);
	struct broker_connection cn;
	struct broker_result res;
	json_t *e;

	pool_create(f->f_broker, manual_pool);
	assert_int_equal(broker_connect(f->f_broker, &u, "man", "10.1.1.1", &cn, &res),
			 BROKER_DENIED);
	assert_string_equal(res.br_reason, "not_entitled");
	assert_string_equal(res.br_message, "you are not entitled to this pool");
	assert_string_equal(cn.cn_ticket, "");
	e = audit_find(f->f_broker, "assign");
	assert_non_null(e);
	assert_string_equal(jstr(e, "result"), "denied");
	assert_string_equal(jstr(e, "actor"), "mallory");
	json_decref(e);
}

static void test_manual_desktop_ticket_redeemed_once(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	struct broker_connection cn, again;
	struct broker_result res;
	json_t *t, *e;

	pool_create(f->f_broker, manual_pool);
	assert_int_equal(broker_connect(f->f_broker, &u, "man", "10.1.1.1", &cn, &res), BROKER_OK);
	assert_string_equal(cn.cn_desktop, "man-1");
	assert_true(ticket_well_formed(cn.cn_ticket));
	assert_true(cn.cn_expires > time(NULL) && cn.cn_expires <= time(NULL) + 30);
	assert_int_equal(fake_hosts.fh_ncalls, 0); /* a manual desktop: no host to tell */
	e = audit_find(f->f_broker, "connect");
	assert_non_null(e);
	assert_string_equal(jstr(e, "result"), "success");
	json_decref(e);

	t = broker_ticket_redeem(f->f_broker, cn.cn_ticket, "10.1.1.1");
	assert_non_null(t);
	assert_string_equal(jstr(t, "kind"), "manual");
	assert_string_equal(jstr(t, "session"), cn.cn_session);
	assert_string_equal(jstr(t, "username"), "alice");
	assert_string_equal(jstr(t, "pool"), "man");
	assert_string_equal(jstr(t, "desktop"), "man-1");
	assert_string_equal(jstr(t, "address"), "10.0.0.9:5900");
	assert_string_equal(jstr(t, "vnc_password"), "pw");
	json_decref(t);
	errno = 0;
	assert_null(broker_ticket_redeem(f->f_broker, cn.cn_ticket, "10.1.1.1"));
	assert_int_equal(errno, EACCES);
	e = audit_find(f->f_broker, "ticket");
	assert_string_equal(jstr(e, "result"), "failure");
	assert_string_equal(jstr(e, "detail"), "unknown, used or expired ticket");
	json_decref(e);

	/* connecting again reconnects the same session with a new ticket */
	assert_int_equal(broker_connect(f->f_broker, &u, "man", "10.1.1.1", &again, &res),
			 BROKER_OK);
	assert_string_equal(again.cn_session, cn.cn_session);
	assert_string_not_equal(again.cn_ticket, cn.cn_ticket);
}

static void test_ticket_of_ended_session_refused(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	struct broker_connection cn;
	struct broker_result res;
	json_t *e;

	pool_create(f->f_broker, manual_pool);
	assert_int_equal(broker_connect(f->f_broker, &u, "man", "10.1.1.1", &cn, &res), BROKER_OK);
	assert_int_equal(
	    broker_session_event(f->f_broker, &u, cn.cn_session, POLICY_EVENT_LOGOFF, NULL, &res),
	    BROKER_OK);
	errno = 0;
	assert_null(broker_ticket_redeem(f->f_broker, cn.cn_ticket, "10.1.1.1"));
	assert_int_equal(errno, EACCES);
	/* the refusal names the ticket's user and desktop */
	e = audit_find(f->f_broker, "ticket");
	assert_non_null(e);
	assert_string_equal(jstr(e, "result"), "failure");
	assert_string_equal(jstr(e, "actor"), "alice");
	assert_string_equal(jstr(e, "target"), "man-1");
	assert_string_equal(jstr(e, "detail"), "session over or desktop not ready");
	json_decref(e);
	/* and the ticket is spent */
	assert_null(broker_ticket_redeem(f->f_broker, cn.cn_ticket, "10.1.1.1"));
	e = audit_find(f->f_broker, "ticket");
	assert_string_equal(jstr(e, "detail"), "unknown, used or expired ticket");
	json_decref(e);
}

static void test_malformed_ticket_refused(void **state)
{
	struct fixture *f = *state;

	errno = 0;
	assert_null(broker_ticket_redeem(f->f_broker, "not-a-ticket", NULL));
	assert_int_equal(errno, EACCES);
	errno = 0;
	assert_null(broker_ticket_redeem(f->f_broker, "0123456789abcdef0123456789abcdef", NULL));
	assert_int_equal(errno, EACCES);
}

static void test_new_desktop_starts_then_connects(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	struct broker_connection cn, ready;
	struct broker_result res;
	char word[80];
	const char *report[] = {word, NULL};
	json_t *t;

	host_add(f->f_broker, "h1");
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_OK);
	pool_create(f->f_broker, auto_pool);
	/* the pool's template was checked with h1, the one host up */
	assert_int_equal(fake_count("POST", "/api/v1/templates/check"), 1);
	assert_string_equal(jstr(fake_hosts.fh_calls[0].fc_body, "disk"), "base.img");
	assert_int_equal(jint(fake_hosts.fh_calls[0].fc_body, "memory_mib"), 256);
	fake_reset();

	/* no desktop yet: one is created on h1 for alice, who is told to retry */
	assert_int_equal(broker_connect(f->f_broker, &u, "auto", "10.1.1.1", &cn, &res),
			 BROKER_STARTING);
	assert_int_equal(res.br_retry_after, 2);
	assert_string_equal(cn.cn_ticket, "");
	assert_int_equal(strncmp(cn.cn_desktop, "auto-", 5), 0);

	/* the maintenance pass creates and starts it on the host */
	broker_maintain(f->f_broker, (int64_t)time(NULL));
	assert_int_equal(fake_count("POST", "/api/v1/desktops"), 2);
	assert_string_equal(fake_hosts.fh_calls[0].fc_path, "/api/v1/desktops");
	assert_string_equal(jstr(fake_hosts.fh_calls[0].fc_body, "id"), cn.cn_desktop);
	assert_string_equal(jstr(fake_hosts.fh_calls[0].fc_body, "disk"), "base.img");
	assert_int_equal(jint(fake_hosts.fh_calls[0].fc_body, "memory_mib"), 256);
	assert_int_equal(jint(fake_hosts.fh_calls[0].fc_body, "vcpus"), 1);

	/* the host reports it running: ready, and connect hands out a ticket */
	snprintf(word, sizeof(word), "%s=running", cn.cn_desktop);
	assert_int_equal(heartbeat(f->f_broker, "h1", report, &res), BROKER_OK);
	broker_maintain(f->f_broker, (int64_t)time(NULL));
	assert_int_equal(broker_connect(f->f_broker, &u, "auto", "10.1.1.1", &ready, &res),
			 BROKER_OK);
	assert_string_equal(ready.cn_session, cn.cn_session);
	assert_true(ticket_well_formed(ready.cn_ticket));
	assert_int_equal(fake_count("POST", "/api/v1/desktops/"), 2); /* start, ticket */
	assert_string_equal(jstr(fake_hosts.fh_calls[fake_hosts.fh_ncalls - 1].fc_body, "ticket"),
			    ready.cn_ticket);

	t = broker_ticket_redeem(f->f_broker, ready.cn_ticket, "10.1.1.1");
	assert_non_null(t);
	assert_string_equal(jstr(t, "kind"), "host");
	assert_string_equal(jstr(t, "relay"), "10.0.0.1:7444");
	json_decref(t);
}

static void test_host_not_taking_the_ticket(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	struct broker_connection cn;
	struct broker_result res;
	char word[80];
	const char *report[] = {word, NULL};

	host_add(f->f_broker, "h1");
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_OK);
	pool_create(f->f_broker, auto_pool);
	assert_int_equal(broker_connect(f->f_broker, &u, "auto", NULL, &cn, &res), BROKER_STARTING);
	broker_maintain(f->f_broker, (int64_t)time(NULL));
	snprintf(word, sizeof(word), "%s=running", cn.cn_desktop);
	heartbeat(f->f_broker, "h1", report, &res);
	broker_maintain(f->f_broker, (int64_t)time(NULL));

	fake_hosts.fh_status = 500;
	assert_int_equal(broker_connect(f->f_broker, &u, "auto", NULL, &cn, &res),
			 BROKER_HOST_UNAVAILABLE);
	assert_string_equal(res.br_message, "the desktop's host is not answering; retry");
	assert_int_equal(res.br_retry_after, 2);
	assert_string_equal(cn.cn_ticket, ""); /* wiped */
}

static void test_no_host_for_a_new_desktop(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	struct broker_connection cn;
	struct broker_result res;
	json_t *e;

	pool_create(f->f_broker, auto_pool); /* and no host at all */
	assert_int_equal(broker_connect(f->f_broker, &u, "auto", NULL, &cn, &res),
			 BROKER_NO_CAPACITY);
	assert_non_null(res.br_reason);
	e = audit_find(f->f_broker, "assign");
	assert_string_equal(jstr(e, "result"), "failure");
	json_decref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_such_pool, fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_not_entitled_is_denied_and_audited, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_manual_desktop_ticket_redeemed_once, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_ticket_of_ended_session_refused, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_ticket_refused, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_new_desktop_starts_then_connects, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_host_not_taking_the_ticket, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_no_host_for_a_new_desktop, fixture_setup,
					    fixture_teardown),
	};
	return cmocka_run_group_tests_name("broker_connect", tests, NULL, NULL);
}
