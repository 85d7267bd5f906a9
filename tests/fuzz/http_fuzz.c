/* Fuzz target: what a client sends once TLS is done, as the TLS front hands it to the
 * HTTP layer (web/server.c's hand_over(), a socketpair's plain end): libmicrohttpd's
 * request line and header parsing, then ours: route matching with path parameters,
 * cookies, query strings, Origin and CSRF checks, the Authorization header, JSON bodies
 * against a field table, and static files with path checks. The server is started
 * once; each input is one connection whose client side is written, half-closed and read
 * to the end. Invariants (abort on violation): an answer is an HTTP/1.x status line, and
 * every answer of ours carries the security headers. */
#include "web/server.c" /* hand_over(), as the TLS front calls it */

#include <poll.h>
#include <signal.h>

#include "broker/cert.h"

static struct web_server *server;

static void echo(void *ctx, struct web_request *req)
{
	static const struct json_field fields[] = {{"username", JSON_FIELD_STRING, true},
						   {"count", JSON_FIELD_INT, false},
						   {"bearer", JSON_FIELD_BOOL, false},
						   {"groups", JSON_FIELD_ANY, false},
						   JSON_FIELDS_END};
	char cookie[256], ticket[256];
	json_t *body, *out;

	(void)ctx;
	out = json_pack("{s:s, s:s?, s:s?, s:s?, s:b, s:b, s:s?, s:s?}", "path", web_path(req),
			"param", web_param(req, 0), "cookie",
			web_cookie(req, "__Host-vdi_session", cookie, sizeof(cookie)), "ticket",
			web_query(req, "ticket", ticket, sizeof(ticket)), "origin",
			web_origin_ok(req, NULL), "csrf", web_csrf_ok(req, "csrf-token", NULL),
			"authorization", web_header(req, "Authorization"), "client",
			web_client_addr(req));
	if (!strcmp(web_method(req), "POST")) {
		body = web_json_body(req, fields, false);
		if (!body) {
			json_decref(out);
			return; /* answered 4xx */
		}
		json_object_set_new(out, "body", body);
	}
	web_reply_json(req, 200, out);
}

static const struct web_route routes[] = {
    {"GET", "/api/v1/session", echo},
    {"POST", "/api/v1/login", echo},
    {"GET", "/api/v1/pools/{}", echo},
    {"POST", "/api/v1/desktops/{}/connect", echo},
    {"DELETE", "/api/v1/admin/users/{}/web-sessions", echo},
    {NULL, NULL, NULL},
};

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/http-fuzz-XXXXXX", path[64], err[256], listen[32], *cert, *key;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	struct web_config cfg = {.wc_listen = listen,
				 .wc_max_body = 16384,
				 .wc_max_connections = 64,
				 .wc_timeout = 5,
				 .wc_name = "fuzz"};
	FILE *f;

	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERR);
	signal(SIGPIPE, SIG_IGN); /* a write after the server closed */
	/* the TLS front needs a port of its own; nothing connects to it */
	if (probe < 0 || bind(probe, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(probe, (struct sockaddr *)&a, &alen) < 0)
		abort();
	close(probe);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", ntohs(a.sin_port));
	if (!mkdtemp(dir) || cert_self_signed(dir, &cert, &key, err, sizeof(err)) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/index.html", dir);
	f = fopen(path, "w");
	if (!f || fputs("<!doctype html><title>portal</title>\n", f) < 0 || fclose(f))
		abort();
	cfg.wc_cert_pem = cert;
	cfg.wc_key_pem = key;
	cfg.wc_static_dir = dir;
	server = web_start(&cfg, routes, NULL, err, sizeof(err)); /* copies what it keeps */
	free(cert);
	free(key);
	if (!server) {
		fprintf(stderr, "http_fuzz: %s\n", err);
		abort();
	}
	return 0;
}

/* Reads the answer to its end (the server closes); at most cap bytes are kept. */
static size_t read_answer(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char sink[4096];
		ssize_t r;

		/* libmicrohttpd closes a connection idle for wc_timeout (5 s); a minute
		 * leaves room for a fuzzer at the lowest priority on a busy machine */
		if (poll(&p, 1, 60000) <= 0)
			abort(); /* the server neither answered nor closed */
		r = read(fd, n < cap ? buf + n : sink, n < cap ? cap - n : sizeof(sink));
		if (r <= 0)
			return n;
		if (n < cap)
			n += (size_t)r;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = {.sin_family = AF_INET,
				   .sin_port = htons(40000),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int sv[2], big = 1 << 20;
	char answer[8192];
	size_t n, off = 0;

	if (size > 65536)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (hand_over(server, sv[1], (const struct sockaddr *)&peer, sizeof(peer)) < 0)
		abort();
	while (off < size) {
		ssize_t w = write(sv[0], data + off, size - off);

		if (w <= 0)
			break; /* the server closed early (an error answer): read it */
		off += (size_t)w;
	}
	shutdown(sv[0], SHUT_WR);
	n = read_answer(sv[0], answer, sizeof(answer) - 1);
	close(sv[0]);
	answer[n] = '\0';
	if (n == 0)
		return 0; /* closed without an answer: malformed beyond a reply */
	if (n < 12 || strncmp(answer, "HTTP/1.", 7))
		abort();
	/* ours carry the security headers; libmicrohttpd's own refusals (400 for a broken
	 * request line, 413, 431) come before any handler and do not */
	if (strstr(answer, "Content-Type: application/json") &&
	    !strstr(answer, "X-Content-Type-Options: nosniff"))
		abort();
	return 0;
}
