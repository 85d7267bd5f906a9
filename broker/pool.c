/* Pool requests checked field by field (with the same parsers policy/ uses for rules,
 * so a stored pool always parses again), and the record-to-policy conversions. */
#include "broker/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util.h"
#include "lib/json.h"
#include "policy/rules.h"

bool pool_id_valid(const char *id, size_t max)
{
	size_t n = id ? strlen(id) : 0;

	return n >= 1 && n <= max && id[0] != '-' &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

bool pool_is_manual(const json_t *pool)
{
	const char *name = json_string_value(json_object_get(pool, "source"));
	enum pool_source source;

	return pool_source_parse(name, &source) == 0 && source == POOL_MANUAL;
}

/* Splits a comma-separated list into trimmed items in buf; returns the count, -E2BIG. */
static int split(const char *text, char *buf, size_t buflen, const char **items, size_t max)
{
	size_t n = 0;
	char *p, *save = NULL;

	if (strlen(text) >= buflen)
		return -E2BIG;
	strcpy(buf, text);
	for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!*p)
			continue;
		if (n == max)
			return -E2BIG;
		items[n++] = p;
	}
	return (int)n;
}

static int parse_networks(const char *text, struct policy_cidr *out, char *err, size_t errlen)
{
	const char *items[POOL_MAX_RULES];
	char buf[4096];
	int n = split(text, buf, sizeof(buf), items, POOL_MAX_RULES);

	if (n < 0) {
		snprintf(err, errlen, "networks: at most %d", POOL_MAX_RULES);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		if (policy_cidr_parse(items[i], &out[i]) < 0) {
			snprintf(err, errlen, "networks: '%.64s' is not an address or a network",
				 items[i]);
			return -EINVAL;
		}
	}
	return n;
}

static const struct json_field pool_fields[] = {
    {"id", JSON_FIELD_STRING, false},
    {"name", JSON_FIELD_STRING, false},
    {"kind", JSON_FIELD_STRING, false},
    {"source", JSON_FIELD_STRING, false},
    {"enabled", JSON_FIELD_BOOL, false},
    {"min", JSON_FIELD_INT, false},
    {"max", JSON_FIELD_INT, false},
    {"spare", JSON_FIELD_INT, false},
    {"memory_mib", JSON_FIELD_INT, false},
    {"vcpus", JSON_FIELD_INT, false},
    {"disconnect_timeout", JSON_FIELD_INT, false},
    {"logoff_action", JSON_FIELD_STRING, false},
    {"template", JSON_FIELD_ANY, false},
    {"networks", JSON_FIELD_STRING, false},
    {"windows", JSON_FIELD_STRING, false},
    {"utc_offset", JSON_FIELD_INT, false},
    {"hosts", JSON_FIELD_STRING, false},
    {"entitlements", JSON_FIELD_ANY, false},
    {"desktops", JSON_FIELD_ANY, false},
    JSON_FIELDS_END,
};

static const struct json_field template_fields[] = {
    {"engine", JSON_FIELD_STRING, false},  {"kernel", JSON_FIELD_STRING, false},
    {"initrd", JSON_FIELD_STRING, false},  {"disk", JSON_FIELD_STRING, true},
    {"cmdline", JSON_FIELD_STRING, false}, JSON_FIELDS_END,
};

static bool one_of(const char *v, const char *a, const char *b)
{
	return v && (!strcmp(v, a) || !strcmp(v, b));
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

json_t *pool_from_request(const json_t *req, const json_t *existing, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		long long min, max, def;
	} ints[] = {
	    {"min", 0, 1000, 0},	  {"max", 0, 1000, 0},
	    {"spare", 0, 1000, 0},	  {"memory_mib", 16, 65536, 512},
	    {"vcpus", 1, 64, 1},	  {"disconnect_timeout", -1, 30 * 86400, 3600},
	    {"utc_offset", -720, 840, 0},
	};
	static const char *const strs[][2] = {{"name", ""},
					      {"kind", NULL},
					      {"source", "automated"},
					      {"logoff_action", "refresh"},
					      {"networks", ""},
					      {"windows", ""},
					      {"hosts", ""}};
	struct policy_cidr nets[POOL_MAX_RULES];
	struct policy_window wins[POOL_MAX_RULES];
	const char *hosts[POOL_MAX_HOSTS];
	char buf[4096];
	json_t *p = existing ? json_deep_copy(existing) : json_object(), *tpl;
	enum pool_logoff_action logoff;
	enum pool_source source;
	enum pool_kind kind;
	const char *id, *v;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_object_del(p, "entitlements");
	if (json_check_fields(req, pool_fields, err, errlen) < 0)
		goto out_fail;
	id = json_string_value(json_object_get(req, "id"));
	if (existing) {
		if (id && strcmp(id, json_string_value(json_object_get(existing, "id")))) {
			snprintf(err, errlen, "id cannot change");
			goto out_fail;
		}
	} else {
		if (!pool_id_valid(id, 24)) {
			snprintf(err, errlen,
				 "id must be 1 to 24 of a-z 0-9 - (not starting with -)");
			goto out_fail;
		}
		json_object_set_new(p, "id", json_string(id));
	}
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		v = json_string_value(json_object_get(req, strs[i][0]));
		if (!v && !existing)
			v = strs[i][1];
		if (!v && !existing) {
			snprintf(err, errlen, "%s is required", strs[i][0]);
			goto out_fail;
		}
		if (v && !text_ok(v, 1024)) {
			snprintf(err, errlen, "%s: at most 1024 printable characters", strs[i][0]);
			goto out_fail;
		}
		if (v)
			json_object_set_new(p, strs[i][0], json_string(v));
	}
	if (!json_string_value(json_object_get(p, "name"))[0])
		json_object_set(p, "name", json_object_get(p, "id"));
	if (pool_kind_parse(json_string_value(json_object_get(p, "kind")), &kind) < 0) {
		snprintf(err, errlen, "kind must be dedicated or floating");
		goto out_fail;
	}
	if (pool_source_parse(json_string_value(json_object_get(p, "source")), &source) < 0) {
		snprintf(err, errlen, "source must be automated or manual");
		goto out_fail;
	}
	if (pool_logoff_action_parse(json_string_value(json_object_get(p, "logoff_action")),
				     &logoff) < 0) {
		snprintf(err, errlen, "logoff_action must be refresh or destroy");
		goto out_fail;
	}
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		json_t *jv = json_object_get(req, ints[i].name);
		long long n = jv ? json_integer_value(jv) : ints[i].def;

		if (!jv && existing)
			continue;
		if (n < ints[i].min || n > ints[i].max) {
			snprintf(err, errlen, "%s must be from %lld to %lld", ints[i].name,
				 ints[i].min, ints[i].max);
			goto out_fail;
		}
		json_object_set_new(p, ints[i].name, json_integer(n));
	}
	if (json_object_get(req, "enabled") || !existing)
		json_object_set_new(p, "enabled",
				    json_boolean(!json_is_false(json_object_get(req, "enabled"))));
	if (json_integer_value(json_object_get(p, "min")) >
		json_integer_value(json_object_get(p, "max")) ||
	    json_integer_value(json_object_get(p, "spare")) >
		json_integer_value(json_object_get(p, "max"))) {
		snprintf(err, errlen, "min and spare must not exceed max");
		goto out_fail;
	}
	if (parse_networks(json_string_value(json_object_get(p, "networks")), nets, err, errlen) <
	    0)
		goto out_fail;
	v = json_string_value(json_object_get(p, "windows"));
	if (v[0] && policy_windows_parse(v, wins, POOL_MAX_RULES) < 0) {
		snprintf(err, errlen,
			 "windows: want e.g. \"Mon-Fri 07:00-19:00, Sat 09:00-13:00\" (at most %d)",
			 POOL_MAX_RULES);
		goto out_fail;
	}
	{
		int n = split(json_string_value(json_object_get(p, "hosts")), buf, sizeof(buf),
			      hosts, POOL_MAX_HOSTS);

		for (int i = 0; i < n; i++)
			if (!pool_id_valid(hosts[i], 40))
				n = -EINVAL;
		if (n < 0) {
			snprintf(err, errlen, "hosts: a comma-separated list of host ids");
			goto out_fail;
		}
	}
	tpl = json_object_get(req, "template");
	if (tpl && !json_is_null(tpl)) {
		const char *key;
		json_t *val;

		if (!json_is_object(tpl) ||
		    json_check_fields(tpl, template_fields, err, errlen) < 0) {
			if (!json_is_object(tpl))
				snprintf(err, errlen, "template must be an object");
			goto out_fail;
		}
		json_object_foreach (tpl, key, val) {
			if (!text_ok(json_string_value(val), 1024)) {
				snprintf(err, errlen,
					 "template.%s: at most 1024 printable characters", key);
				goto out_fail;
			}
		}
		v = json_string_value(json_object_get(tpl, "engine"));
		if (v && !one_of(v, "qemu", "vdi-hv")) {
			snprintf(err, errlen, "template.engine must be qemu or vdi-hv");
			goto out_fail;
		}
		json_object_set(p, "template", tpl);
	} else if (tpl || !existing) {
		json_object_set_new(p, "template", json_null());
	}
	if (!pool_is_manual(p) && !json_is_object(json_object_get(p, "template"))) {
		snprintf(err, errlen, "an automated pool needs a template with at least a disk");
		goto out_fail;
	}
	return p;

out_fail:
	json_decref(p);
	return NULL;
}

unsigned pool_engine_bit(const char *engine)
{
	if (!engine)
		return POLICY_ENGINE_DEFAULT;
	return !strcmp(engine, "vdi-hv") ? POLICY_ENGINE_VDIHV : POLICY_ENGINE_QEMU;
}

int pool_view_init(struct pool_view *v, const struct pool_rec *pool)
{
	struct policy_pool *pp = &v->pv_pool;
	char err[128];
	int n;

	memset(v, 0, sizeof(*v));
	pp->pool_id = pool->pr_id;
	pp->pool_enabled = pool->pr_enabled;
	pp->pool_kind = pool->pr_kind == POOL_DEDICATED ? POLICY_DEDICATED : POLICY_FLOATING;
	pp->pool_provisioning = pool->pr_source == POOL_MANUAL ? POLICY_MANUAL : POLICY_AUTOMATED;
	pp->pool_min = pool->pr_min;
	pp->pool_max = pool->pr_max;
	pp->pool_spare = pool->pr_spare;
	pp->pool_memory_mb = pool->pr_memory_mib;
	pp->pool_vcpus = pool->pr_vcpus;
	pp->pool_disconnect_timeout = pool->pr_disconnect_timeout;
	pp->pool_logoff_action = pool->pr_logoff_action == POOL_LOGOFF_DESTROY
				     ? POLICY_LOGOFF_DESTROY
				     : POLICY_LOGOFF_REFRESH;
	v->pv_ents = calloc(pool->pr_nents + 1, sizeof(*v->pv_ents));
	if (!v->pv_ents)
		return -ENOMEM;
	for (size_t i = 0; i < pool->pr_nents; i++) {
		v->pv_ents[i].pe_kind = pool->pr_ents[i].er_kind == ENTITLEMENT_GROUP
					    ? POLICY_PRINCIPAL_GROUP
					    : POLICY_PRINCIPAL_USER;
		v->pv_ents[i].pe_name = pool->pr_ents[i].er_name;
	}
	pp->pool_entitlements = v->pv_ents;
	pp->pool_nentitlements = pool->pr_nents;
	pp->pool_rules.pr_utc_offset = pool->pr_utc_offset;
	n = parse_networks(pool->pr_networks ? pool->pr_networks : "", v->pv_nets, err,
			   sizeof(err));
	if (n < 0)
		goto out_invalid;
	pp->pool_rules.pr_networks = v->pv_nets;
	pp->pool_rules.pr_nnetworks = (size_t)n;
	n = pool->pr_windows && pool->pr_windows[0]
		? policy_windows_parse(pool->pr_windows, v->pv_windows, POOL_MAX_RULES)
		: 0;
	if (n < 0)
		goto out_invalid;
	pp->pool_rules.pr_windows = v->pv_windows;
	pp->pool_rules.pr_nwindows = (size_t)n;
	v->pv_hosts_buf = malloc(4096);
	if (!v->pv_hosts_buf)
		return -ENOMEM;
	n = split(pool->pr_hosts ? pool->pr_hosts : "", v->pv_hosts_buf, 4096, v->pv_hosts,
		  POOL_MAX_HOSTS);
	if (n < 0)
		goto out_invalid;
	pp->pool_hosts = v->pv_hosts;
	pp->pool_nhosts = (size_t)n;
	if (pool->pr_source != POOL_MANUAL)
		pp->pool_engine = pool_engine_bit(jstr(pool->pr_template, "engine"));
	return 0;

out_invalid:
	pp->pool_enabled = false;
	return -EINVAL;
}

void pool_view_free(struct pool_view *v)
{
	free(v->pv_ents);
	free(v->pv_hosts_buf);
	memset(v, 0, sizeof(*v));
}

enum policy_desktop_state pool_desktop_state(enum desktop_state state)
{
	switch (state) {
	case DESKTOP_PROVISIONING: return POLICY_DESKTOP_PROVISIONING;
	case DESKTOP_READY: return POLICY_DESKTOP_READY;
	case DESKTOP_STOPPED: return POLICY_DESKTOP_STOPPED;
	case DESKTOP_REFRESHING: return POLICY_DESKTOP_REFRESHING;
	case DESKTOP_DELETING: return POLICY_DESKTOP_DELETING;
	default: return POLICY_DESKTOP_ERROR; /* error, lost */
	}
}

enum policy_session_state pool_session_state(enum session_state state)
{
	switch (state) {
	case SESSION_CONNECTED: return POLICY_SESSION_CONNECTED;
	case SESSION_DISCONNECTED: return POLICY_SESSION_DISCONNECTED;
	default: return POLICY_SESSION_LOGGED_OFF;
	}
}

enum session_state pool_stored_session_state(enum policy_session_state state)
{
	switch (state) {
	case POLICY_SESSION_CONNECTED: return SESSION_CONNECTED;
	case POLICY_SESSION_DISCONNECTED: return SESSION_DISCONNECTED;
	default: return SESSION_LOGGED_OFF;
	}
}

void pool_desktops_view(const struct desktop_list *desktops, struct policy_desktop *out)
{
	for (size_t i = 0; i < desktops->dl_n; i++) {
		const struct desktop_rec *d = &desktops->dl_recs[i];

		out[i] = (struct policy_desktop){
		    .desk_id = d->dr_id,
		    .desk_host = d->dr_host,
		    .desk_owner = d->dr_owner,
		    .desk_state = pool_desktop_state(d->dr_state),
		    .desk_in_use = d->dr_in_use,
		};
	}
}

struct policy_session pool_session_view(const struct session_rec *s)
{
	return (struct policy_session){
	    .sess_id = s->sr_id,
	    .sess_user = s->sr_user,
	    .sess_pool = s->sr_pool,
	    .sess_desktop = s->sr_desktop,
	    .sess_state = pool_session_state(s->sr_state),
	    .sess_since = s->sr_since,
	};
}

void pool_sessions_view(const struct session_list *sessions, struct policy_session *out)
{
	for (size_t i = 0; i < sessions->sl_n; i++)
		out[i] = pool_session_view(&sessions->sl_recs[i]);
}
