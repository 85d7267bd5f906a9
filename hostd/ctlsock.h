/* Client side of the line-oriented JSON sockets VMMs serve on unix sockets: QMP
 * and the vdi-hv control socket. One JSON object per line each way, a deadline
 * on every call, bounded line length. Not a server, and knows no verbs. */
#ifndef VDI_HOSTD_CTLSOCK_H
#define VDI_HOSTD_CTLSOCK_H

#include <jansson.h>
#include <stddef.h>

#define CTLSOCK_LINE_MAX 65536

struct ctlsock {
	int cs_fd;
	long long cs_deadline_ms; /* CLOCK_MONOTONIC */
	size_t cs_len;
	char cs_buf[CTLSOCK_LINE_MAX];
};

/* Connects to the unix socket at path; every later call must finish within
 * timeout_ms from now. Returns the connection (ctlsock_close()) or NULL with
 * "cannot connect to PATH: reason" in err. */
struct ctlsock *ctlsock_connect(const char *path, int timeout_ms, char *err, size_t errlen);
/* Closes and frees. NULL is a no-op. */
void ctlsock_close(struct ctlsock *cs);
/* Sends msg as one line. 0 or -errno (-ETIMEDOUT past the deadline). */
int ctlsock_send(struct ctlsock *cs, const json_t *msg);
/* Receives the next line as a JSON object (new reference), or NULL with the
 * reason in err. */
json_t *ctlsock_recv(struct ctlsock *cs, char *err, size_t errlen);

/* One request, one reply on a fresh connection (the vdi-hv control socket):
 * returns the reply when it has "ok": true, else NULL with its "error" (or the
 * failure) in err. */
json_t *ctlsock_call(const char *path, const json_t *request, int timeout_ms, char *err,
		     size_t errlen);

#endif
