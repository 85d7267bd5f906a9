/* JSON helpers over jansson shared by the daemons' APIs and the vdi-hv control socket:
 * bounded parsing of outside input, field tables that reject unknown or mistyped
 * fields, and one-line serialisation. Not an HTTP or socket layer. */
#ifndef VDI_JSON_H
#define VDI_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum json_field_type { JSON_FIELD_STRING, JSON_FIELD_INT, JSON_FIELD_BOOL, JSON_FIELD_ANY };

struct json_field {
	const char *jf_name;
	enum json_field_type jf_type;
	bool jf_required;
};

#define JSON_FIELDS_END                                                                            \
	{                                                                                          \
		.jf_name = NULL                                                                    \
	}

/* Parses len bytes holding exactly one JSON object, refusing input longer than max.
 * Returns a new reference (json_decref() it) or NULL with the reason in err. */
json_t *json_parse_object(const char *buf, size_t len, size_t max, char *err, size_t errlen);

/* Checks obj against fields: every member known and of the right type, every
 * required member present. Returns 0 or -EINVAL with the reason in err. */
int json_check_fields(const json_t *obj, const struct json_field *fields, char *err, size_t errlen);

/* Member key as a string, or NULL when absent or of another type. */
const char *json_get_string(const json_t *obj, const char *key);
/* Member key as an integer, or def when absent or of another type. */
long long json_get_int(const json_t *obj, const char *key, long long def);
bool json_get_bool(const json_t *obj, const char *key, bool def);

/* Compact one-line serialisation ending in '\n'. Returns a new string (free()) or NULL. */
char *json_dump_line(const json_t *obj);

#endif
