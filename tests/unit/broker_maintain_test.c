/* Unit tests for broker/hosts.c and the maintenance pass (maintain.c with sizing.c,
 * provision.c and sessions.c) on a real store (broker_fixture.h): heartbeats checked
 * and recorded (capacity figures clamped), a pool sized and its desktops created and started on the
 * host, a silent host marked down with its desktops lost, a disconnected session logged off once
 * its timeout passes, a floating desktop refreshed after a logoff, a desktop its host no longer
 * runs replaced, a deleted pool's desktops removed from the host, a drained host's
 * desktops kept and then stopped on request, and the failures of
 * clients not signed in counted per address and minute in the audit log, which keeps
 * its retention. Desktops lost or failed are counted in the broker's metrics. */
#include <sqlite3.h>

#include "broker_fixture.h"
#include "broker/metrics.h"

static const char *staff[] = {"staff"};

static const char *const spare_pool =
    "{\"id\": \"spare\", \"kind\": \"floating\", \"source\": \"automated\", \"min\": 2,"
    " \"max\": 4, \"spare\": 1, \"memory_mib\": 256, \"vcpus\": 1,"
    " \"disconnect_timeout\": 60,"
    " \"template\": {\"engine\": \"vdi-hv\", \"kernel\": \"k.elf\", \"disk\": \"base.img\"},"
    " \"entitlements\": [{\"kind\": \"group\", \"name\": \"staff\"}]}";

static void test_heartbeats_checked(void **state)
{
	struct fixture *f = *state;
	struct broker_result res;
	json_t *body;

	body = json_pack("{s:i}", "time", 1);
	assert_int_equal(broker_heartbeat(f->f_broker, body, "h1", &res), BROKER_BAD_REQUEST);
	assert_non_null(strstr(res.br_message, "host_id"));
	json_decref(body);
	body = json_pack("{s:s, s:[]}", "host_id", "h1", "capacity");
	assert_int_equal(broker_heartbeat(f->f_broker, body, "h1", &res), BROKER_BAD_REQUEST);
	assert_string_equal(res.br_message, "capacity must be an object and desktops an array");
	json_decref(body);
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_UNKNOWN_HOST);
	assert_string_equal(res.br_message, "host 'h1' is not registered");
}

/* A host's certificate speaks for that host only: a heartbeat for another host id, or
 * from a certificate with no readable name, records nothing. */
static void test_heartbeats_only_for_the_certificates_host(void **state)
{
	struct fixture *f = *state;
	struct broker_result res;
	json_t *body, *hosts;

	host_add(f->f_broker, "h1");
	body =
	    json_pack("{s:s, s:{s:i}, s:[]}", "host_id", "h1", "capacity", "cpus", 4, "desktops");
	assert_int_equal(broker_heartbeat(f->f_broker, body, "h2", &res), BROKER_WRONG_HOST);
	assert_string_equal(res.br_message, "the host certificate names 'h2', not host 'h1'");
	assert_int_equal(broker_heartbeat(f->f_broker, body, NULL, &res), BROKER_WRONG_HOST);
	assert_string_equal(res.br_message, "the host certificate names no host, not host 'h1'");
	json_decref(body);
	hosts = broker_admin_hosts(f->f_broker);
	assert_string_equal(jstr(json_array_get(hosts, 0), "state"), "down");
	assert_int_equal(jint(json_array_get(hosts, 0), "last_heartbeat"), 0);
	/* the admin sees what was refused for h1 */
	assert_string_equal(
	    jstr(json_object_get(json_array_get(hosts, 0), "identity_error"), "message"),
	    "heartbeat refused: the host certificate presented names no host; a "
	    "host sends heartbeats for its own id only");
	json_decref(hosts);
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_OK);
}

/* The keys of object o in their order, comma-separated, into buf. */
static const char *keys_of(json_t *o, char *buf, size_t len)
{
	const char *key;
	size_t n = 0;
	json_t *v;

	buf[0] = '\0';
	json_object_foreach (o, key, v)
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "," : "", key);
	return buf;
}

static void test_heartbeat_brings_the_host_up(void **state)
{
	struct fixture *f = *state;
	struct broker_result res;
	json_t *hosts, *h, *e;
	char keys[400];

	host_add(f->f_broker, "h1");
	hosts = broker_admin_hosts(f->f_broker);
	assert_string_equal(jstr(json_array_get(hosts, 0), "state"), "down");
	json_decref(hosts);
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_OK);
	hosts = broker_admin_hosts(f->f_broker);
	h = json_array_get(hosts, 0);
	assert_string_equal(jstr(h, "state"), "up");
	assert_true(json_is_true(json_object_get(h, "up")));
	assert_int_equal(jint(h, "vcpus_free"), 4 * 4);
	assert_int_equal(jint(h, "mem_free_mib"), 8192);
	assert_int_equal(jint(h, "max_desktops"), 10);
	assert_int_equal(jint(json_object_get(h, "capacity"), "cpus"), 4);
	assert_string_equal(jstr(h, "relay"), "10.0.0.1:7444");
	/* the admin API's host: the stored columns in table order, then state, whether it
	 * drains, and desktops */
	assert_string_equal(keys_of(h, keys, sizeof(keys)),
			    "id,url,relay,enabled,up,last_heartbeat,mem_free_mib,vcpus_free,"
			    "desktops,max_desktops,capacity,created,state,draining,desktop_ids");
	assert_false(json_is_true(json_object_get(h, "draining")));
	assert_int_equal(json_array_size(json_object_get(h, "desktop_ids")), 0);
	json_decref(hosts);
	e = audit_find(f->f_broker, "host_up");
	assert_non_null(e);
	assert_string_equal(jstr(e, "target"), "h1");
	json_decref(e);
}

/* Sends h1's heartbeat with capacity cap (taken) and returns h1 as the admin sees it. */
static json_t *host_after(struct fixture *f, json_t *cap)
{
	json_t *body = json_pack("{s:s, s:o, s:[]}", "host_id", "h1", "capacity", cap, "desktops"),
	       *hosts, *h;
	struct broker_result res;

	assert_int_equal(broker_heartbeat(f->f_broker, body, "h1", &res), BROKER_OK);
	json_decref(body);
	hosts = broker_admin_hosts(f->f_broker);
	h = json_incref(json_array_get(hosts, 0));
	json_decref(hosts);
	return h;
}

/* A host's figures are clamped before any arithmetic: cpus * 4 with cpus near INT_MAX
 * overflowed (a UBSan abort), a value beyond 32 bits was truncated by a cast, and
 * negative counts made room. */
static void test_heartbeat_capacity_is_clamped(void **state)
{
	struct fixture *f = *state;
	json_t *h;

	host_add(f->f_broker, "h1");
	h = host_after(f, json_pack("{s:I, s:I, s:I, s:I, s:I}", "cpus", (json_int_t)INT32_MAX,
				    "desktops_running", (json_int_t)0, "memory_available_mib",
				    (json_int_t)INT64_MAX, "desktops_defined",
				    (json_int_t)INT64_MAX, "max_desktops", (json_int_t)INT64_MIN));
	assert_int_equal(jint(h, "vcpus_free"), 8192 * 4);
	assert_int_equal(jint(h, "mem_free_mib"), INT64_C(1) << 32);
	assert_int_equal(jint(h, "desktops"), 1 << 20);
	assert_int_equal(jint(h, "max_desktops"), 0);
	json_decref(h);
	h = host_after(f,
		       json_pack("{s:I, s:I, s:I}", "cpus", (json_int_t)1 << 40, "desktops_running",
				 (json_int_t)INT64_MIN, "memory_available_mib", (json_int_t)-5));
	assert_int_equal(jint(h, "vcpus_free"), 8192 * 4);
	assert_int_equal(jint(h, "mem_free_mib"), 0);
	json_decref(h);
	h = host_after(f, json_pack("{s:I, s:I}", "cpus", (json_int_t)INT64_MIN, "desktops_running",
				    (json_int_t)INT64_MAX));
	assert_int_equal(jint(h, "vcpus_free"), -(1 << 20));
	json_decref(h);
	h = host_after(f, json_pack("{s:i, s:i}", "cpus", 8, "desktops_running", 3));
	assert_int_equal(jint(h, "vcpus_free"), 8 * 4 - 3);
	json_decref(h);
}

/* A host h1 up and the spare pool sized on it by one pass; returns its desktops. */
static json_t *sized_pool(struct fixture *f, int64_t now)
{
	struct broker_result res;
	json_t *ds;

	host_add(f->f_broker, "h1");
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_OK);
	pool_create(f->f_broker, spare_pool);
	broker_maintain(f->f_broker, now);
	ds = desktops_of(f->f_broker, "spare");
	assert_int_equal(json_array_size(ds), 2);
	return ds;
}

static void test_pass_sizes_the_pool_and_provisions(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL);
	struct broker_result res;
	char w0[80], w1[80];
	const char *report[] = {w0, w1, NULL};
	json_t *ds, *d;
	size_t i;

	ds = sized_pool(f, now);
	json_array_foreach (ds, i, d) {
		assert_string_equal(jstr(d, "state"), "provisioning");
		assert_string_equal(jstr(d, "host_id"), "h1");
	}
	/* created and started on the host in the same pass */
	assert_int_equal(fake_count("POST", "/api/v1/desktops"), 4);
	snprintf(w0, sizeof(w0), "%s=running", jstr(json_array_get(ds, 0), "id"));
	snprintf(w1, sizeof(w1), "%s=running", jstr(json_array_get(ds, 1), "id"));
	json_decref(ds);
	assert_int_equal(heartbeat(f->f_broker, "h1", report, &res), BROKER_OK);
	broker_maintain(f->f_broker, now);
	ds = desktops_of(f->f_broker, "spare");
	json_array_foreach (ds, i, d)
		assert_string_equal(jstr(d, "state"), "ready");
	json_decref(ds);
}

/* The value of the sample that starts with prefix ("name{labels} ") in GET /metrics. */
static double metric(struct broker *b, const char *prefix)
{
	char *text = broker_metrics_text(b), *at;
	double v;

	assert_non_null(text);
	at = strstr(text, prefix);
	assert_non_null(at);
	v = strtod(at + strlen(prefix), NULL);
	free(text);
	return v;
}

#define FAILURES(reason) "vdi_broker_desktop_failures_total{reason=\"" reason "\"} "

static void test_silent_host_goes_down(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL);
	json_t *ds, *d, *hosts, *e;
	size_t i;

	double lost;

	json_decref(sized_pool(f, now));
	lost = metric(f->f_broker, FAILURES("host_down"));
	broker_maintain(f->f_broker, now + 301); /* host_timeout = 300s */
	assert_true(metric(f->f_broker, FAILURES("host_down")) - lost == 2); /* min 2 */
	assert_true(metric(f->f_broker, "vdi_broker_host_up{host=\"h1\"} ") == 0);
	hosts = broker_admin_hosts(f->f_broker);
	assert_string_equal(jstr(json_array_get(hosts, 0), "state"), "down");
	json_decref(hosts);
	ds = desktops_of(f->f_broker, "spare");
	json_array_foreach (ds, i, d)
		assert_string_equal(jstr(d, "state"), "lost");
	json_decref(ds);
	e = audit_find(f->f_broker, "host_down");
	assert_non_null(e);
	assert_string_equal(jstr(e, "detail"), "no heartbeat for 300s");
	json_decref(e);
}

static void test_disconnected_session_times_out(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	int64_t now = (int64_t)time(NULL);
	struct broker_connection cn;
	struct broker_result res;
	char w0[80], w1[80];
	const char *report[] = {w0, w1, NULL};
	json_t *ds, *sessions, *e;

	ds = sized_pool(f, now);
	snprintf(w0, sizeof(w0), "%s=running", jstr(json_array_get(ds, 0), "id"));
	snprintf(w1, sizeof(w1), "%s=running", jstr(json_array_get(ds, 1), "id"));
	json_decref(ds);
	heartbeat(f->f_broker, "h1", report, &res);
	broker_maintain(f->f_broker, now);
	assert_int_equal(broker_connect(f->f_broker, &u, "spare", NULL, &cn, &res), BROKER_OK);
	assert_int_equal(broker_session_event(f->f_broker, &u, cn.cn_session,
					      POLICY_EVENT_DISCONNECT, NULL, &res),
			 BROKER_OK);
	assert_int_equal(
	    broker_session_event(f->f_broker, &u, "s-none", POLICY_EVENT_LOGOFF, NULL, &res),
	    BROKER_NOT_FOUND);

	heartbeat(f->f_broker, "h1", report, &res);
	broker_maintain(f->f_broker, now + 5); /* before the timeout: kept */
	sessions = broker_admin_sessions(f->f_broker, false);
	assert_int_equal(json_array_size(sessions), 1);
	assert_string_equal(jstr(json_array_get(sessions, 0), "id"), cn.cn_session);
	assert_string_equal(jstr(json_array_get(sessions, 0), "username"), "alice");
	assert_string_equal(jstr(json_array_get(sessions, 0), "state"), "disconnected");
	assert_false(json_is_true(json_object_get(json_array_get(sessions, 0), "attached")));
	json_decref(sessions);
	heartbeat(f->f_broker, "h1", report, &res);
	broker_maintain(f->f_broker, now + 61);
	sessions = broker_admin_sessions(f->f_broker, false);
	assert_int_equal(json_array_size(sessions), 0);
	json_decref(sessions);
	sessions = broker_admin_sessions(f->f_broker, true);
	assert_int_equal(json_array_size(sessions), 1);
	assert_string_equal(jstr(json_array_get(sessions, 0), "state"), "logged_off");
	json_decref(sessions);
	e = audit_find(f->f_broker, "logoff");
	assert_non_null(e);
	assert_string_equal(jstr(e, "target"), cn.cn_session);
	json_decref(e);
	assert_int_equal(
	    broker_session_event(f->f_broker, &u, cn.cn_session, POLICY_EVENT_LOGOFF, NULL, &res),
	    BROKER_LOGGED_OFF);
}

/* The spare pool sized on h1 and both desktops reported running: ready. Returns the
 * heartbeat report words (room for two) filled for state. */
static void ready_pool(struct fixture *f, int64_t now, char w[2][80])
{
	const char *report[] = {w[0], w[1], NULL};
	struct broker_result res;
	json_t *ds = sized_pool(f, now);

	for (int i = 0; i < 2; i++)
		snprintf(w[i], 80, "%s=running", jstr(json_array_get(ds, (size_t)i), "id"));
	json_decref(ds);
	assert_int_equal(heartbeat(f->f_broker, "h1", report, &res), BROKER_OK);
	broker_maintain(f->f_broker, now);
}

/* Sets the reported state of desktop id (one of w's words) to state. */
static void report_state(char w[2][80], const char *id, const char *state)
{
	for (int i = 0; i < 2; i++)
		if (!strncmp(w[i], id, strlen(id)) && w[i][strlen(id)] == '=')
			snprintf(w[i], 80, "%s=%s", id, state);
}

static const char *state_of(struct fixture *f, const char *id, char *buf, size_t len)
{
	json_t *ds = desktops_of(f->f_broker, "spare"), *d;
	size_t i;

	snprintf(buf, len, "(gone)");
	json_array_foreach (ds, i, d)
		if (!strcmp(jstr(d, "id"), id))
			snprintf(buf, len, "%s", jstr(d, "state"));
	json_decref(ds);
	return buf;
}

static void test_logoff_refreshes_the_floating_desktop(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	int64_t now = (int64_t)time(NULL);
	struct broker_connection cn;
	struct broker_result res;
	char w[2][80], st[32];
	const char *report[] = {w[0], w[1], NULL};

	ready_pool(f, now, w);
	assert_int_equal(broker_connect(f->f_broker, &u, "spare", NULL, &cn, &res), BROKER_OK);
	assert_int_equal(
	    broker_session_event(f->f_broker, &u, cn.cn_session, POLICY_EVENT_LOGOFF, NULL, &res),
	    BROKER_OK);
	assert_string_equal(state_of(f, cn.cn_desktop, st, sizeof(st)), "refreshing");

	fake_hosts.fh_state = "stopping";
	broker_maintain(f->f_broker, now);				      /* running: stopped */
	assert_int_equal(fake_count("POST", "/api/v1/desktops/"), 2 + 1 + 1); /* 2 starts, ticket */
	assert_non_null(strstr(fake_hosts.fh_calls[fake_hosts.fh_ncalls - 1].fc_path, "/stop"));
	report_state(w, cn.cn_desktop, "stopped");
	heartbeat(f->f_broker, "h1", report, &res);
	broker_maintain(f->f_broker, now); /* stopped: deleted from the host */
	assert_int_equal(fake_count("DELETE", "/api/v1/desktops/"), 1);
	broker_maintain(f->f_broker, now); /* off the host: provisioned anew */
	assert_string_equal(state_of(f, cn.cn_desktop, st, sizeof(st)), "provisioning");
}

static void test_failed_desktop_is_replaced(void **state)
{
	struct fixture *f = *state;
	struct broker_user u = user_in("alice", staff);
	int64_t now = (int64_t)time(NULL);
	struct broker_connection cn;
	struct broker_result res;
	char w[2][80], st[32];
	const char *report[] = {w[0], w[1], NULL};
	json_t *e;
	double failed, restarts;

	ready_pool(f, now, w);
	assert_int_equal(broker_connect(f->f_broker, &u, "spare", NULL, &cn, &res), BROKER_OK);
	failed = metric(f->f_broker, FAILURES("failed"));
	restarts = metric(f->f_broker, "vdi_broker_desktop_restarts_total ");
	report_state(w, cn.cn_desktop, "failed");
	heartbeat(f->f_broker, "h1", report, &res);
	broker_maintain(f->f_broker, now);
	assert_string_equal(state_of(f, cn.cn_desktop, st, sizeof(st)), "deleting");
	assert_true(metric(f->f_broker, FAILURES("failed")) - failed == 1);
	/* a floating desktop without an owner is replaced, not restarted */
	assert_true(metric(f->f_broker, "vdi_broker_desktop_restarts_total ") == restarts);
	e = audit_find(f->f_broker, "session_lost");
	assert_non_null(e);
	assert_string_equal(jstr(e, "target"), cn.cn_session);
	json_decref(e);
}

/* The calls made for desktop id: its create (by the body's id) and its own paths. */
static int calls_for(const char *id)
{
	char prefix[80];
	int k = 0;

	snprintf(prefix, sizeof(prefix), "/api/v1/desktops/%s", id);
	for (int i = 0; i < fake_hosts.fh_ncalls && i < FAKE_CALLS; i++) {
		const struct fake_call *c = &fake_hosts.fh_calls[i];
		const char *body_id = jstr(c->fc_body, "id");

		if (!strncmp(c->fc_path, prefix, strlen(prefix)) ||
		    (body_id && !strcmp(body_id, id)))
			k++;
	}
	return k;
}

static void test_template_refused_by_the_host_is_not_retried(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL), t = 0;
	struct broker_result res;
	char ids[4][48];
	size_t n = 0, i;
	double refused;
	json_t *ds, *d, *e;

	host_add(f->f_broker, "h1");
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_OK);
	pool_create(f->f_broker, spare_pool);
	refused = metric(f->f_broker, FAILURES("template"));
	/* the files went away on the host: each create is refused, and the pool backs off
	 * (1 s, 2 s, 4 s...) between them, up to its 4 desktops */
	fake_hosts.fh_status = 400;
	for (int k = 0; k < 6; k++, t = 2 * t + 1)
		broker_maintain(f->f_broker, now + t);
	ds = desktops_of(f->f_broker, "spare");
	assert_int_equal(json_array_size(ds), 4);
	json_array_foreach (ds, i, d) {
		assert_string_equal(jstr(d, "state"), "error");
		assert_string_equal(jstr(d, "failure"),
				    "host h1 refused the template: fake host answered 400");
		snprintf(ids[n++], sizeof(ids[0]), "%s", jstr(d, "id"));
	}
	json_decref(ds);
	assert_true(metric(f->f_broker, FAILURES("template")) - refused == 4);
	e = audit_find(f->f_broker, "desktop_error");
	assert_non_null(e);
	assert_non_null(strstr(jstr(e, "detail"), "refused the template"));
	json_decref(e);
	/* later passes leave them alone */
	fake_reset();
	fake_hosts.fh_status = 400;
	broker_maintain(f->f_broker, now + 40);
	broker_maintain(f->f_broker, now + 45);
	for (i = 0; i < n; i++)
		assert_int_equal(calls_for(ids[i]), 0);
	/* a template every host accepts again replaces them */
	fake_reset();
	e = json_pack("{s:{s:s, s:s, s:s}}", "template", "engine", "vdi-hv", "kernel", "k2.elf",
		      "disk", "base.img");
	assert_int_equal(
	    broker_admin_pool_write(f->f_broker, &admin, "127.0.0.1", "spare", e, &d, &res),
	    BROKER_OK);
	assert_int_equal(fake_count("POST", "/api/v1/templates/check"), 1);
	json_decref(e);
	json_decref(d);
	ds = desktops_of(f->f_broker, "spare");
	json_array_foreach (ds, i, d)
		assert_string_equal(jstr(d, "state"), "deleting");
	json_decref(ds);
}

static void test_pool_refused_by_a_host_is_not_stored(void **state)
{
	struct fixture *f = *state;
	json_t *req = json_loads(spare_pool, 0, NULL), *out = NULL, *p = NULL;
	struct broker_result res = {0};

	/* no host: accepted with a warning */
	assert_int_equal(
	    broker_admin_pool_write(f->f_broker, &admin, "127.0.0.1", NULL, req, &out, &res),
	    BROKER_OK);
	assert_non_null(strstr(jstr(out, "template_warning"), "no host is up with engine vdi-hv"));
	json_decref(out);
	/* a host up that refuses the template */
	json_object_set_new(req, "id", json_string("other"));
	host_add(f->f_broker, "h1");
	assert_int_equal(heartbeat(f->f_broker, "h1", NULL, &res), BROKER_OK);
	fake_hosts.fh_status = 422;
	assert_int_equal(
	    broker_admin_pool_write(f->f_broker, &admin, "127.0.0.1", NULL, req, &out, &res),
	    BROKER_BAD_REQUEST);
	assert_string_equal(res.br_message, "template: refused by host h1: fake host answered 422");
	assert_int_equal(fake_count("POST", "/api/v1/templates/check"), 1);
	assert_int_equal(broker_admin_pool_get(f->f_broker, "other", &p, &res), BROKER_NOT_FOUND);
	json_decref(req);
}

static void test_deleted_pool_leaves_the_host(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL);
	struct broker_result res;
	char w[2][80];
	const char *report[] = {w[0], w[1], NULL};
	json_t *pools, *p;
	char keys[400];

	ready_pool(f, now, w);
	/* the admin API's pool: the stored columns in table order (without deleting), its
	 * entitlements, its run of failures, the template's warning, state and desktop counts,
	 * and its desktops (without VNC passwords) */
	pools = broker_admin_pools(f->f_broker);
	assert_int_equal(json_array_size(pools), 1);
	p = json_array_get(pools, 0);
	assert_string_equal(keys_of(p, keys, sizeof(keys)),
			    "id,name,kind,source,enabled,min,max,spare,memory_mib,vcpus,"
			    "disconnect_timeout,logoff_action,template,networks,windows,utc_offset,"
			    "hosts,created,entitlements,failures,retry_at,failure,template_warning,"
			    "desktops_ready,desktops_in_use,desktops_preparing,desktops_failed,"
			    "desktops,health");
	assert_string_equal(jstr(json_object_get(p, "health"), "state"), "ok");
	assert_int_equal(jint(p, "desktops_ready"), 2);
	assert_int_equal(jint(p, "desktops_in_use") + jint(p, "desktops_failed"), 0);
	assert_string_equal(jstr(p, "kind"), "floating");
	assert_string_equal(jstr(p, "source"), "automated");
	assert_string_equal(jstr(json_array_get(json_object_get(p, "entitlements"), 0), "kind"),
			    "group");
	assert_int_equal(json_array_size(json_object_get(p, "desktops")), 2);
	assert_null(
	    json_object_get(json_array_get(json_object_get(p, "desktops"), 0), "vnc_password"));
	json_decref(pools);
	assert_int_equal(broker_admin_pool_delete(f->f_broker, &admin, NULL, "spare", &res),
			 BROKER_OK);
	pools = broker_admin_pools(f->f_broker);
	assert_int_equal(json_array_size(pools), 0); /* hidden at once */
	json_decref(pools);
	broker_maintain(f->f_broker, now); /* desktops deleting; running ones stopped */
	assert_int_equal(fake_count("POST", "/api/v1/desktops/"), 2 + 2); /* starts, stops */
	for (int i = 0; i < 2; i++)
		strcpy(strchr(w[i], '=') + 1, "stopped");
	heartbeat(f->f_broker, "h1", report, &res);
	broker_maintain(f->f_broker, now); /* deleted from the host */
	assert_int_equal(fake_count("DELETE", "/api/v1/desktops/"), 2);
	broker_maintain(f->f_broker, now); /* rows removed, then the pool */
	pools = broker_admin_hosts(f->f_broker);
	assert_int_equal(json_array_size(json_object_get(json_array_get(pools, 0), "desktop_ids")),
			 0);
	json_decref(pools);
	pool_create(f->f_broker, spare_pool); /* the id is free again */
}

/* The login failures of one address in a minute: its first row at once, the rest one
 * row when the minute is over; audit rows past the retention purged. */
/* Creates asked of the fake host (POST /api/v1/desktops itself). */
static int fake_creates(void)
{
	return fake_count("POST", "/api/v1/desktops") - fake_count("POST", "/api/v1/desktops/");
}

/* A drained host gets no new desktop and keeps those it runs; stop-desktops has each
 * stopped there: an owned one is kept stopped (not started again), the others deleted
 * and, the host drained, not replaced on it. Resumed, the pool is sized on it again. */
static void test_drained_host_and_its_desktops_stopped(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL);
	struct broker_result res = {0};
	char w[2][80], owned[48], path[128];
	const char *report[] = {w[0], w[1], NULL};
	int creates, starts;
	json_t *out = NULL, *ds, *e;
	sqlite3 *db;

	ready_pool(f, now, w);
	assert_int_equal(broker_admin_host_drain(f->f_broker, &admin, NULL, "h1", true, &out, &res),
			 BROKER_OK);
	assert_true(json_is_true(json_object_get(out, "draining")));
	json_decref(out);
	assert_int_equal(broker_admin_host_drain(f->f_broker, &admin, NULL, "h9", true, &out, &res),
			 BROKER_NOT_FOUND);
	assert_null(out);
	ds = desktops_of(f->f_broker, "spare");
	snprintf(owned, sizeof(owned), "%s", jstr(json_array_get(ds, 0), "id"));
	json_decref(ds);
	snprintf(path, sizeof(path), "%s/state/broker.db", f->f_dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(path, sizeof(path), "UPDATE desktops SET owner = 'alice' WHERE id = '%s'", owned);
	assert_int_equal(sqlite3_exec(db, path, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	/* draining: the running desktops stay, nothing is stopped */
	broker_maintain(f->f_broker, now);
	assert_int_equal(fake_count("POST", "/api/v1/desktops/"), 2); /* the two starts */
	creates = fake_creates();

	assert_int_equal(
	    broker_admin_host_stop_desktops(f->f_broker, &admin, NULL, "h1", &out, &res),
	    BROKER_OK);
	assert_int_equal(json_array_size(json_object_get(out, "desktops")), 2);
	json_decref(out);
	broker_maintain(f->f_broker, now); /* both stopped on the host */
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/api/v1/desktops/%.*s/stop",
			 (int)(strchr(w[i], '=') - w[i]), w[i]);
		assert_int_equal(fake_count("POST", path), 1);
		strcpy(strchr(w[i], '=') + 1, "stopped");
	}
	heartbeat(f->f_broker, "h1", report, &res);
	starts = fake_count("POST", "/api/v1/desktops/");
	broker_maintain(f->f_broker, now); /* the unowned one deleted from the host */
	broker_maintain(f->f_broker, now);
	assert_int_equal(fake_count("DELETE", "/api/v1/desktops/"), 1);
	assert_int_equal(fake_count("POST", "/api/v1/desktops/"), starts); /* none restarted */
	assert_int_equal(fake_creates(), creates);			   /* none created */
	ds = desktops_of(f->f_broker, "spare");
	assert_int_equal(json_array_size(ds), 1);
	assert_string_equal(jstr(json_array_get(ds, 0), "id"), owned);
	assert_string_equal(jstr(json_array_get(ds, 0), "state"), "stopped");
	json_decref(ds);
	e = audit_find(f->f_broker, "host_stop_desktops");
	assert_non_null(e);
	assert_string_equal(jstr(e, "detail"), "2 desktop(s)");
	json_decref(e);
	e = audit_find(f->f_broker, "host_drain");
	assert_non_null(e);
	assert_string_equal(jstr(e, "result"), "failure"); /* the newest: h9 */
	json_decref(e);

	/* resumed: the pool is sized on h1 again */
	assert_int_equal(
	    broker_admin_host_drain(f->f_broker, &admin, NULL, "h1", false, &out, &res), BROKER_OK);
	json_decref(out);
	broker_maintain(f->f_broker, now);
	assert_true(fake_creates() > creates);
}

static unsigned login_rows(struct broker *b, const char *addr, const char **last)
{
	json_t *all = broker_admin_audit(b, 1000, 0), *e;
	unsigned n = 0;
	size_t i;

	json_array_foreach (all, i, e) {
		if (strcmp(jstr(e, "action"), "login") || strcmp(jstr(e, "client_addr"), addr))
			continue;
		if (n++ == 0 && last)
			*last = jstr(e, "detail") ? strdup(jstr(e, "detail")) : NULL;
	}
	json_decref(all);
	return n;
}

static void test_failures_of_an_address_are_counted(void **state)
{
	struct fixture *f = *state;
	struct broker *b = f->f_broker;
	char token[TOKEN_LEN + 1];
	struct broker_result res;
	const char *last = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *out;

	for (int i = 0; i < 20; i++) {
		const char *name = i % 2 ? "mallory" : "trudy";

		assert_int_not_equal(broker_login(b, name, strlen(name), "wrong", 5, "192.0.2.1",
						  false, &out, token, &res),
				     BROKER_OK);
	}
	broker_login(b, "eve", 3, "wrong", 5, "192.0.2.2", false, &out, token, &res);
	assert_int_equal(login_rows(b, "192.0.2.1", NULL), 1);
	assert_int_equal(login_rows(b, "192.0.2.2", NULL), 1);
	broker_maintain(b, now + 30); /* the minute is not over */
	assert_int_equal(login_rows(b, "192.0.2.1", NULL), 1);
	broker_maintain(b, (int64_t)time(NULL) + 61); /* the minute is over */
	assert_int_equal(login_rows(b, "192.0.2.1", &last), 2);
	assert_non_null(last);
	assert_non_null(strstr(last, "19 more in the 60 s after the first"));
	assert_non_null(strstr(last, "mallory"));
	free((char *)last);
	assert_int_equal(login_rows(b, "192.0.2.2", NULL), 1); /* nothing more to say */
	broker_maintain(b, now + 181 * 86400);		       /* past the 180 days kept */
	assert_int_equal(login_rows(b, "192.0.2.1", NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_failures_of_an_address_are_counted, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeats_checked, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeats_only_for_the_certificates_host,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_capacity_is_clamped, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_brings_the_host_up, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_pass_sizes_the_pool_and_provisions, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_silent_host_goes_down, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_disconnected_session_times_out, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_logoff_refreshes_the_floating_desktop,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_failed_desktop_is_replaced, fixture_setup,
					    fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_template_refused_by_the_host_is_not_retried,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_pool_refused_by_a_host_is_not_stored,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_drained_host_and_its_desktops_stopped,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_deleted_pool_leaves_the_host, fixture_setup,
					    fixture_teardown),
	};
	return cmocka_run_group_tests_name("broker_maintain", tests, NULL, NULL);
}
