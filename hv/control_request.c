/* Control requests checked (see control_request.h): the verbs' field tables, and the
 * key events of sendkey and type. */
#include "hv/control_request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hv/keys.h"
#include "lib/json.h"

static const struct json_field no_fields[] = {{"cmd", JSON_FIELD_STRING, true}, JSON_FIELDS_END};
static const struct json_field sendkey_fields[] = {
    {"cmd", JSON_FIELD_STRING, true}, {"key", JSON_FIELD_STRING, true}, JSON_FIELDS_END};
static const struct json_field text_fields[] = {
    {"cmd", JSON_FIELD_STRING, true}, {"text", JSON_FIELD_STRING, true}, JSON_FIELDS_END};
static const struct json_field screendump_fields[] = {
    {"cmd", JSON_FIELD_STRING, true}, {"path", JSON_FIELD_STRING, true}, JSON_FIELDS_END};
static const struct json_field mouse_fields[] = {
    {"cmd", JSON_FIELD_STRING, true},	{"dx", JSON_FIELD_INT, false},
    {"dy", JSON_FIELD_INT, false},	{"dz", JSON_FIELD_INT, false},
    {"buttons", JSON_FIELD_INT, false}, JSON_FIELDS_END};
static const struct json_field pointer_fields[] = {
    {"cmd", JSON_FIELD_STRING, true}, {"x", JSON_FIELD_INT, true},
    {"y", JSON_FIELD_INT, true},      {"buttons", JSON_FIELD_INT, false},
    {"wheel", JSON_FIELD_INT, false}, JSON_FIELDS_END};
static const struct json_field set_ticket_fields[] = {{"cmd", JSON_FIELD_STRING, true},
						      {"password", JSON_FIELD_STRING, true},
						      {"expires", JSON_FIELD_INT, true},
						      {"view_only", JSON_FIELD_BOOL, false},
						      JSON_FIELDS_END};
static const struct json_field clear_tickets_fields[] = {
    {"cmd", JSON_FIELD_STRING, true}, {"disconnect", JSON_FIELD_BOOL, false}, JSON_FIELDS_END};

static const struct {
	const char *name;
	const struct json_field *fields;
} verbs[CONTROL_VERBS] = {
    [CONTROL_STATUS] = {"status", no_fields},
    [CONTROL_PAUSE] = {"pause", no_fields},
    [CONTROL_RESUME] = {"resume", no_fields},
    [CONTROL_QUIT] = {"quit", no_fields},
    [CONTROL_SENDKEY] = {"sendkey", sendkey_fields},
    [CONTROL_TYPE] = {"type", text_fields},
    [CONTROL_SCREENDUMP] = {"screendump", screendump_fields},
    [CONTROL_SERIAL] = {"serial", text_fields},
    [CONTROL_MOUSE] = {"mouse", mouse_fields},
    [CONTROL_POINTER] = {"pointer", pointer_fields},
    [CONTROL_SET_TICKET] = {"set-ticket", set_ticket_fields},
    [CONTROL_CLEAR_TICKETS] = {"clear-tickets", clear_tickets_fields},
    [CONTROL_DISPLAY] = {"display", no_fields},
};

int control_request_parse(const char *line, size_t len, json_t **req, char *err, size_t errlen)
{
	const char *name;
	json_t *r;

	*req = NULL;
	r = json_parse_object(line, len, CONTROL_REQUEST_MAX, err, errlen);
	if (!r)
		return -1;
	name = json_get_string(r, "cmd");
	if (!name) {
		snprintf(err, errlen, "missing field 'cmd'");
		json_decref(r);
		return -1;
	}
	for (int v = 0; v < CONTROL_VERBS; v++) {
		if (strcmp(verbs[v].name, name))
			continue;
		if (json_check_fields(r, verbs[v].fields, err, errlen) < 0) {
			json_decref(r);
			return -1;
		}
		*req = r;
		return v;
	}
	snprintf(err, errlen, "unknown command '%.64s'", name);
	json_decref(r);
	return -1;
}

/* The events of one combination of n codes: presses in order, releases in reverse. */
static size_t combo_events(const unsigned *codes, int n, struct control_key *out)
{
	for (int i = 0; i < 2 * n; i++)
		out[i] = i < n ? (struct control_key){codes[i], true}
			       : (struct control_key){codes[2 * n - 1 - i], false};
	return 2 * (size_t)n;
}

int control_combo_keys(const char *spec, struct control_key *out, size_t max, char *err,
		       size_t errlen)
{
	unsigned codes[CONTROL_COMBO_MAX];
	int n = keys_parse_combo(spec, codes, CONTROL_COMBO_MAX);

	if (n == -E2BIG || (n > 0 && 2 * (size_t)n > max)) {
		snprintf(err, errlen, "too many keys in '%.64s' (at most %d)", spec,
			 CONTROL_COMBO_MAX);
		return -E2BIG;
	}
	if (n <= 0) {
		snprintf(err, errlen, "unknown key '%.64s'", spec);
		return -EINVAL;
	}
	return (int)combo_events(codes, n, out);
}

int control_text_keys(const char *text, struct control_key *out, size_t max, char *err,
		      size_t errlen)
{
	unsigned codes[CONTROL_COMBO_MAX];
	size_t count = 0;

	for (size_t i = 0; text[i]; i++) {
		int n = keys_for_char(text[i], codes, CONTROL_COMBO_MAX);

		if (n <= 0) {
			snprintf(err, errlen, "cannot type character %zu (0x%02x) on a US keyboard",
				 i, (unsigned char)text[i]);
			return -EINVAL;
		}
		if (count + 2 * (size_t)n > max) {
			snprintf(err, errlen,
				 "text too long for the keyboard queue (%zu key events "
				 "free)",
				 max);
			return -ENOSPC;
		}
		count += combo_events(codes, n, out + count);
	}
	return (int)count;
}
