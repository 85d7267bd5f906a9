/* What the broker's unit tests share (broker_*_test.c): a broker opened on a real
 * SQLite store in a temporary directory (the store's interface is too wide for a fake
 * worth keeping), with a fake client of the hosts that records each call and answers
 * as the test says, and helpers to set up pools, hosts and users. Static functions: each
 * test includes this once. */
#ifndef VDI_TESTS_UNIT_BROKER_FIXTURE_H
#define VDI_TESTS_UNIT_BROKER_FIXTURE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/hostclient.h"
#include "broker/util.h"
#include "policy/lifecycle.h"

/* ---- the fake client of vdi-hostd's API (replaces broker/hostclient.c) ---- */

#define FAKE_CALLS 64

struct hostclient {
	int hc_unused;
};

struct fake_call {
	char fc_method[8], fc_path[160];
	json_t *fc_body;
};

static struct {
	struct fake_call fh_calls[FAKE_CALLS];
	int fh_ncalls;
	int fh_status;	      /* the answer to every call; 0: by the method (see below) */
	const char *fh_state; /* "state" in the answer to start/stop */
} fake_hosts;

struct hostclient *hostclient_new(const char *cert, const char *key, const char *ca, int timeout_s)
{
	(void)cert, (void)key, (void)ca, (void)timeout_s;
	return calloc(1, sizeof(struct hostclient));
}

void hostclient_free(struct hostclient *hc)
{
	free(hc);
}

/* Answers as hostd does when all goes well: 201 to a create, 202 to start and stop,
 * 200 otherwise; or fake_hosts.fh_status when set (with "error" from 400 on). */
int hostclient_call(struct hostclient *hc, const char *host_id, const char *base_url,
		    const char *method, const char *path, const json_t *body, json_t **reply,
		    char *err, size_t errlen)
{
	struct fake_call *c = &fake_hosts.fh_calls[fake_hosts.fh_ncalls % FAKE_CALLS];
	size_t n = strlen(path);
	int status = 200;

	(void)hc, (void)host_id, (void)base_url;
	snprintf(c->fc_method, sizeof(c->fc_method), "%s", method);
	snprintf(c->fc_path, sizeof(c->fc_path), "%s", path);
	json_decref(c->fc_body);
	c->fc_body = body ? json_deep_copy(body) : NULL;
	fake_hosts.fh_ncalls++;
	if (!strcmp(path, "/api/v1/desktops"))
		status = 201;
	else if (n > 6 && (!strcmp(path + n - 6, "/start") || !strcmp(path + n - 5, "/stop")))
		status = 202;
	if (fake_hosts.fh_status)
		status = fake_hosts.fh_status;
	*reply =
	    json_pack("{s:s}", "state", fake_hosts.fh_state ? fake_hosts.fh_state : "starting");
	snprintf(err, errlen, "fake host answered %d", status);
	if (status >= 400)
		json_object_set_new(*reply, "error", json_string(err));
	return status;
}

/* The calls whose method and path (a prefix) match, from the first call on. */
static inline int fake_count(const char *method, const char *path_prefix)
{
	int k = 0;

	for (int i = 0; i < fake_hosts.fh_ncalls && i < FAKE_CALLS; i++)
		if (!strcmp(fake_hosts.fh_calls[i].fc_method, method) &&
		    !strncmp(fake_hosts.fh_calls[i].fc_path, path_prefix, strlen(path_prefix)))
			k++;
	return k;
}

static inline void fake_reset(void)
{
	for (int i = 0; i < FAKE_CALLS; i++)
		json_decref(fake_hosts.fh_calls[i].fc_body);
	memset(&fake_hosts, 0, sizeof(fake_hosts));
}

/* ---- a broker in a temporary directory ---- */

struct fixture {
	char f_dir[64];
	struct broker_config f_cfg;
	struct broker *f_broker;
};

static inline void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static inline int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[128], err[512];
	FILE *conf;

	assert_non_null(f);
	snprintf(f->f_dir, sizeof(f->f_dir), "/tmp/broker_test.XXXXXX");
	assert_non_null(mkdtemp(f->f_dir));
	/* [hosts] files need only exist: the host client is the fake above */
	run("touch %s/host.crt %s/host.key %s/ca.crt", f->f_dir, f->f_dir, f->f_dir);
	snprintf(path, sizeof(path), "%s/broker.conf", f->f_dir);
	conf = fopen(path, "w");
	assert_non_null(conf);
	fprintf(conf,
		"[broker]\nstate_dir = %s/state\nadmin_users = admin\nticket_lifetime = 30s\n"
		"log_level = error\n"
		"[hosts]\ncert = %s/host.crt\nkey = %s/host.key\nca = %s/ca.crt\n"
		"host_timeout = 300s\n"
		"[auth]\nbackend = local\n",
		f->f_dir, f->f_dir, f->f_dir, f->f_dir);
	fclose(conf);
	if (broker_config_load(path, &f->f_cfg, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	f->f_broker = broker_open(&f->f_cfg, err, sizeof(err));
	if (!f->f_broker)
		fail_msg("broker_open: %s", err);
	fake_reset();
	*state = f;
	return 0;
}

static inline int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	broker_close(f->f_broker);
	broker_config_free(&f->f_cfg);
	run("rm -rf %s", f->f_dir);
	fake_reset();
	free(f);
	return 0;
}

/* ---- helpers ---- */

static const struct broker_user admin = {.bu_name = "admin", .bu_admin = true};

/* A caller named name in group (NULL: none). */
static inline struct broker_user user_in(const char *name, const char **group)
{
	return (struct broker_user){
	    .bu_name = name,
	    .bu_groups = group,
	    .bu_ngroups = group ? 1 : 0,
	};
}

/* Creates a pool from its JSON request as the admin API gets it. */
static inline void pool_create(struct broker *b, const char *json)
{
	json_t *req = json_loads(json, 0, NULL), *out = NULL;
	struct broker_result res = {0};

	assert_non_null(req);
	if (broker_admin_pool_write(b, &admin, "127.0.0.1", NULL, req, &out, &res) != BROKER_OK)
		fail_msg("pool: %s", res.br_message);
	json_decref(out);
	json_decref(req);
}

static inline void host_add(struct broker *b, const char *id)
{
	struct broker_result res = {0};
	json_t *req = json_pack("{s:s, s:s, s:s}", "id", id, "url", "https://10.0.0.1:7443",
				"relay", "10.0.0.1:7444"),
	       *out = NULL;

	assert_int_equal(broker_admin_host_add(b, &admin, NULL, req, &out, &res), BROKER_OK);
	json_decref(out);
	json_decref(req);
}

/* A heartbeat of host with room for a few desktops, reporting desktops as "id=state"
 * words (NULL-terminated). */
static inline enum broker_outcome heartbeat(struct broker *b, const char *host,
					    const char **desktops, struct broker_result *res)
{
	json_t *body = json_pack("{s:s, s:i, s:{s:i, s:i, s:i, s:i, s:i}, s:[]}", "host_id", host,
				 "time", (int)time(NULL), "capacity", "cpus", 4, "desktops_running",
				 0, "memory_available_mib", 8192, "desktops_defined", 0,
				 "max_desktops", 10, "desktops");
	enum broker_outcome o;

	for (; desktops && *desktops; desktops++) {
		char id[64];
		const char *eq = strchr(*desktops, '=');

		snprintf(id, sizeof(id), "%.*s", (int)(eq - *desktops), *desktops);
		json_array_append_new(json_object_get(body, "desktops"),
				      json_pack("{s:s, s:s}", "id", id, "state", eq + 1));
	}
	o = broker_heartbeat(b, body, host, res);
	json_decref(body);
	return o;
}

/* The newest audit entry with action, or NULL (a new reference). */
static inline json_t *audit_find(struct broker *b, const char *action)
{
	json_t *all = broker_admin_audit(b, 1000, 0), *e, *found = NULL;
	size_t i;

	json_array_foreach (all, i, e) {
		if (!strcmp(jstr(e, "action"), action)) {
			found = json_incref(e);
			break;
		}
	}
	json_decref(all);
	return found;
}

/* The desktops of pool (a new reference). */
static inline json_t *desktops_of(struct broker *b, const char *pool)
{
	json_t *p = NULL, *ds;
	struct broker_result res = {0};

	assert_int_equal(broker_admin_pool_get(b, pool, &p, &res), BROKER_OK);
	ds = json_incref(json_object_get(p, "desktops"));
	json_decref(p);
	return ds;
}

#endif
