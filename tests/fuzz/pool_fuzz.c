/* libFuzzer harness for an administrator's pool request (broker/pool.c), the largest
 * JSON body the broker takes apart: the first byte says whether the body creates a pool
 * or updates a valid one, the rest is the body as it arrives (json_parse_object() with
 * the API's limit). Checked for an accepted request: the record has a valid id, a
 * non-empty name, a kind, source and logoff action the store knows, every number in
 * its range, min and spare at most max, an automated pool a template; the record is
 * what the broker can use (pool_view_init() takes its networks, windows and hosts); and
 * sent again as a create request it is accepted unchanged. A refused request says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/pool.h"
#include "broker/store.h"
#include "lib/json.h"

#define BODY_MAX (64 * 1024)

static const char existing_text[] =
    "{\"id\":\"office\",\"name\":\"Office\",\"kind\":\"floating\",\"source\":\"automated\","
    "\"enabled\":true,\"min\":1,\"max\":4,\"spare\":1,\"memory_mib\":1024,\"vcpus\":2,"
    "\"disconnect_timeout\":3600,\"logoff_action\":\"refresh\",\"networks\":\"10.0.0.0/8\","
    "\"windows\":\"Mon-Fri 07:00-19:00\",\"utc_offset\":60,\"hosts\":\"h1,h2\","
    "\"template\":{\"engine\":\"vdi-hv\",\"kernel\":\"vmlinuz\",\"disk\":\"base.img\"}}";

static long long num(const json_t *p, const char *key)
{
	const json_t *v = json_object_get(p, key);

	if (!json_is_integer(v))
		abort();
	return json_integer_value(v);
}

static const char *str(const json_t *p, const char *key)
{
	const char *v = json_string_value(json_object_get(p, key));

	if (!v)
		abort();
	return v;
}

static void check_record(const json_t *p)
{
	struct pool_rec rec = {0};
	struct pool_view view;
	char err[256];
	json_t *again;

	if (!pool_id_valid(str(p, "id"), 24) || !str(p, "name")[0])
		abort();
	if (pool_kind_parse(str(p, "kind"), &rec.pr_kind) < 0 ||
	    pool_source_parse(str(p, "source"), &rec.pr_source) < 0 ||
	    pool_logoff_action_parse(str(p, "logoff_action"), &rec.pr_logoff_action) < 0)
		abort();
	if (num(p, "min") < 0 || num(p, "min") > num(p, "max") || num(p, "spare") < 0 ||
	    num(p, "spare") > num(p, "max") || num(p, "memory_mib") < 1 || num(p, "vcpus") < 1 ||
	    num(p, "vcpus") > 64 || num(p, "utc_offset") < -720 || num(p, "utc_offset") > 840)
		abort();
	if (!json_is_boolean(json_object_get(p, "enabled")))
		abort();
	if (rec.pr_source == POOL_AUTOMATED && !json_is_object(json_object_get(p, "template")))
		abort();
	rec.pr_id = (char *)str(p, "id");
	rec.pr_enabled = json_is_true(json_object_get(p, "enabled"));
	rec.pr_min = (int)num(p, "min");
	rec.pr_max = (int)num(p, "max");
	rec.pr_spare = (int)num(p, "spare");
	rec.pr_memory_mib = (int)num(p, "memory_mib");
	rec.pr_vcpus = (int)num(p, "vcpus");
	rec.pr_disconnect_timeout = (int)num(p, "disconnect_timeout");
	rec.pr_utc_offset = (int)num(p, "utc_offset");
	rec.pr_template = json_object_get(p, "template");
	rec.pr_networks = (char *)str(p, "networks");
	rec.pr_windows = (char *)str(p, "windows");
	rec.pr_hosts = (char *)str(p, "hosts");
	if (pool_view_init(&view, &rec) != 0)
		abort(); /* accepted, yet not usable */
	pool_view_free(&view);
	again = pool_from_request(p, NULL, err, sizeof(err));
	if (!again || !json_equal(again, p))
		abort();
	json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *existing = NULL, *req, *p;
	char err[256];

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		existing = json_loads(existing_text, 0, NULL);
		if (!existing)
			abort();
	}
	req = json_parse_object((const char *)data + 1, size - 1, BODY_MAX, err, sizeof(err));
	if (req) {
		err[0] = '\0';
		p = pool_from_request(req, existing, err, sizeof(err));
		if (p)
			check_record(p);
		else if (!err[0])
			abort(); /* refused without a reason */
		json_decref(p);
		json_decref(req);
	} else if (!err[0]) {
		abort();
	}
	json_decref(existing);
	return 0;
}
