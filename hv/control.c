/* Control socket server. Each client sends lines; each line is one request checked by
 * control_request.c against its verb's field table (unknown fields, wrong types and
 * over-long lines are refused with an error reply, never a crash). Keystrokes from sendkey/type are
 * queued and fed to the i8042 from control_tick(), a few per tick, so a long text does not overrun
 * the keyboard's queue. */
#include "hv/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "display/display.h"
#include "display/vnc_input.h"
#include "display/vnc_ticket.h"
#include "hv/dev/fb.h"
#include "hv/dev/i8042.h"
#include "hv/dev/serial.h"
#include "hv/control_request.h"
#include "hv/machine.h"
#include "hv/mainloop.h"
#include "hv/sandbox.h"
#include "hv/vm.h"
#include "lib/json.h"
#include "lib/log.h"

#define MAX_CLIENTS   16
#define KEYQ_SIZE     8192
#define KEYS_PER_TICK 2
#define POINTER_RANGE (1 << 20)

struct client {
	int cl_fd;
	size_t cl_len;
	bool cl_discarding; /* skipping the rest of an over-long line */
	char cl_buf[CONTROL_REQUEST_MAX];
};

struct control {
	struct machine *ctl_machine;
	int ctl_listen_fd;
	char *ctl_path;
	struct client *ctl_clients[MAX_CLIENTS];
	struct control_key ctl_keyq[KEYQ_SIZE];
	size_t ctl_keyq_head, ctl_keyq_count;
	/* The pointer verb's own idea of where the pointer is (the VNC server has another). */
	struct vnc_input ctl_pointer;
	struct vnc_input_viewer ctl_pointer_viewer;
};

/* What a verb does, with its request checked (control_request_parse()). */
typedef json_t *verb_run(struct control *ctl, const json_t *req, char *err, size_t errlen);

static json_t *ok_reply(void)
{
	return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_status(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	struct vm_stats st;

	(void)req, (void)err, (void)errlen;
	vm_get_stats(ctl->ctl_machine->m_vm, &st);
	return json_pack("{s:b, s:s, s:f, s:i, s:{s:I, s:I, s:I}}", "ok", 1, "state", st.vs_state,
			 "uptime", st.vs_uptime, "vcpus", st.vs_vcpus, "exits", "io",
			 (json_int_t)st.vs_exits_io, "mmio", (json_int_t)st.vs_exits_mmio, "other",
			 (json_int_t)st.vs_exits_other);
}

static json_t *cmd_pause(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	(void)req;
	if (vm_pause(ctl->ctl_machine->m_vm) < 0) {
		snprintf(err, errlen, "the VM is stopping");
		return NULL;
	}
	return ok_reply();
}

static json_t *cmd_resume(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	vm_resume(ctl->ctl_machine->m_vm);
	return ok_reply();
}

static json_t *cmd_quit(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	vm_request_stop(ctl->ctl_machine->m_vm, VM_STOP_QUIT, "quit from the control socket");
	return ok_reply();
}

/* Queues key events behind those waiting; all or none. */
static int queue_keys(struct control *ctl, const struct control_key *keys, size_t n)
{
	if (ctl->ctl_keyq_count + n > KEYQ_SIZE)
		return -ENOSPC;
	for (size_t i = 0; i < n; i++)
		ctl->ctl_keyq[(ctl->ctl_keyq_head + ctl->ctl_keyq_count++) % KEYQ_SIZE] = keys[i];
	return 0;
}

static json_t *cmd_sendkey(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	struct control_key keys[2 * CONTROL_COMBO_MAX];
	int n = control_combo_keys(json_get_string(req, "key"), keys, 2 * CONTROL_COMBO_MAX, err,
				   errlen);

	if (n < 0)
		return NULL;
	if (queue_keys(ctl, keys, (size_t)n) < 0) {
		snprintf(err, errlen, "keyboard queue full, try again later");
		return NULL;
	}
	return ok_reply();
}

static json_t *cmd_type(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	const char *text = json_get_string(req, "text");
	size_t room = KEYQ_SIZE - ctl->ctl_keyq_count;
	struct control_key *keys = malloc((room ? room : 1) * sizeof(*keys));
	int n;

	if (!keys) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = control_text_keys(text, keys, room, err, errlen);
	if (n >= 0)
		queue_keys(ctl, keys, (size_t)n);
	free(keys);
	return n < 0 ? NULL : json_pack("{s:b, s:i}", "ok", 1, "queued", (int)strlen(text));
}

static json_t *cmd_screendump(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	const char *path = json_get_string(req, "path");
	int r;

	if (!ctl->ctl_machine->m_fb) {
		snprintf(err, errlen, "this VM has no framebuffer");
		return NULL;
	}
	if (path[0] != '/') {
		snprintf(err, errlen, "path must be absolute");
		return NULL;
	}
	if (sandbox_active()) {
		snprintf(err, errlen,
			 "screendump creates a file, which the sandbox forbids once the guest "
			 "runs (start vdi-hv with --no-sandbox to take screendumps)");
		return NULL;
	}
	r = fb_screendump(ctl->ctl_machine->m_fb, path);
	if (r < 0) {
		snprintf(err, errlen, "cannot write %.200s: %s", path, strerror(-r));
		return NULL;
	}
	return ok_reply();
}

static json_t *cmd_serial(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	const char *text = json_get_string(req, "text");
	size_t len = strlen(text);
	size_t n = serial_feed(ctl->ctl_machine->m_serial, text, len);

	if (n < len) {
		snprintf(err, errlen, "serial input buffer full: %zu of %zu bytes accepted", n,
			 len);
		return NULL;
	}
	return ok_reply();
}

static json_t *cmd_mouse(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	long long dx = json_get_int(req, "dx", 0), dy = json_get_int(req, "dy", 0);
	long long dz = json_get_int(req, "dz", 0), buttons = json_get_int(req, "buttons", 0);

	if (dx < -4096 || dx > 4096 || dy < -4096 || dy > 4096 || dz < -16 || dz > 16 ||
	    buttons < 0 || buttons > 7) {
		snprintf(err, errlen, "dx, dy must be within +-4096, dz within +-16, buttons 0..7");
		return NULL;
	}
	i8042_mouse_event(ctl->ctl_machine->m_i8042, (int)dx, (int)dy, (int)dz, (unsigned)buttons);
	return ok_reply();
}

/* An absolute pointer event as a VNC viewer's would be: on the tablet when its driver is
 * up, else as PS/2 motion from the position this verb last set (re-homed first). */
static json_t *cmd_pointer(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	struct machine *m = ctl->ctl_machine;
	long long x = json_get_int(req, "x", 0), y = json_get_int(req, "y", 0);
	long long buttons = json_get_int(req, "buttons", 0), wheel = json_get_int(req, "wheel", 0);
	bool tablet;

	if (x < -POINTER_RANGE || x > POINTER_RANGE || y < -POINTER_RANGE || y > POINTER_RANGE ||
	    buttons < 0 || buttons > 7 || wheel < -1 || wheel > 1) {
		snprintf(err, errlen,
			 "x, y must be within +-%d (clamped to the screen), buttons 0..7, "
			 "wheel -1..1",
			 POINTER_RANGE);
		return NULL;
	}
	if (!m->m_fb) {
		snprintf(err, errlen, "this VM has no framebuffer to point at");
		return NULL;
	}
	if (wheel)
		buttons |= wheel > 0 ? VNC_INPUT_BUTTON_WHEEL_UP : VNC_INPUT_BUTTON_WHEEL_DOWN;
	tablet = m->m_input.is_tablet_ready(m->m_input.is_arg);
	vnc_input_pointer(&ctl->ctl_pointer, &ctl->ctl_pointer_viewer, (int)x, (int)y,
			  (unsigned)buttons);
	return json_pack("{s:b, s:s}", "ok", 1, "device", tablet ? "tablet" : "ps2");
}

/* The password is a secret: it is never echoed in a reply or a log line. */
static json_t *cmd_set_ticket(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	struct display *d = ctl->ctl_machine->m_display;
	bool view_only = json_get_bool(req, "view_only", false);
	long long expires = json_get_int(req, "expires", 0);
	int r;

	if (!d) {
		snprintf(err, errlen, "this VM has no VNC server (--vnc)");
		return NULL;
	}
	r = display_set_ticket(d, json_get_string(req, "password"), (int64_t)expires, view_only);
	switch (r) {
	case 0: break;
	case -EINVAL:
		snprintf(err, errlen, "password must be %d to %d bytes (VNC uses the first %d)",
			 VNC_TICKET_LEN, VNC_TICKET_PASSWORD_MAX, VNC_TICKET_LEN);
		return NULL;
	case -ETIMEDOUT: snprintf(err, errlen, "expires is not in the future"); return NULL;
	case -EEXIST:
		snprintf(err, errlen,
			 "the first %d bytes equal those of a %s ticket: choose another password",
			 VNC_TICKET_LEN, view_only ? "full-access" : "view-only");
		return NULL;
	case -ENOSPC:
		snprintf(err, errlen, "already %d view-only tickets", VNC_TICKET_VIEW_ONLY_MAX);
		return NULL;
	default: snprintf(err, errlen, "cannot set the ticket: %s", strerror(-r)); return NULL;
	}
	log_info("control: %s VNC ticket set, expires at %lld", view_only ? "view-only" : "full",
		 expires);
	return ok_reply();
}

static json_t *cmd_clear_tickets(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	struct display *d = ctl->ctl_machine->m_display;
	bool disconnect = json_get_bool(req, "disconnect", false);

	if (!d) {
		snprintf(err, errlen, "this VM has no VNC server (--vnc)");
		return NULL;
	}
	display_clear_tickets(d, disconnect);
	log_info("control: VNC tickets cleared%s", disconnect ? ", viewers disconnected" : "");
	return ok_reply();
}

static json_t *cmd_display(struct control *ctl, const json_t *req, char *err, size_t errlen)
{
	struct display *d = ctl->ctl_machine->m_display;
	struct display_stats st;

	(void)req;
	if (!d) {
		snprintf(err, errlen, "this VM has no VNC server (--vnc)");
		return NULL;
	}
	display_get_stats(d, &st);
	return json_pack("{s:b, s:i, s:I, s:I, s:I, s:i, s:i}", "ok", 1, "viewers",
			 (int)st.ds_viewers, "bytes_sent", (json_int_t)st.ds_bytes_sent, "updates",
			 (json_int_t)st.ds_updates, "auth_failures",
			 (json_int_t)st.ds_auth_failures, "refresh_ms", (int)st.ds_refresh_ms,
			 "port", st.ds_port);
}

static verb_run *const verb_runs[CONTROL_VERBS] = {
    [CONTROL_STATUS] = cmd_status,	   [CONTROL_PAUSE] = cmd_pause,
    [CONTROL_RESUME] = cmd_resume,	   [CONTROL_QUIT] = cmd_quit,
    [CONTROL_SENDKEY] = cmd_sendkey,	   [CONTROL_TYPE] = cmd_type,
    [CONTROL_SCREENDUMP] = cmd_screendump, [CONTROL_SERIAL] = cmd_serial,
    [CONTROL_MOUSE] = cmd_mouse,	   [CONTROL_POINTER] = cmd_pointer,
    [CONTROL_SET_TICKET] = cmd_set_ticket, [CONTROL_CLEAR_TICKETS] = cmd_clear_tickets,
    [CONTROL_DISPLAY] = cmd_display,
};

static void send_line(struct client *cl, json_t *reply)
{
	char *line = json_dump_line(reply);
	size_t len, off = 0;

	json_decref(reply);
	if (!line)
		return;
	len = strlen(line);
	while (off < len) {
		ssize_t n = send(cl->cl_fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a client that does not read its replies loses them */
		off += (size_t)n;
	}
	free(line);
}

static void send_error(struct client *cl, const char *msg)
{
	send_line(cl, json_pack("{s:s}", "error", msg));
}

static void handle_request(struct control *ctl, struct client *cl, const char *line, size_t len)
{
	char err[512] = "";
	json_t *req, *reply;
	int verb = control_request_parse(line, len, &req, err, sizeof(err));

	if (verb < 0) {
		send_error(cl, err);
		return;
	}
	reply = verb_runs[verb](ctl, req, err, sizeof(err));
	if (reply)
		send_line(cl, reply);
	else
		send_error(cl, err[0] ? err : "command failed");
	json_decref(req);
}

static void drop_client(struct control *ctl, int idx)
{
	struct client *cl = ctl->ctl_clients[idx];

	mainloop_remove(ctl->ctl_machine->m_loop, cl->cl_fd);
	close(cl->cl_fd);
	free(cl);
	ctl->ctl_clients[idx] = NULL;
}

static void client_readable(void *arg, int fd, short revents)
{
	struct control *ctl = arg;
	struct client *cl = NULL;
	int idx;
	ssize_t n;

	(void)revents;
	for (idx = 0; idx < MAX_CLIENTS; idx++)
		if (ctl->ctl_clients[idx] && ctl->ctl_clients[idx]->cl_fd == fd) {
			cl = ctl->ctl_clients[idx];
			break;
		}
	if (!cl)
		return;
	n = read(fd, cl->cl_buf + cl->cl_len, sizeof(cl->cl_buf) - cl->cl_len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		drop_client(ctl, idx);
		return;
	}
	cl->cl_len += (size_t)n;
	for (;;) {
		char *nl = memchr(cl->cl_buf, '\n', cl->cl_len);
		size_t used;

		if (!nl) {
			if (cl->cl_len == sizeof(cl->cl_buf)) {
				if (!cl->cl_discarding)
					send_error(cl, "request line too long (limit 65536 bytes)");
				cl->cl_discarding = true;
				cl->cl_len = 0;
			}
			break;
		}
		used = (size_t)(nl - cl->cl_buf) + 1;
		if (cl->cl_discarding)
			cl->cl_discarding = false;
		else if (used > 1)
			handle_request(ctl, cl, cl->cl_buf, used - 1);
		memmove(cl->cl_buf, cl->cl_buf + used, cl->cl_len - used);
		cl->cl_len -= used;
	}
}

static void accept_client(void *arg, int fd, short revents)
{
	struct control *ctl = arg;
	struct timeval send_timeout = {.tv_sec = 1};
	struct client *cl;
	int cfd, idx;

	(void)revents;
	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	for (idx = 0; idx < MAX_CLIENTS && ctl->ctl_clients[idx]; idx++)
		;
	cl = idx < MAX_CLIENTS ? calloc(1, sizeof(*cl)) : NULL;
	if (!cl) {
		static const char busy[] = "{\"error\":\"too many control clients\"}\n";

		if (send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("control: cannot refuse a client politely");
		close(cfd);
		return;
	}
	setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
	cl->cl_fd = cfd;
	if (mainloop_add(ctl->ctl_machine->m_loop, cfd, POLLIN, client_readable, ctl) < 0) {
		close(cfd);
		free(cl);
		return;
	}
	ctl->ctl_clients[idx] = cl;
}

bool control_tick(struct control *ctl)
{
	struct i8042 *kbc = ctl->ctl_machine->m_i8042;

	for (int i = 0; i < KEYS_PER_TICK && ctl->ctl_keyq_count; i++) {
		const struct control_key *k = &ctl->ctl_keyq[ctl->ctl_keyq_head];

		i8042_key_event(kbc, k->ck_code, k->ck_down);
		ctl->ctl_keyq_head = (ctl->ctl_keyq_head + 1) % KEYQ_SIZE;
		ctl->ctl_keyq_count--;
	}
	return ctl->ctl_keyq_count > 0;
}

struct control *control_create(struct machine *m, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct control *ctl;
	mode_t old_umask;
	int r;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_warnx("control: socket path too long: %s", path);
		return NULL;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->ctl_machine = m;
	if (m->m_fb)
		vnc_input_init(&ctl->ctl_pointer, &m->m_input, fb_width(m->m_fb),
			       fb_height(m->m_fb));
	ctl->ctl_path = strdup(path);
	ctl->ctl_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (!ctl->ctl_path || ctl->ctl_listen_fd < 0)
		goto out_free;
	strcpy(addr.sun_path, path);
	unlink(path);
	old_umask = umask(0177);
	r = bind(ctl->ctl_listen_fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (r < 0 || listen(ctl->ctl_listen_fd, 8) < 0) {
		log_warn("control: cannot listen on %s", path);
		goto out_free;
	}
	if (mainloop_add(m->m_loop, ctl->ctl_listen_fd, POLLIN, accept_client, ctl) < 0)
		goto out_free;
	return ctl;

out_free:
	control_free(ctl);
	return NULL;
}

void control_free(struct control *ctl)
{
	if (!ctl)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (ctl->ctl_clients[i])
			drop_client(ctl, i);
	if (ctl->ctl_listen_fd >= 0) {
		mainloop_remove(ctl->ctl_machine->m_loop, ctl->ctl_listen_fd);
		close(ctl->ctl_listen_fd);
		if (ctl->ctl_path)
			unlink(ctl->ctl_path);
	}
	free(ctl->ctl_path);
	free(ctl);
}
