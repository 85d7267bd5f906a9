/* The protocol between the kvmbox runner on the host and kvmbox-agent in the box:
 * framed messages (1 byte type, 4 bytes little-endian length, payload) on TCP
 * connections that QEMU forwards from the host's loopback into the box. Every
 * connection opens with HELLO and the box's secret token, then says what it is for:
 * RUN (a program and its stdio), CONNECT (a byte stream to a socket in the box) or
 * STATUS. Not a general RPC layer: only what `kvmbox run` needs. */
#ifndef VDI_KVMBOX_PROTO_H
#define VDI_KVMBOX_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum kb_msg {
	KB_HELLO = 1, /* runner: the box token (hex) */
	KB_OK,	      /* agent: hello accepted, or CONNECT done (raw bytes follow) */
	KB_ERROR,     /* agent: a one-line message; then the agent closes */
	KB_RUN,	      /* runner: struct kb_run, see kb_run_encode() */
	KB_CONNECT,   /* runner: a target from a LISTEN ("unix:PIN:PATH" or "tcp:PORT") */
	KB_STATUS,    /* runner: empty; agent replies KB_STATUS with "key=value" lines */
	KB_STDIN,     /* runner: bytes for the program's stdin */
	KB_STDIN_EOF, /* runner: stdin is at its end */
	KB_SIGNAL,    /* runner: 4 bytes, a signal number to send the program */
	KB_STDOUT,    /* agent: bytes the program wrote on stdout */
	KB_STDERR,    /* agent: bytes the program wrote on stderr */
	KB_LISTEN,    /* agent: the program listens on a target ("unix:PIN:PATH" or "tcp:PORT") */
	KB_UNLISTEN,  /* agent: it stopped listening on that target */
	KB_EXIT,      /* agent: 4 bytes, the program's wait status; the run is over */
	KB_OOM,	      /* agent: the box killed the program for lack of memory; KB_EXIT follows */
	KB_STARTED,   /* agent: 4 bytes, the program's pid in the box */
};

/* Largest payload either side sends or accepts. */
#define KB_MAX_PAYLOAD (1u << 20)
/* The TCP port the agent listens on inside the box. */
#define KB_AGENT_PORT 7000
/* Length of the box token in hex characters. */
#define KB_TOKEN_LEN 64

/* Writes one message, retrying short writes and EINTR. Returns 0 or -errno. */
int kb_send(int fd, enum kb_msg type, const void *payload, size_t len);
/* Reads one message into a malloc'd, NUL-terminated buffer the caller frees.
 * Returns 0, -EPIPE at a clean end of stream before a header, -EPROTO for a bad
 * length, or -errno. */
int kb_recv(int fd, enum kb_msg *type, char **payload, size_t *len);
/* Sends a 4-byte little-endian number. */
int kb_send_u32(int fd, enum kb_msg type, uint32_t v);
/* Reads a 4-byte little-endian number from a payload; 0 if it is too short. */
uint32_t kb_u32(const char *payload, size_t len);

/* What to run: the runner's identity, working directory, argv and environment. */
struct kb_run {
	unsigned kr_uid, kr_gid;
	long long kr_realtime_ns; /* the runner's clock when it sent the request */
	const char *kr_cwd;
	char **kr_argv; /* NULL-terminated */
	char **kr_envp; /* NULL-terminated */
};
/* Encodes a run request as NUL-separated fields ("uid", "gid", "realtime_ns", cwd,
 * argc, argv..., env...). Returns a malloc'd buffer and its length, or NULL. */
char *kb_run_encode(const struct kb_run *r, size_t *len);
/* Decodes a payload in place (it must end in NUL); argv and envp are malloc'd arrays
 * pointing into the payload, freed with kb_run_free(). Returns 0 or -EPROTO. */
int kb_run_decode(char *payload, size_t len, struct kb_run *r);
void kb_run_free(struct kb_run *r);

/* Copies bytes both ways between two sockets until both directions have ended,
 * passing on half-closes. Returns when done; closes neither. */
void kb_splice(int a, int b);

#endif
