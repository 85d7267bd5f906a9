/* JSON lines over a unix stream socket with a deadline: non-blocking socket,
 * poll(). */
#include "hostd/ctlsock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/json.h"

/* Waits for events on the socket until the deadline. 0 or -ETIMEDOUT / -errno.
 */
static int wait_for(struct ctlsock *cs, short events)
{
	for (;;) {
		struct pollfd pfd = {.fd = cs->cs_fd, .events = events};
		long long left = cs->cs_deadline_ms - monotonic_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int open_socket(struct ctlsock *cs, const char *path, int timeout_ms)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int r;

	cs->cs_len = 0;
	cs->cs_deadline_ms = monotonic_ms() + timeout_ms;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	cs->cs_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (cs->cs_fd < 0)
		return -errno;
	if (connect(cs->cs_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		return 0;
	r = -errno;
	if (r == -EINPROGRESS || r == -EAGAIN) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		r = wait_for(cs, POLLOUT);
		if (!r && getsockopt(cs->cs_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0)
			r = -soerr;
		if (!r)
			return 0;
	}
	close(cs->cs_fd);
	cs->cs_fd = -1;
	return r;
}

struct ctlsock *ctlsock_connect(const char *path, int timeout_ms, char *err, size_t errlen)
{
	struct ctlsock *cs = malloc(sizeof(*cs));
	int r = cs ? open_socket(cs, path, timeout_ms) : -ENOMEM;

	if (r < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-r));
		free(cs);
		return NULL;
	}
	return cs;
}

void ctlsock_close(struct ctlsock *cs)
{
	if (!cs)
		return;
	if (cs->cs_fd >= 0)
		close(cs->cs_fd);
	free(cs);
}

int ctlsock_send(struct ctlsock *cs, const json_t *msg)
{
	char *line = json_dump_line(msg);
	size_t len, off = 0;
	int r = 0;

	if (!line)
		return -ENOMEM;
	len = strlen(line);
	while (off < len) {
		ssize_t n = send(cs->cs_fd, line + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if ((r = wait_for(cs, POLLOUT)) < 0)
				break;
			continue;
		}
		r = n < 0 ? -errno : -EPIPE;
		break;
	}
	free(line);
	return r;
}

json_t *ctlsock_recv(struct ctlsock *cs, char *err, size_t errlen)
{
	for (;;) {
		char *nl = memchr(cs->cs_buf, '\n', cs->cs_len);
		ssize_t n;
		int r;

		if (nl) {
			size_t used = (size_t)(nl - cs->cs_buf) + 1;
			json_t *o =
			    json_parse_object(cs->cs_buf, used - 1, CTLSOCK_LINE_MAX, err, errlen);

			memmove(cs->cs_buf, cs->cs_buf + used, cs->cs_len - used);
			cs->cs_len -= used;
			return o;
		}
		if (cs->cs_len == sizeof(cs->cs_buf)) {
			snprintf(err, errlen, "reply line longer than %d bytes", CTLSOCK_LINE_MAX);
			return NULL;
		}
		n = recv(cs->cs_fd, cs->cs_buf + cs->cs_len, sizeof(cs->cs_buf) - cs->cs_len, 0);
		if (n > 0) {
			cs->cs_len += (size_t)n;
			continue;
		}
		if (n == 0) {
			snprintf(err, errlen, "connection closed");
			return NULL;
		}
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "%s", strerror(errno));
			return NULL;
		}
		r = wait_for(cs, POLLIN);
		if (r < 0) {
			snprintf(err, errlen, "%s",
				 r == -ETIMEDOUT ? "no reply in time" : strerror(-r));
			return NULL;
		}
	}
}

json_t *ctlsock_call(const char *path, const json_t *request, int timeout_ms, char *err,
		     size_t errlen)
{
	struct ctlsock *cs = ctlsock_connect(path, timeout_ms, err, errlen);
	json_t *reply = NULL;
	int r;

	if (!cs)
		return NULL;
	r = ctlsock_send(cs, request);
	if (r < 0) {
		snprintf(err, errlen, "cannot send: %s", strerror(-r));
		goto out_close;
	}
	reply = ctlsock_recv(cs, err, errlen);
	if (reply && !json_get_bool(reply, "ok", false)) {
		const char *why = json_get_string(reply, "error");

		snprintf(err, errlen, "%s", why ? why : "request refused");
		json_decref(reply);
		reply = NULL;
	}
out_close:
	ctlsock_close(cs);
	return reply;
}
