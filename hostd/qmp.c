/* QMP: the greeting and capability negotiation, then one command. */
#include "hostd/qmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/ctlsock.h"

/* Reads until the reply to the last command: {"return": ...} or {"error": ...}.
 */
static json_t *read_reply(struct ctlsock *cs, char *err, size_t errlen)
{
	for (;;) {
		json_t *msg = ctlsock_recv(cs, err, errlen), *ret, *error;

		if (!msg)
			return NULL;
		ret = json_object_get(msg, "return");
		error = json_object_get(msg, "error");
		if (ret) {
			json_incref(ret);
			json_decref(msg);
			return ret;
		}
		if (error) {
			const char *desc = json_string_value(json_object_get(error, "desc"));

			snprintf(err, errlen, "%s", desc ? desc : "QMP error");
			json_decref(msg);
			return NULL;
		}
		json_decref(msg); /* an event */
	}
}

json_t *qmp_execute(const char *path, const char *cmd, json_t *args, int timeout_ms, char *err,
		    size_t errlen)
{
	struct ctlsock *cs = ctlsock_connect(path, timeout_ms, err, errlen);
	json_t *greeting, *req, *ret = NULL;
	int r;

	if (!cs)
		return NULL;
	greeting = ctlsock_recv(cs, err, errlen);
	if (!greeting)
		goto out_close;
	if (!json_object_get(greeting, "QMP")) {
		snprintf(err, errlen, "not a QMP socket");
		json_decref(greeting);
		goto out_close;
	}
	json_decref(greeting);
	req = json_pack("{s:s}", "execute", "qmp_capabilities");
	r = req ? ctlsock_send(cs, req) : -1;
	json_decref(req);
	if (r < 0 || !(ret = read_reply(cs, err, errlen)))
		goto out_close;
	json_decref(ret);
	req = json_pack("{s:s}", "execute", cmd);
	if (req && args)
		json_object_set(req, "arguments", args);
	r = req ? ctlsock_send(cs, req) : -1;
	json_decref(req);
	ret = r < 0 ? NULL : read_reply(cs, err, errlen);
	if (r < 0)
		snprintf(err, errlen, "cannot send the QMP command");
out_close:
	ctlsock_close(cs);
	return ret;
}
