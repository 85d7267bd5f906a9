/* JSON helpers over jansson: the checks every API edge needs, in one place. */
#include "lib/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *json_parse_object(const char *buf, size_t len, size_t max, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *obj;

	if (len > max) {
		snprintf(err, errlen, "request too large (%zu bytes, limit %zu)", len, max);
		return NULL;
	}
	obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		snprintf(err, errlen, "malformed JSON at offset %d: %s", jerr.position, jerr.text);
		return NULL;
	}
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "expected a JSON object");
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static bool has_type(const json_t *v, enum json_field_type type)
{
	switch (type) {
	case JSON_FIELD_STRING: return json_is_string(v);
	case JSON_FIELD_INT: return json_is_integer(v);
	case JSON_FIELD_BOOL: return json_is_boolean(v);
	case JSON_FIELD_ANY: return true;
	}
	return false;
}

int json_check_fields(const json_t *obj, const struct json_field *fields, char *err, size_t errlen)
{
	static const char *const type_names[] = {"a string", "an integer", "a boolean", "any"};
	const char *key;
	json_t *value;

	json_object_foreach ((json_t *)obj, key, value) {
		const struct json_field *f = fields;

		while (f->jf_name && strcmp(f->jf_name, key))
			f++;
		if (!f->jf_name) {
			snprintf(err, errlen, "unknown field '%.64s'", key);
			return -EINVAL;
		}
		if (!has_type(value, f->jf_type)) {
			snprintf(err, errlen, "field '%s' must be %s", key, type_names[f->jf_type]);
			return -EINVAL;
		}
	}
	for (const struct json_field *f = fields; f->jf_name; f++) {
		if (f->jf_required && !json_object_get(obj, f->jf_name)) {
			snprintf(err, errlen, "missing field '%s'", f->jf_name);
			return -EINVAL;
		}
	}
	return 0;
}

const char *json_get_string(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

long long json_get_int(const json_t *obj, const char *key, long long def)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

bool json_get_bool(const json_t *obj, const char *key, bool def)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_boolean(v) ? json_is_true(v) : def;
}

char *json_dump_line(const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	size_t n;
	char *line;

	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}
