/* Framing and run-request encoding shared by the kvmbox runner and kvmbox-agent
 * (kvmbox/proto.h). Plain blocking I/O on sockets both sides own. */
#include "kvmbox/proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n, len -= (size_t)n;
	}
	return 0;
}

/* Returns 0, -EPIPE when the stream ends before any byte, -EPROTO when it ends
 * within the buffer, or -errno. */
static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got == 0 ? -EPIPE : -EPROTO;
		got += (size_t)n;
	}
	return 0;
}

int kb_send(int fd, enum kb_msg type, const void *payload, size_t len)
{
	unsigned char hdr[5] = {(unsigned char)type, (unsigned char)len, (unsigned char)(len >> 8),
				(unsigned char)(len >> 16), (unsigned char)(len >> 24)};
	int rc;

	if (len > KB_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (len > 0 && len <= 64 * 1024) {
		char buf[5 + 64 * 1024];

		memcpy(buf, hdr, 5);
		memcpy(buf + 5, payload, len);
		return write_all(fd, buf, 5 + len);
	}
	rc = write_all(fd, hdr, sizeof(hdr));
	return rc < 0 || len == 0 ? rc : write_all(fd, payload, len);
}

int kb_send_u32(int fd, enum kb_msg type, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};

	return kb_send(fd, type, b, sizeof(b));
}

uint32_t kb_u32(const char *payload, size_t len)
{
	const unsigned char *b = (const unsigned char *)payload;

	if (len < 4)
		return 0;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int kb_recv(int fd, enum kb_msg *type, char **payload, size_t *len)
{
	unsigned char hdr[5];
	uint32_t n;
	char *buf;
	int rc;

	rc = read_all(fd, hdr, sizeof(hdr));
	if (rc < 0)
		return rc;
	n = (uint32_t)hdr[1] | (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3] << 16 |
	    (uint32_t)hdr[4] << 24;
	if (n > KB_MAX_PAYLOAD)
		return -EPROTO;
	buf = malloc((size_t)n + 1);
	if (!buf)
		return -ENOMEM;
	rc = read_all(fd, buf, n);
	if (rc < 0) {
		free(buf);
		return rc == -EPIPE ? -EPROTO : rc;
	}
	buf[n] = '\0';
	*type = (enum kb_msg)hdr[0];
	*payload = buf;
	*len = n;
	return 0;
}

static size_t count(char **v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

char *kb_run_encode(const struct kb_run *r, size_t *len)
{
	size_t argc = count(r->kr_argv), envc = count(r->kr_envp), total = 0, i;
	char *buf, *p;

	total = 4 * 24 + strlen(r->kr_cwd) + 1; /* four numbers and the directory */
	for (i = 0; i < argc; i++)
		total += strlen(r->kr_argv[i]) + 1;
	for (i = 0; i < envc; i++)
		total += strlen(r->kr_envp[i]) + 1;
	buf = malloc(total);
	if (!buf)
		return NULL;
	p = buf;
	p += sprintf(p, "%u", r->kr_uid) + 1;
	p += sprintf(p, "%u", r->kr_gid) + 1;
	p += sprintf(p, "%lld", r->kr_realtime_ns) + 1;
	p = stpcpy(p, r->kr_cwd) + 1;
	p += sprintf(p, "%zu", argc) + 1;
	for (i = 0; i < argc; i++)
		p = stpcpy(p, r->kr_argv[i]) + 1;
	for (i = 0; i < envc; i++)
		p = stpcpy(p, r->kr_envp[i]) + 1;
	*len = (size_t)(p - buf);
	return buf;
}

/* Returns the next NUL-terminated field at *p before end, advancing *p, or NULL. */
static char *field(char **p, char *end)
{
	char *s = *p, *nul;

	if (s >= end)
		return NULL;
	nul = memchr(s, '\0', (size_t)(end - s));
	if (!nul)
		return NULL;
	*p = nul + 1;
	return s;
}

static int parse_unsigned(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -EPROTO;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *end || *out > max ? -EPROTO : 0;
}

int kb_run_decode(char *payload, size_t len, struct kb_run *r)
{
	char *p = payload, *end = payload + len, *s;
	unsigned long uid, gid, now, argc, envc = 0, i;
	char *q;

	memset(r, 0, sizeof(*r));
	if (parse_unsigned(field(&p, end), 0xfffffffe, &uid) < 0 ||
	    parse_unsigned(field(&p, end), 0xfffffffe, &gid) < 0 ||
	    parse_unsigned(field(&p, end), (unsigned long)-1 >> 1, &now) < 0 ||
	    !(s = field(&p, end)) || parse_unsigned(field(&p, end), 4096, &argc) < 0 || argc == 0)
		return -EPROTO;
	r->kr_uid = (unsigned)uid, r->kr_gid = (unsigned)gid, r->kr_cwd = s;
	r->kr_realtime_ns = (long long)now;
	for (q = p; field(&q, end);)
		envc++;
	if (envc < argc)
		return -EPROTO;
	envc -= argc;
	r->kr_argv = calloc(argc + 1, sizeof(char *));
	r->kr_envp = calloc(envc + 1, sizeof(char *));
	if (!r->kr_argv || !r->kr_envp) {
		kb_run_free(r);
		return -ENOMEM;
	}
	for (i = 0; i < argc; i++)
		r->kr_argv[i] = field(&p, end);
	for (i = 0; i < envc; i++)
		r->kr_envp[i] = field(&p, end);
	return 0;
}

void kb_run_free(struct kb_run *r)
{
	free(r->kr_argv);
	free(r->kr_envp);
	r->kr_argv = r->kr_envp = NULL;
}

void kb_splice(int a, int b)
{
	struct pollfd pfd[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
	char buf[64 * 1024];
	int open_dirs = 2;

	while (open_dirs > 0) {
		int i;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (i = 0; i < 2; i++) {
			int to = i == 0 ? b : a;
			ssize_t n;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || write_all(to, buf, (size_t)n) < 0) {
				/* This direction is over: pass the end on, stop reading it. */
				shutdown(to, SHUT_WR);
				pfd[i].fd = -1;
				open_dirs--;
				if (n < 0 && errno != ECONNRESET)
					return;
			}
		}
	}
}
