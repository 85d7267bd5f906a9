/* Unit tests for broker/store: migrations to the latest schema (and refusal of a newer
 * one), the database refusing a second live session on a desktop, session records
 * (state names both ways, fields, the admin API's object, lists), host records (the
 * same, heartbeats and silent hosts marked down), pool records (names of kinds, sources,
 * logoff actions and entitlement kinds both ways, fields, entitlements), atomic ticket
 * redemption (once, before expiry, and exactly once under concurrent redemptions), web
 * sessions with idle and absolute expiry, the audit log's order, and a user's password
 * hash replaced. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker/store.h"

static char dir[] = "/tmp/broker_store_test.XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/broker.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[300];

	(void)state;
	for (const char *suffix = ""; suffix; suffix = !*suffix			 ? "-wal"
						       : !strcmp(suffix, "-wal") ? "-shm"
										 : NULL) {
		snprintf(p, sizeof(p), "%s%s", path, suffix);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static struct store *fresh(void)
{
	char err[256], p[300];
	struct store *s;

	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(path);
	unlink(p);
	s = store_open(path, err, sizeof(err));
	assert_non_null(s);
	return s;
}

static void test_migrations(void **state)
{
	struct store *s = fresh();
	char err[256];
	sqlite3 *db;

	(void)state;
	assert_int_equal(store_schema_version(s), store_schema_latest());
	store_close(s);
	s = store_open(path, err, sizeof(err)); /* again: nothing to do */
	assert_non_null(s);
	assert_int_equal(store_schema_version(s), store_schema_latest());
	store_close(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "UPDATE schema_version SET version = 999", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_null(store_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "schema version 999"));
}

static void pool_and_desktops(struct store *s)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:s, "
			      "s:s, s:i, s:s}",
			      "id", "p", "name", "p", "kind", "floating", "source", "manual",
			      "enabled", 1, "min", 0, "max", 0, "spare", 0, "memory_mib", 64,
			      "vcpus", 1, "disconnect_timeout", 60, "logoff_action", "refresh",
			      "networks", "", "windows", "", "utc_offset", 0, "hosts", "");

	assert_int_equal(store_pool_put(s, p, true, 1), 0);
	assert_int_equal(store_pool_put(s, p, true, 1), -EEXIST);
	json_decref(p);
	assert_int_equal(store_desktop_add(s, "d1", "p", NULL, "h:1", "pw", NULL, DESKTOP_READY, 1),
			 0);
	assert_int_equal(store_desktop_add(s, "d2", "p", NULL, "h:2", NULL, NULL, DESKTOP_READY, 1),
			 0);
}

/* The admin API's object of a record, as compact JSON text. */
static void assert_json_text(json_t *j, const char *want)
{
	char *text = json_dumps(j, JSON_COMPACT);

	assert_non_null(text);
	assert_string_equal(text, want);
	free(text);
	json_decref(j);
}

static void test_one_live_session_per_desktop(void **state)
{
	struct store *s = fresh();
	struct session_rec r;
	struct desktop_rec d;

	(void)state;
	pool_and_desktops(s);
	assert_int_equal(store_session_add(s, "s1", "alice", "p", "d1", SESSION_CONNECTED, NULL, 1),
			 0);
	assert_int_equal(store_session_add(s, "s2", "bob", "p", "d1", SESSION_CONNECTED, NULL, 1),
			 -EEXIST);
	assert_int_equal(store_desktop_get(s, "d1", &d), 0);
	assert_true(d.dr_in_use);
	assert_int_equal(d.dr_state, DESKTOP_READY);
	assert_string_equal(d.dr_address, "h:1");
	assert_string_equal(d.dr_vnc_password, "pw");
	assert_null(d.dr_host);
	desktop_rec_release(&d);
	assert_int_equal(store_desktop_get(s, "nope", &d), -ENOENT);
	assert_int_equal(store_session_set_state(s, "s1", SESSION_LOGGED_OFF, 2), 0);
	assert_int_equal(store_session_add(s, "s2", "bob", "p", "d1", SESSION_CONNECTED, NULL, 3),
			 0);
	/* a transaction rolled back leaves nothing */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_session_add(s, "s3", "carol", "p", "d2", SESSION_CONNECTED, NULL, 4),
			 0);
	store_rollback(s);
	assert_int_equal(store_session_get(s, "s3", &r), -ENOENT);
	store_close(s);
}

static void test_session_records(void **state)
{
	struct store *s = fresh();
	struct session_list l;
	struct session_rec r;
	enum session_state st;

	(void)state;
	/* each state's name parses back to it; the table has no other */
	for (int i = SESSION_CONNECTED; i <= SESSION_LOGGED_OFF; i++) {
		assert_int_equal(session_state_parse(session_state_name(i), &st), 0);
		assert_int_equal(st, i);
	}
	assert_string_equal(session_state_name(SESSION_LOGGED_OFF), "logged_off");
	assert_null(session_state_name(SESSION_LOGGED_OFF + 1));
	assert_int_equal(session_state_parse("running", &st), -EINVAL);
	assert_int_equal(session_state_parse(NULL, &st), -EINVAL);

	pool_and_desktops(s);
	assert_int_equal(
	    store_session_add(s, "s1", "alice", "p", "d1", SESSION_CONNECTED, "10.0.0.7", 5), 0);
	assert_int_equal(
	    store_session_add(s, "s2", "bob", "p", "d2", SESSION_DISCONNECTED, NULL, 6), 0);
	assert_int_equal(store_session_set_attached(s, "s1", true), 0);
	assert_int_equal(store_session_get(s, "s1", &r), 0);
	assert_string_equal(r.sr_id, "s1");
	assert_string_equal(r.sr_user, "alice");
	assert_string_equal(r.sr_pool, "p");
	assert_string_equal(r.sr_desktop, "d1");
	assert_string_equal(r.sr_client_addr, "10.0.0.7");
	assert_int_equal(r.sr_state, SESSION_CONNECTED);
	assert_true(r.sr_attached);
	assert_int_equal(r.sr_created, 5);
	assert_int_equal(r.sr_since, 5);
	/* the admin API's object: the columns in table order, as before records were typed */
	assert_json_text(session_rec_json(&r),
			 "{\"id\":\"s1\",\"username\":\"alice\",\"pool_id\":\"p\","
			 "\"desktop_id\":\"d1\",\"state\":\"connected\",\"attached\":true,"
			 "\"client_addr\":\"10.0.0.7\",\"created\":5,\"since\":5}");
	session_rec_release(&r);
	assert_null(r.sr_id);

	assert_int_equal(store_session_set_state(s, "s2", SESSION_LOGGED_OFF, 9), 0);
	assert_int_equal(store_session_set_state(s, "nope", SESSION_LOGGED_OFF, 9), -ENOENT);
	assert_int_equal(store_session_get(s, "s2", &r), 0);
	assert_int_equal(r.sr_state, SESSION_LOGGED_OFF);
	assert_int_equal(r.sr_since, 9);
	assert_null(r.sr_client_addr);
	assert_false(r.sr_attached);
	session_rec_release(&r);

	/* live only, or all; by user and pool */
	assert_int_equal(store_sessions_list(s, NULL, NULL, true, &l), 0);
	assert_int_equal(l.sl_n, 1);
	assert_string_equal(l.sl_recs[0].sr_id, "s1");
	session_list_free(&l);
	assert_int_equal(store_sessions_list(s, NULL, "p", false, &l), 0);
	assert_int_equal(l.sl_n, 2);
	assert_string_equal(l.sl_recs[0].sr_id, "s2"); /* connected ones last */
	assert_int_equal(l.sl_recs[0].sr_state, SESSION_LOGGED_OFF);
	session_list_free(&l);
	assert_int_equal(store_sessions_list(s, "ALICE", NULL, false, &l), 0);
	assert_int_equal(l.sl_n, 1); /* user names compare without case */
	session_list_free(&l);
	assert_int_equal(store_sessions_list(s, "carol", NULL, false, &l), 0);
	assert_int_equal(l.sl_n, 0);
	session_list_free(&l);
	store_close(s);
}

static void test_host_records(void **state)
{
	struct store *s = fresh();
	json_t *cap = json_pack("{s:i, s:i}", "cpus", 4, "memory_available_mib", 900);
	struct host_list l;
	struct host_rec h;

	(void)state;
	assert_string_equal(host_state_name(HOST_DOWN), "down");
	assert_string_equal(host_state_name(HOST_UP), "up");
	assert_null(host_state_name(HOST_UP + 1));

	assert_int_equal(store_host_add(s, "h2", "https://h2:7443", NULL, 10), 0);
	assert_int_equal(store_host_add(s, "h1", "https://h1:7443", "h1:7444", 11), 0);
	assert_int_equal(store_host_add(s, "h1", "https://h1:7443", NULL, 11), -EEXIST);
	assert_int_equal(store_host_get(s, "nope", &h), -ENOENT);
	assert_null(h.hr_id);
	assert_int_equal(store_host_get(s, "h1", &h), 0);
	assert_string_equal(h.hr_id, "h1");
	assert_string_equal(h.hr_url, "https://h1:7443");
	assert_string_equal(h.hr_relay, "h1:7444");
	assert_true(h.hr_enabled);
	assert_int_equal(h.hr_state, HOST_DOWN);
	assert_null(h.hr_capacity);
	assert_int_equal(h.hr_created, 11);
	/* the admin API's object: the columns in table order, as before records were typed */
	assert_json_text(host_rec_json(&h),
			 "{\"id\":\"h1\",\"url\":\"https://h1:7443\",\"relay\":\"h1:7444\","
			 "\"enabled\":true,\"up\":false,\"last_heartbeat\":0,\"mem_free_mib\":0,"
			 "\"vcpus_free\":0,\"desktops\":0,\"max_desktops\":0,\"capacity\":null,"
			 "\"created\":11}");
	host_rec_release(&h);

	/* a heartbeat brings it up (1 the first time) and records its capacity */
	assert_int_equal(store_host_heartbeat(s, "h1", 100, 900, -2, 3, 8, cap), 1);
	assert_int_equal(store_host_heartbeat(s, "h1", 101, 900, -2, 3, 8, cap), 0);
	assert_int_equal(store_host_heartbeat(s, "nope", 101, 0, 0, 0, 0, NULL), -ENOENT);
	assert_int_equal(store_host_get(s, "h1", &h), 0);
	assert_int_equal(h.hr_state, HOST_UP);
	assert_int_equal(h.hr_last_heartbeat, 101);
	assert_int_equal(h.hr_mem_free_mib, 900);
	assert_int_equal(h.hr_vcpus_free, -2);
	assert_int_equal(h.hr_desktops, 3);
	assert_int_equal(h.hr_max_desktops, 8);
	assert_true(json_equal(h.hr_capacity, cap));
	assert_json_text(host_rec_json(&h),
			 "{\"id\":\"h1\",\"url\":\"https://h1:7443\",\"relay\":\"h1:7444\","
			 "\"enabled\":true,\"up\":true,\"last_heartbeat\":101,"
			 "\"mem_free_mib\":900,\"vcpus_free\":-2,\"desktops\":3,"
			 "\"max_desktops\":8,\"capacity\":{\"cpus\":4,"
			 "\"memory_available_mib\":900},\"created\":11}");
	host_rec_release(&h);
	json_decref(cap);

	assert_int_equal(store_hosts_list(s, &l), 0);
	assert_int_equal(l.hl_n, 2);
	assert_string_equal(l.hl_recs[0].hr_id, "h1"); /* by id */
	assert_string_equal(l.hl_recs[1].hr_relay, "");
	assert_int_equal(l.hl_recs[1].hr_state, HOST_DOWN);
	host_list_free(&l);

	/* silent since before 102: h1 goes down (h2 was never up), once */
	assert_int_equal(store_hosts_expire(s, 101, &l), 0);
	assert_int_equal(l.hl_n, 0);
	host_list_free(&l);
	assert_int_equal(store_hosts_expire(s, 102, &l), 0);
	assert_int_equal(l.hl_n, 1);
	assert_string_equal(l.hl_recs[0].hr_id, "h1");
	host_list_free(&l);
	assert_int_equal(store_hosts_expire(s, 102, &l), 0);
	assert_int_equal(l.hl_n, 0);
	host_list_free(&l);
	assert_int_equal(store_host_get(s, "h1", &h), 0);
	assert_int_equal(h.hr_state, HOST_DOWN);
	host_rec_release(&h);
	/* drained (placement skips a host not enabled) and resumed */
	assert_int_equal(store_host_set_enabled(s, "h1", false), 0);
	assert_int_equal(store_host_get(s, "h1", &h), 0);
	assert_false(h.hr_enabled);
	host_rec_release(&h);
	assert_int_equal(store_host_set_enabled(s, "h1", true), 0);
	assert_int_equal(store_host_get(s, "h1", &h), 0);
	assert_true(h.hr_enabled);
	host_rec_release(&h);
	assert_int_equal(store_host_set_enabled(s, "nope", false), -ENOENT);
	assert_int_equal(store_host_delete(s, "h2"), 0);
	assert_int_equal(store_host_delete(s, "h2"), -ENOENT);
	store_close(s);
}

static void test_pool_records(void **state)
{
	struct store *s = fresh();
	json_t *q = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:s, "
			      "s:{s:s}, s:s, s:s, s:i, s:s}",
			      "id", "q", "name", "Q", "kind", "dedicated", "source", "automated",
			      "enabled", 0, "min", 1, "max", 3, "spare", 1, "memory_mib", 256,
			      "vcpus", 2, "disconnect_timeout", -1, "logoff_action", "destroy",
			      "template", "disk", "a.img", "networks", "10.0.0.0/8", "windows",
			      "Mon 07:00-08:00", "utc_offset", -60, "hosts", "h1");
	enum pool_logoff_action la;
	enum entitlement_kind ek;
	enum pool_source ps;
	enum pool_kind pk;
	struct pool_list l;
	struct pool_rec p;

	(void)state;
	/* each name parses back to its value; the tables have no others */
	for (int i = POOL_DEDICATED; i <= POOL_FLOATING; i++) {
		assert_int_equal(pool_kind_parse(pool_kind_name(i), &pk), 0);
		assert_int_equal(pk, i);
	}
	for (int i = POOL_AUTOMATED; i <= POOL_MANUAL; i++) {
		assert_int_equal(pool_source_parse(pool_source_name(i), &ps), 0);
		assert_int_equal(ps, i);
	}
	for (int i = POOL_LOGOFF_REFRESH; i <= POOL_LOGOFF_DESTROY; i++) {
		assert_int_equal(pool_logoff_action_parse(pool_logoff_action_name(i), &la), 0);
		assert_int_equal(la, i);
	}
	for (int i = ENTITLEMENT_USER; i <= ENTITLEMENT_GROUP; i++) {
		assert_int_equal(entitlement_kind_parse(entitlement_kind_name(i), &ek), 0);
		assert_int_equal(ek, i);
	}
	assert_string_equal(pool_kind_name(POOL_FLOATING), "floating");
	assert_string_equal(pool_source_name(POOL_MANUAL), "manual");
	assert_string_equal(pool_logoff_action_name(POOL_LOGOFF_DESTROY), "destroy");
	assert_string_equal(entitlement_kind_name(ENTITLEMENT_GROUP), "group");
	assert_null(pool_kind_name(POOL_FLOATING + 1));
	assert_int_equal(pool_source_parse("Manual", &ps), -EINVAL);
	assert_int_equal(entitlement_kind_parse(NULL, &ek), -EINVAL);

	pool_and_desktops(s);
	assert_int_equal(store_pool_put(s, q, true, 8), 0);
	json_decref(q);
	assert_int_equal(store_entitlement_add(s, "p", "user", "bob"), 0);
	assert_int_equal(store_entitlement_add(s, "p", "group", "staff"), 0);
	assert_int_equal(store_pool_get(s, "nope", &p), -ENOENT);
	assert_int_equal(store_pool_get(s, "p", &p), 0);
	assert_string_equal(p.pr_id, "p");
	assert_int_equal(p.pr_kind, POOL_FLOATING);
	assert_int_equal(p.pr_source, POOL_MANUAL);
	assert_int_equal(p.pr_logoff_action, POOL_LOGOFF_REFRESH);
	assert_null(p.pr_template);
	assert_int_equal(p.pr_nents, 2);
	assert_int_equal(p.pr_ents[0].er_kind, ENTITLEMENT_GROUP); /* by kind, then name */
	assert_string_equal(p.pr_ents[0].er_name, "staff");
	assert_int_equal(p.pr_ents[1].er_kind, ENTITLEMENT_USER);
	/* the admin API's object: the columns in table order, the entitlements, the run of
	 * failures, then the template's warning */
	assert_json_text(pool_rec_json(&p),
			 "{\"id\":\"p\",\"name\":\"p\",\"kind\":\"floating\",\"source\":"
			 "\"manual\",\"enabled\":true,\"min\":0,\"max\":0,\"spare\":0,"
			 "\"memory_mib\":64,\"vcpus\":1,\"disconnect_timeout\":60,"
			 "\"logoff_action\":\"refresh\",\"template\":null,\"networks\":\"\","
			 "\"windows\":\"\",\"utc_offset\":0,\"hosts\":\"\",\"deleting\":false,"
			 "\"created\":1,\"entitlements\":[{\"kind\":\"group\",\"name\":"
			 "\"staff\"},{\"kind\":\"user\",\"name\":\"bob\"}],"
			 "\"failures\":0,\"retry_at\":0,\"failure\":null,"
			 "\"template_warning\":null}");
	pool_rec_release(&p);
	assert_null(p.pr_ents);

	assert_int_equal(store_pool_get(s, "q", &p), 0);
	assert_string_equal(p.pr_name, "Q");
	assert_int_equal(p.pr_kind, POOL_DEDICATED);
	assert_int_equal(p.pr_source, POOL_AUTOMATED);
	assert_false(p.pr_enabled);
	assert_int_equal(p.pr_min, 1);
	assert_int_equal(p.pr_max, 3);
	assert_int_equal(p.pr_spare, 1);
	assert_int_equal(p.pr_memory_mib, 256);
	assert_int_equal(p.pr_vcpus, 2);
	assert_int_equal(p.pr_disconnect_timeout, -1);
	assert_int_equal(p.pr_logoff_action, POOL_LOGOFF_DESTROY);
	assert_string_equal(json_string_value(json_object_get(p.pr_template, "disk")), "a.img");
	assert_string_equal(p.pr_networks, "10.0.0.0/8");
	assert_string_equal(p.pr_windows, "Mon 07:00-08:00");
	assert_string_equal(p.pr_hosts, "h1");
	assert_int_equal(p.pr_utc_offset, -60);
	assert_int_equal(p.pr_created, 8);
	assert_int_equal(p.pr_nents, 0);
	pool_rec_release(&p);

	/* a pool being deleted is listed no more, but still found by id */
	assert_int_equal(store_pools_list(s, &l), 0);
	assert_int_equal(l.pl_n, 2);
	assert_string_equal(l.pl_recs[1].pr_id, "q");
	pool_list_free(&l);
	assert_int_equal(store_pool_mark_deleting(s, "q"), 0);
	assert_int_equal(store_pools_list(s, &l), 0);
	assert_int_equal(l.pl_n, 1);
	assert_string_equal(l.pl_recs[0].pr_id, "p");
	pool_list_free(&l);
	assert_int_equal(store_pool_get(s, "q", &p), 0);
	assert_true(p.pr_deleting);
	assert_false(p.pr_enabled);
	pool_rec_release(&p);
	store_close(s);
}

struct race {
	struct store *r_store;
	pthread_barrier_t *r_barrier;
	int r_won;
};

static void *redeem(void *arg)
{
	struct race *r = arg;
	struct ticket_rec t;

	pthread_barrier_wait(r->r_barrier);
	r->r_won = store_ticket_redeem(r->r_store, "h-race", 100, &t) == 0;
	ticket_rec_release(&t);
	return NULL;
}

static void test_tickets(void **state)
{
	struct store *s = fresh();
	struct race races[8];
	pthread_t threads[8];
	pthread_barrier_t barrier;
	struct ticket_rec t;
	int won = 0;

	(void)state;
	assert_int_equal(store_ticket_add(s, "h1", "s1", "alice", "d1", 100, 130), 0);
	assert_int_equal(store_ticket_add(s, "h1", "s1", "alice", "d1", 100, 130), -EEXIST);
	assert_int_equal(store_tickets_live(s, "s1", 100), 1);
	assert_int_equal(store_ticket_redeem(s, "h1", 130, &t), -EACCES); /* expired at 130 */
	assert_null(t.tr_hash);
	assert_int_equal(store_ticket_redeem(s, "h1", 129, &t), 0);
	assert_string_equal(t.tr_hash, "h1");
	assert_string_equal(t.tr_session, "s1");
	assert_string_equal(t.tr_user, "alice");
	assert_string_equal(t.tr_desktop, "d1");
	assert_int_equal(t.tr_created, 100);
	assert_int_equal(t.tr_expires_at, 130);
	assert_int_equal(t.tr_redeemed_at, 129);
	ticket_rec_release(&t);
	assert_null(t.tr_session);
	assert_int_equal(store_ticket_redeem(s, "h1", 129, &t), -EACCES); /* used */
	assert_int_equal(store_ticket_redeem(s, "nope", 1, &t), -EACCES);
	assert_int_equal(store_tickets_live(s, "s1", 100), 0);
	/* concurrent redemptions: exactly one wins */
	assert_int_equal(store_ticket_add(s, "h-race", "s1", "alice", "d1", 100, 160), 0);
	pthread_barrier_init(&barrier, NULL, 8);
	for (int i = 0; i < 8; i++) {
		races[i] = (struct race){s, &barrier, 0};
		pthread_create(&threads[i], NULL, redeem, &races[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(threads[i], NULL);
		won += races[i].r_won;
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(won, 1);
	assert_int_equal(store_purge(s, 1000, 1000, 0), 2);
	store_close(s);
}

static void test_web_sessions_and_audit(void **state)
{
	struct store *s = fresh();
	json_t *groups = json_pack("[s, s]", "staff", "r&d (lab)"), *w, *a;

	(void)state;
	assert_int_equal(store_websession_add(s, "th", "alice", "Alice", groups, false, "csrf",
					      false, "127.0.0.1", 100, 1000),
			 0);
	w = store_websession_get(s, "th", 200, 50);
	assert_non_null(w);
	assert_true(json_equal(json_object_get(w, "groups"), groups));
	assert_false(json_is_true(json_object_get(w, "bearer")));
	json_decref(w);
	assert_null(store_websession_get(s, "th", 1000, 0));  /* past its lifetime */
	assert_null(store_websession_get(s, "th", 900, 300)); /* idle since 200 */
	assert_int_equal(store_websession_delete(s, "th"), 0);
	assert_int_equal(store_websession_delete(s, "th"), -ENOENT);
	json_decref(groups);
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    store_audit(s, i, "admin", "pool_create", "p", "success", NULL, NULL), 0);
	a = store_audit_list(s, 2, 0);
	assert_int_equal(json_array_size(a), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "id")), 5);
	json_decref(a);
	a = store_audit_list(s, 10, 3);
	assert_int_equal(json_array_size(a), 2);
	json_decref(a);
	/* users seen signing in: audited logins (the newest), web sessions, sessions */
	store_audit(s, 300, "Erin", "login", "Erin", "success", NULL, NULL);
	store_audit(s, 400, "erin", "login", "erin", "success", NULL, NULL);
	store_audit(s, 500, "mallory", "login", "mallory", "failure", NULL, NULL);
	groups = json_array();
	store_websession_add(s, "th2", "frank", "Frank", groups, false, "csrf", true, NULL, 350,
			     9000);
	json_decref(groups);
	a = store_users_seen(s);
	assert_json_text(a, "[{\"username\":\"erin\",\"last_login\":400,\"display_name\":null,"
			    "\"groups\":null},"
			    "{\"username\":\"frank\",\"last_login\":350,\"display_name\":"
			    "\"Frank\",\"groups\":[]}]");
	store_close(s);
}

/* A login that finds a weak hash stores a fresh one: only that user's hash changes. */
static void test_user_hash_replaced(void **state)
{
	struct store *s = fresh();
	json_t *groups = json_array(), *u;

	(void)state;
	assert_int_equal(store_user_add(s, "alice", "$weak$", "Alice", NULL, groups, 1), 0);
	assert_int_equal(store_user_add(s, "bob", "$weak$", "Bob", NULL, groups, 1), 0);
	assert_int_equal(store_user_set_hash(s, "alice", "$strong$"), 0);
	u = store_user_get(s, "alice");
	assert_string_equal(json_string_value(json_object_get(u, "password_hash")), "$strong$");
	json_decref(u);
	u = store_user_get(s, "bob");
	assert_string_equal(json_string_value(json_object_get(u, "password_hash")), "$weak$");
	json_decref(u);
	assert_int_equal(store_user_set_hash(s, "carol", "$strong$"), -ENOENT);
	json_decref(groups);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrations),
	    cmocka_unit_test(test_one_live_session_per_desktop),
	    cmocka_unit_test(test_session_records),
	    cmocka_unit_test(test_host_records),
	    cmocka_unit_test(test_pool_records),
	    cmocka_unit_test(test_tickets),
	    cmocka_unit_test(test_web_sessions_and_audit),
	    cmocka_unit_test(test_user_hash_replaced),
	};
	return cmocka_run_group_tests_name("broker_store", tests, setup, teardown);
}
