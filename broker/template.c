/* A pool's template checked with the hosts that could run its desktops (registered,
 * enabled, up, allowed by the pool's hosts rule, offering its engine) before the pool
 * is stored: each host answers POST /api/v1/templates/check from its own template
 * directories. A problem on any of them refuses the pool with the file and the host
 * named; no host to ask leaves a warning on the pool instead. Host calls only: the
 * caller holds no store transaction. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/hostclient.h"
#include "broker/internal.h"
#include "lib/log.h"

/* Whether host id is one of the comma-separated ids of rule ("" allows every host). */
static bool rule_allows(const char *rule, const char *id)
{
	size_t n = strlen(id);
	const char *p = rule ? rule : "";
	bool any = false;

	while (*p) {
		const char *end;
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p + strcspn(p, ",");
		len = (size_t)(end - p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len) {
			any = true;
			if (len == n && !strncmp(p, id, n))
				return true;
		}
		p = end;
	}
	return !any;
}

/* Why host h cannot run desktops of engine (its default when NULL), from its last
 * capacity report as placement reads it (hosts.c); NULL when it can, or when the report
 * says nothing of engines. *name gets the engine's name. */
static const char *engine_missing(const struct host_rec *h, const char *engine, const char **name)
{
	const json_t *cap = h->hr_capacity, *engines = json_object_get(cap, "engines"), *e;

	*name = engine ? engine : jstr(cap, "default_engine");
	if (!*name || !json_is_object(engines))
		return NULL;
	e = json_object_get(engines, *name);
	if (json_is_true(json_object_get(e, "available")))
		return NULL;
	return jstr(e, "reason") ? jstr(e, "reason") : "not available";
}

/* Appends text to buf (len bytes) after a "; " when buf has something. */
static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 3 >= len)
		return;
	if (used) {
		memcpy(buf + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* The template directories of a host's report, as "a:b". */
static void dirs_text(const json_t *report, char *buf, size_t len)
{
	const json_t *dir;
	size_t i, used = 0;

	buf[0] = '\0';
	json_array_foreach (json_object_get(report, "template_dirs"), i, dir) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ":" : "",
				 json_string_value(dir) ? json_string_value(dir) : "?");

		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

/* The problems a host listed, as "template: kernel 'x' not found ... on host h
 * (template_dirs /d)". */
static void problems_text(const char *host, const json_t *report, char *buf, size_t len)
{
	const json_t *p;
	char dirs[1024];
	size_t i;

	dirs_text(report, dirs, sizeof(dirs));
	buf[0] = '\0';
	json_array_foreach (json_object_get(report, "problems"), i, p) {
		const char *field = json_string_value(json_object_get(p, "field"));
		const char *file = json_string_value(json_object_get(p, "file"));
		const char *why = json_string_value(json_object_get(p, "error"));

		append(buf, len, "template: %s '%.200s' %.300s on host %s (template_dirs %s)",
		       field ? field : "file", file ? file : "?", why ? why : "is wrong", host,
		       dirs);
	}
	if (!buf[0])
		snprintf(buf, len, "template: refused by host %s: %.300s", host,
			 json_string_value(json_object_get(report, "error"))
			     ? json_string_value(json_object_get(report, "error"))
			     : "no reason given");
}

/* What hostd is asked to check: what a create of the pool's desktops would carry. */
static json_t *check_request(const json_t *rec)
{
	json_t *req = json_deep_copy(json_object_get(rec, "template"));

	if (!req)
		return NULL;
	json_object_set_new(req, "memory_mib", json_integer(jint(rec, "memory_mib")));
	json_object_set_new(req, "vcpus", json_integer(jint(rec, "vcpus")));
	return req;
}

enum broker_outcome template_check_pool(struct broker *b, const json_t *rec, char **warning,
					struct broker_result *res)
{
	const char *engine = jstr(json_object_get(rec, "template"), "engine");
	bool has_rule = !rule_allows(jstr(rec, "hosts"), ""); /* "" is no host's id */
	char unchecked[1024] = "", skipped[1024] = "", refusal[2048] = "";
	struct host_list hosts;
	size_t asked = 0;
	json_t *req;

	*warning = NULL;
	if (store_hosts_list(b->b_store, &hosts) < 0)
		return broker_result_set(res, BROKER_INTERNAL, NULL, "cannot read the hosts");
	req = check_request(rec);
	for (size_t i = 0; req && i < hosts.hl_n && !refusal[0]; i++) {
		const struct host_rec *h = &hosts.hl_recs[i];
		const char *name = NULL, *missing = engine_missing(h, engine, &name);
		json_t *reply = NULL;
		char err[512] = "";
		int r;

		if (!h->hr_enabled || h->hr_state != HOST_UP ||
		    !rule_allows(jstr(rec, "hosts"), h->hr_id))
			continue;
		if (missing) {
			append(skipped, sizeof(skipped), "host %s: %s: %.200s", h->hr_id, name,
			       missing);
			continue;
		}
		asked++;
		r = b->b_hosts
			? hostclient_call(b->b_hosts, h->hr_id, h->hr_url, "POST",
					  "/api/v1/templates/check", req, &reply, err, sizeof(err))
			: -ENOTCONN;
		if (r == -EPERM)
			hosts_identity_refused(b, h->hr_id, "template check: %s", err);
		else if (r >= 0)
			hosts_identity_proven(b, h->hr_id);
		if (r == 200) {
			log_debug("pool=%s host=%s: template checked", jstr(rec, "id"), h->hr_id);
		} else if (r == 422 || r == 400) {
			problems_text(h->hr_id, reply, refusal, sizeof(refusal));
		} else {
			/* unreachable, or a hostd older than the check (404) */
			append(unchecked, sizeof(unchecked), "host %s: %.200s", h->hr_id,
			       r == 404 || r == 405 ? "does not offer template checks" : err);
		}
		json_decref(reply);
	}
	json_decref(req);
	host_list_free(&hosts);
	if (!req)
		return broker_result_set(res, BROKER_INTERNAL, NULL, "out of memory");
	if (refusal[0])
		return broker_result_set(res, BROKER_BAD_REQUEST, NULL, "%s", refusal);
	if (!asked || unchecked[0]) {
		char text[2200];

		if (!asked)
			snprintf(text, sizeof(text),
				 "template not checked: no host is up%s%s%s; it will be checked "
				 "when its first desktop is created%s%s",
				 engine ? " with engine " : "", engine ? engine : "",
				 has_rule ? " among the pool's hosts" : "", skipped[0] ? " (" : "",
				 skipped[0] ? skipped : "");
		else
			snprintf(text, sizeof(text), "template not checked on %s", unchecked);
		if (!asked && skipped[0])
			strncat(text, ")", sizeof(text) - strlen(text) - 1);
		*warning = strdup(text);
	}
	return BROKER_OK;
}
