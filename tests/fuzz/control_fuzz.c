/* Fuzz target: lines sent to vdi-hv's control socket, as hv/control_request.c checks
 * them before anything acts on them (JSON object, verb, the verb's fields and types),
 * and the key events of sendkey combinations and typed text. Each input is split into
 * lines as the socket server splits them. Invariants (abort on violation): a request is
 * accepted only with a known verb and a string "cmd"; key events are Linux key codes
 * below KEY_MAX, and every press is released, in reverse order within a combination. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/control_request.h"
#include "lib/json.h"

#define KEY_CODE_MAX 0x2ff
#define ROOM	     4096

static void check_keys(const struct control_key *k, int n)
{
	int depth = 0;
	unsigned stack[64];

	if (n < 0)
		return;
	if (n % 2)
		abort();
	for (int i = 0; i < n; i++) {
		if (k[i].ck_code == 0 || k[i].ck_code > KEY_CODE_MAX)
			abort();
		if (k[i].ck_down) {
			if (depth == 64)
				abort();
			stack[depth++] = k[i].ck_code;
		} else if (depth == 0 || stack[--depth] != k[i].ck_code) {
			abort(); /* a release of a key not pressed last */
		}
	}
	if (depth)
		abort(); /* a key left down */
}

static void one_line(const char *line, size_t len)
{
	static struct control_key keys[ROOM];
	char err[512];
	json_t *req;
	int verb = control_request_parse(line, len, &req, err, sizeof(err));

	if (verb < 0) {
		if (req || !err[0])
			abort();
		return;
	}
	if (verb >= CONTROL_VERBS || !json_is_string(json_object_get(req, "cmd")))
		abort();
	if (verb == CONTROL_SENDKEY)
		check_keys(keys, control_combo_keys(json_get_string(req, "key"), keys,
						    2 * CONTROL_COMBO_MAX, err, sizeof(err)));
	if (verb == CONTROL_TYPE || verb == CONTROL_SERIAL) {
		int n =
		    control_text_keys(json_get_string(req, "text"), keys, ROOM, err, sizeof(err));

		if (n < 0 && n != -EINVAL && n != -ENOSPC)
			abort();
		check_keys(keys, n);
	}
	json_decref(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);

		if (len)
			one_line(p, len);
		p += len + 1;
	}
	return 0;
}
