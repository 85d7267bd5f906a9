/* The control socket's requests, checked before anything acts on them: a line holding a
 * JSON object whose "cmd" names a verb and which has only that verb's fields, each of
 * its type; and the key events of the keyboard verbs (sendkey, type). Pure: no machine
 * and no socket, so it can be tested and fuzzed alone. */
#ifndef VDI_HV_CONTROL_REQUEST_H
#define VDI_HV_CONTROL_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CONTROL_REQUEST_MAX 65536 /* bytes in a request line */
#define CONTROL_COMBO_MAX   8	  /* keys in a sendkey combination */

enum control_verb {
	CONTROL_STATUS,
	CONTROL_PAUSE,
	CONTROL_RESUME,
	CONTROL_QUIT,
	CONTROL_SENDKEY,
	CONTROL_TYPE,
	CONTROL_SCREENDUMP,
	CONTROL_SERIAL,
	CONTROL_MOUSE,
	CONTROL_POINTER,
	CONTROL_SET_TICKET,
	CONTROL_CLEAR_TICKETS,
	CONTROL_DISPLAY,
	CONTROL_VERBS
};

/* A key pressed or released (a Linux KEY_* code). */
struct control_key {
	unsigned ck_code;
	bool ck_down;
};

/* Parses one request line of len bytes (no newline). Returns its verb with the request
 * in *req (json_decref() it), or -1 with the reason in err: not a JSON object, longer
 * than CONTROL_REQUEST_MAX, no or an unknown "cmd", a field the verb does not take, a
 * field of the wrong type, a required one missing. */
int control_request_parse(const char *line, size_t len, json_t **req, char *err, size_t errlen);

/* sendkey's combination ("ctrl-alt-delete") as key events into out: the presses in
 * order, then the releases in reverse. Returns the count of events, or -EINVAL (an
 * unknown key name) / -E2BIG (more than CONTROL_COMBO_MAX keys, or more than max
 * events) with err set. */
int control_combo_keys(const char *spec, struct control_key *out, size_t max, char *err,
		       size_t errlen);

/* type's text as key events into out, character by character as on a US keyboard
 * (modifiers pressed first, released last). Returns the count, or -EINVAL (a character
 * a US keyboard cannot type; err names its index and byte) / -ENOSPC (more than max
 * events) with err set. */
int control_text_keys(const char *text, struct control_key *out, size_t max, char *err,
		      size_t errlen);

#endif
