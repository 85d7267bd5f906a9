/* vdi-hv: one process per desktop VM on KVM. Parses the command line, assembles the
 * machine in boot order (the one place that lists every device), loads the kernel,
 * and runs the main loop (control socket, console input) until the guest stops. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "display/display.h"
#include "display/vnc_auth.h"
#include "hv/conslog.h"
#include "hv/control.h"
#include "hv/dev/fb.h"
#include "hv/dev/i8042.h"
#include "hv/dev/pci.h"
#include "hv/dev/rtc.h"
#include "hv/dev/serial.h"
#include "hv/dev/virtio_blk.h"
#include "hv/dev/virtio_input.h"
#include "hv/loader.h"
#include "hv/machine.h"
#include "hv/mainloop.h"
#include "hv/mptable.h"
#include "hv/sandbox.h"
#include "hv/vm.h"
#include "lib/log.h"

#define EXIT_USAGE 2
#define TICK_MS	   10

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

struct options {
	const char *kernel, *initrd, *cmdline, *control;
	unsigned long memory_mib;
	int cpus;
	const char *disks[MACHINE_MAX_DISKS];
	bool disk_ro[MACHINE_MAX_DISKS];
	const char *disk_base[MACHINE_MAX_DISKS]; /* NULL: raw image, else overlay on it */
	size_t ndisks;
	enum serial_mode serial;
	const char *serial_path;
	unsigned long long serial_max; /* bytes, 0: no cap */
	unsigned fb_width, fb_height;  /* 0: no framebuffer */
	const char *vnc;	       /* listen address, NULL: no VNC server */
	bool vnc_insecure;
	bool no_sandbox;
	long user_uid, user_gid; /* --user, -1: nobody when started as root */
	bool debug;
};

static const char usage_text[] =
    "usage: vdi-hv --kernel FILE [options]\n"
    "Runs one virtual machine on KVM.\n"
    "\n"
    "  --kernel FILE         Linux bzImage or ELF64 kernel (PVH note or 64-bit entry)\n"
    "  --initrd FILE         initial ramdisk\n"
    "  --cmdline STR         kernel command line\n"
    "  --memory MIB          guest RAM in MiB, 16..65536, a multiple of 2 (default 256)\n"
    "  --cpus N              vCPUs, 1..64 (default 1)\n"
    "  --disk PATH[,ro][,base=BASE]  raw disk image as a virtio-blk PCI device (up to 8);\n"
    "                        with base=, PATH is a copy-on-write overlay on the raw BASE\n"
    "  --serial MODE         COM1: stdio (default), file:PATH or none\n"
    "  --serial-max BYTES    file:PATH grows to BYTES (K, M, G suffixes; 0: no cap),\n"
    "                        then is renamed to PATH.1 and started anew (default 16M)\n"
    "  --control unix:PATH   JSON control socket (status, pause, resume, quit, sendkey,\n"
    "                        type, screendump, serial, mouse, pointer, set-ticket,\n"
    "                        clear-tickets, display)\n"
    "  --fb WxH|none         linear framebuffer, 32 bpp (default 1024x768)\n"
    "  --vnc unix:PATH|[HOST:]PORT  serve the framebuffer over VNC (a bare port listens\n"
    "                        on 127.0.0.1); viewers need a ticket set with the control\n"
    "                        socket's set-ticket\n"
    "  --vnc-insecure        VNC without authentication: local debugging only\n"
    "  --user UID[:GID]      when started as root: the unprivileged user (and group) to\n"
    "                        run the guest as, in namespaces of its own with an empty\n"
    "                        root (default 65534:65534, nobody)\n"
    "  --no-sandbox          run without the seccomp allow-list, resource limits,\n"
    "                        namespaces and user change (debugging only; see SANDBOX\n"
    "                        in vdi-hv(1))\n"
    "  --debug               verbose log\n"
    "  --help                this text\n"
    "\n"
    "Exit status: 0 when the guest resets or powers off or on quit, 1 on a guest crash\n"
    "or a runtime failure, 2 on bad options.\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vdi-hv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see vdi-hv --help)\n", stderr);
	exit(EXIT_USAGE);
}

static unsigned long parse_number(const char *opt, const char *s, unsigned long min,
				  unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		usage_error("%s: '%s' is not a number in %lu..%lu", opt, s, min, max);
	return v;
}

/* BYTES with an optional K, M or G (powers of 1024), at most 1 TiB. */
static unsigned long long parse_bytes(const char *opt, const char *s)
{
	unsigned long long v, mult = 1;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end && !end[1]) {
		switch (*end) {
		case 'K': mult = 1ull << 10, end++; break;
		case 'M': mult = 1ull << 20, end++; break;
		case 'G': mult = 1ull << 30, end++; break;
		default: break;
		}
	}
	if (errno || end == s || *end || s[0] == '-' || v > (1ull << 40) / mult)
		usage_error("%s: '%s' is not a size in bytes up to 1T (K, M, G suffixes)", opt, s);
	return v * mult;
}

/* UID[:GID], numbers; GID defaults to UID. Root (0) is refused: it is what --user
 * leaves. */
static void parse_user(const char *s, struct options *o)
{
	char uid[16];
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	if (n >= sizeof(uid))
		usage_error("--user: '%s' is not UID[:GID]", s);
	memcpy(uid, s, n);
	uid[n] = '\0';
	o->user_uid = (long)parse_number("--user", uid, 1, 0x7fffffff);
	o->user_gid = colon ? (long)parse_number("--user", colon + 1, 1, 0x7fffffff) : o->user_uid;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_KERNEL = 256,
		OPT_INITRD,
		OPT_CMDLINE,
		OPT_MEMORY,
		OPT_CPUS,
		OPT_DISK,
		OPT_SERIAL,
		OPT_SERIAL_MAX,
		OPT_CONTROL,
		OPT_FB,
		OPT_VNC,
		OPT_VNC_INSECURE,
		OPT_USER,
		OPT_NO_SANDBOX,
		OPT_DEBUG,
		OPT_HELP
	};
	static const struct option longopts[] = {
	    {"kernel", required_argument, NULL, OPT_KERNEL},
	    {"initrd", required_argument, NULL, OPT_INITRD},
	    {"cmdline", required_argument, NULL, OPT_CMDLINE},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"disk", required_argument, NULL, OPT_DISK},
	    {"serial", required_argument, NULL, OPT_SERIAL},
	    {"serial-max", required_argument, NULL, OPT_SERIAL_MAX},
	    {"control", required_argument, NULL, OPT_CONTROL},
	    {"fb", required_argument, NULL, OPT_FB},
	    {"vnc", required_argument, NULL, OPT_VNC},
	    {"vnc-insecure", no_argument, NULL, OPT_VNC_INSECURE},
	    {"user", required_argument, NULL, OPT_USER},
	    {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
	    {"debug", no_argument, NULL, OPT_DEBUG},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.memory_mib = 256,
			      .cpus = 1,
			      .fb_width = 1024,
			      .fb_height = 768,
			      .serial_max = CONSLOG_DEFAULT_MAX,
			      .user_uid = -1,
			      .user_gid = -1};
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: o->kernel = optarg; break;
		case OPT_INITRD: o->initrd = optarg; break;
		case OPT_CMDLINE: o->cmdline = optarg; break;
		case OPT_MEMORY:
			o->memory_mib = parse_number("--memory", optarg, 16, 65536);
			if (o->memory_mib % 2)
				usage_error("--memory: %lu MiB is not a multiple of 2",
					    o->memory_mib);
			break;
		case OPT_CPUS: o->cpus = (int)parse_number("--cpus", optarg, 1, 64); break;
		case OPT_DISK: {
			char *flag = strchr(optarg, ',');

			if (o->ndisks == MACHINE_MAX_DISKS)
				usage_error("--disk: at most %d disks", MACHINE_MAX_DISKS);
			if (flag)
				*flag++ = '\0';
			while (flag) {
				char *next = strchr(flag, ',');

				if (next)
					*next++ = '\0';
				if (!strcmp(flag, "ro"))
					o->disk_ro[o->ndisks] = true;
				else if (!strncmp(flag, "base=", 5) && flag[5])
					o->disk_base[o->ndisks] = flag + 5;
				else
					usage_error("--disk: unknown flag '%s' (ro or base=PATH)",
						    flag);
				flag = next;
			}
			if (!*optarg)
				usage_error("--disk: empty path");
			o->disks[o->ndisks++] = optarg;
			break;
		}
		case OPT_SERIAL:
			if (!strcmp(optarg, "stdio"))
				o->serial = SERIAL_STDIO;
			else if (!strcmp(optarg, "none"))
				o->serial = SERIAL_NONE;
			else if (!strncmp(optarg, "file:", 5) && optarg[5])
				o->serial = SERIAL_FILE, o->serial_path = optarg + 5;
			else
				usage_error("--serial: '%s' is not stdio, file:PATH or none",
					    optarg);
			break;
		case OPT_SERIAL_MAX: o->serial_max = parse_bytes("--serial-max", optarg); break;
		case OPT_CONTROL:
			if (strncmp(optarg, "unix:", 5) || !optarg[5])
				usage_error("--control: '%s' is not unix:PATH", optarg);
			o->control = optarg + 5;
			break;
		case OPT_FB:
			if (!strcmp(optarg, "none"))
				o->fb_width = o->fb_height = 0;
			else if (fb_parse_geometry(optarg, &o->fb_width, &o->fb_height) < 0)
				usage_error("--fb: '%s' is not WxH (each %u..%u) or none", optarg,
					    FB_MIN_DIM, FB_MAX_DIM);
			break;
		case OPT_VNC:
			if (display_check_listen(optarg) < 0)
				usage_error("--vnc: '%s' is not unix:PATH, HOST:PORT or PORT",
					    optarg);
			o->vnc = optarg;
			break;
		case OPT_VNC_INSECURE: o->vnc_insecure = true; break;
		case OPT_USER: parse_user(optarg, o); break;
		case OPT_NO_SANDBOX: o->no_sandbox = true; break;
		case OPT_DEBUG: o->debug = true; break;
		case OPT_HELP: fputs(usage_text, stdout); exit(0);
		case '?':
			if (optopt)
				usage_error("option --%s needs an argument or is unknown",
					    longopts[optopt - OPT_KERNEL].name);
			usage_error("unknown option '%s'", argv[optind - 1]);
		default: usage_error("unknown option");
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->kernel)
		usage_error("--kernel is required");
	if (o->vnc && !o->fb_width)
		usage_error("--vnc needs a framebuffer (not --fb none)");
	if (o->vnc_insecure && !o->vnc)
		usage_error("--vnc-insecure needs --vnc");
}

/* ---- console input on stdin ---- */

static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
}

struct console {
	struct machine *con_machine;
	char con_pending[256];
	size_t con_len;
	bool con_escape; /* saw Ctrl-A on a terminal */
};

static void stdin_readable(void *arg, int fd, short revents)
{
	struct console *con = arg;
	char buf[256];
	ssize_t n;

	(void)revents;
	if (con->con_len) /* the guest has not taken the last input yet */
		return;
	n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			mainloop_remove(con->con_machine->m_loop, fd); /* stdin closed */
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (termios_saved && con->con_escape) {
			con->con_escape = false;
			if (buf[i] == 'x') {
				vm_request_stop(con->con_machine->m_vm, VM_STOP_QUIT, "Ctrl-A x");
				return;
			}
		} else if (termios_saved && buf[i] == 0x01) {
			con->con_escape = true;
			continue;
		}
		con->con_pending[con->con_len++] = buf[i];
	}
}

static void serial_output_ready(void *arg, int fd, short revents)
{
	struct machine *m = arg;

	(void)fd, (void)revents;
	serial_flush(m->m_serial);
}

/* Console input and queued keystrokes, fed at the guest's pace; true while some wait. */
static bool tick(void *arg)
{
	struct console *con = arg;
	struct machine *m = con->con_machine;
	bool busy = false;

	if (con->con_len) {
		size_t n = serial_feed(m->m_serial, con->con_pending, con->con_len);

		memmove(con->con_pending, con->con_pending + n, con->con_len - n);
		con->con_len -= n;
	}
	if (m->m_control)
		busy = control_tick(m->m_control);
	return busy || con->con_len > 0;
}

static void vm_stopped(void *arg, int fd, short revents)
{
	struct machine *m = arg;

	(void)fd, (void)revents;
	mainloop_quit(m->m_loop);
}

static volatile sig_atomic_t signalled;
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	signalled = sig;
	if (write(signal_pipe[1], "", 1) < 0)
		signalled = sig;
}

static void signal_readable(void *arg, int fd, short revents)
{
	struct machine *m = arg;
	char c;

	(void)revents;
	if (read(fd, &c, 1) == 1)
		vm_request_stop(m->m_vm, VM_STOP_QUIT, strsignal(signalled));
}

/* ---- viewer input: what the VNC server drives ---- */

static void sink_key(void *arg, unsigned keycode, bool down)
{
	struct machine *m = arg;

	i8042_key_event(m->m_i8042, keycode, down);
}

static bool sink_tablet_ready(void *arg)
{
	struct machine *m = arg;

	return m->m_tablet && virtio_input_tablet_ready(m->m_tablet);
}

static void sink_tablet(void *arg, unsigned x, unsigned y, unsigned buttons, int wheel)
{
	struct machine *m = arg;

	if (m->m_tablet)
		virtio_input_tablet_event(m->m_tablet, x, y, buttons, wheel);
}

static void sink_mouse(void *arg, int dx, int dy, int dz, unsigned buttons)
{
	struct machine *m = arg;

	i8042_mouse_event(m->m_i8042, dx, dy, dz, buttons);
}

static int start_display(struct machine *m, const struct options *o)
{
	const struct display_config cfg = {
	    .dc_listen = o->vnc,
	    .dc_insecure = o->vnc_insecure,
	    .dc_name = "vdi desktop",
	};
	struct display_source src;

	if (!o->control && !o->vnc_insecure)
		log_warnx("vnc: no --control socket to set tickets with: every viewer will be "
			  "refused");
	fb_display_source(m->m_fb, &src);
	m->m_display = display_create(&cfg, &src, &m->m_input);
	return m->m_display ? 0 : -1;
}

struct pci_irqs {
	struct mptable_pci_irq pi_irqs[32];
	size_t pi_count;
};

static void collect_pci_irq(void *arg, unsigned slot, unsigned gsi)
{
	struct pci_irqs *irqs = arg;

	if (irqs->pi_count < sizeof(irqs->pi_irqs) / sizeof(irqs->pi_irqs[0]))
		irqs->pi_irqs[irqs->pi_count++] = (struct mptable_pci_irq){slot, gsi};
}

/* Creates the devices in boot order and describes them in the MP table. */
static int build_machine(struct machine *m, const struct options *o, struct conslog *serial_out)
{
	struct pci_irqs irqs = {.pi_count = 0};

	m->m_serial = serial_create(m->m_vm, serial_out);
	m->m_rtc = rtc_create(m->m_vm);
	m->m_i8042 = i8042_create(m->m_vm);
	if (!m->m_serial || !m->m_rtc || !m->m_i8042)
		return -1;
	if (o->fb_width) {
		m->m_fb = fb_create(m->m_vm, o->fb_width, o->fb_height);
		if (!m->m_fb)
			return -1;
	}
	m->m_pci = pci_create(m->m_vm);
	if (!m->m_pci)
		return -1;
	for (size_t i = 0; i < o->ndisks; i++) {
		if (o->disk_base[i])
			m->m_disks[i] = virtio_blk_create_overlay(m->m_vm, m->m_pci, o->disks[i],
								  o->disk_base[i], o->disk_ro[i]);
		else
			m->m_disks[i] =
			    virtio_blk_create(m->m_vm, m->m_pci, o->disks[i], o->disk_ro[i]);
		if (!m->m_disks[i])
			return -1;
		m->m_ndisks++;
	}
	/* An absolute pointer for VNC viewers; without it (or its guest driver) they drive
	 * the PS/2 mouse. */
	if (m->m_fb)
		m->m_tablet = virtio_input_create_tablet(m->m_vm, m->m_pci, fb_width(m->m_fb),
							 fb_height(m->m_fb));
	m->m_input = (struct vnc_input_sink){
	    .is_arg = m,
	    .is_key = sink_key,
	    .is_tablet_ready = sink_tablet_ready,
	    .is_tablet = sink_tablet,
	    .is_mouse = sink_mouse,
	};
	if (pci_for_each_device(m->m_pci, collect_pci_irq, &irqs) < 0 ||
	    mptable_write(m->m_vm, irqs.pi_irqs, irqs.pi_count) < 0) {
		log_warnx("cannot write the MP table");
		return -1;
	}
	return 0;
}

static void free_machine(struct machine *m)
{
	control_free(m->m_control);
	display_free(m->m_display);
	virtio_input_free(m->m_tablet);
	for (size_t i = 0; i < m->m_ndisks; i++)
		virtio_blk_free(m->m_disks[i]);
	pci_free(m->m_pci);
	fb_free(m->m_fb);
	i8042_free(m->m_i8042);
	rtc_free(m->m_rtc);
	serial_free(m->m_serial);
	vm_free(m->m_vm);
	mainloop_free(m->m_loop);
}

/* Resource limits, then the seccomp allow-list (sandbox.c). The serial log keeps its
 * rotation: what it would open later is opened now. */
static int enter_sandbox(const struct options *o, struct conslog *serial_out)
{
	bool with_vnc = o->vnc != NULL;
	uid_t uid = o->user_uid < 0 ? SANDBOX_NOBODY : (uid_t)o->user_uid;
	gid_t gid = o->user_gid < 0 ? SANDBOX_NOBODY : (gid_t)o->user_gid;
	int r;

#ifdef __SANITIZE_ADDRESS__
	/* LeakSanitizer's check at exit runs in a process it clones and reads /proc: the
	 * filter would kill it. Sanitizer builds (SAN=1) test the code, not the sandbox. */
	(void)serial_out, (void)with_vnc, (void)uid, (void)gid;
	log_warnx("sandbox: off in this sanitizer build");
	return 0;
#endif
	/* Libraries that open files on first use are started now: jansson seeds its hash
	 * tables from /dev/urandom with the first object. */
	json_object_seed(0);
	/* OpenSSL reads its configuration and sets up DES and its random generator when a
	 * viewer first logs in: one VNC handshake's worth of it is done now. */
	if (with_vnc) {
		struct vnc_auth_server vs;
		uint8_t response[VNC_AUTH_CHALLENGE_SIZE];

		if (vnc_auth_server_init(&vs, "warm-up") < 0 ||
		    vnc_auth_response(response, vs.vs_challenge, "warm-up") < 0) {
			log_warnx("sandbox: OpenSSL cannot set up VNC authentication");
			return -1;
		}
		explicit_bzero(&vs, sizeof(vs));
	}
	if (serial_out && conslog_seal(serial_out) < 0) {
		log_warn("sandbox: serial log");
		return -1;
	}
	r = sandbox_confine(uid, gid);
	if (r < 0) {
		errno = -r;
		log_warn("sandbox: cannot confine the process (namespaces, empty root, uid %u)",
			 (unsigned)uid);
		return -1;
	}
	if (r == 0)
		log_info("sandbox: own namespaces, empty root, uid %u gid %u", (unsigned)uid,
			 (unsigned)gid);
	else if (o->user_uid >= 0)
		log_warnx("sandbox: --user ignored: not started as root (runs as uid %u)",
			  (unsigned)getuid());
	r = sandbox_limit_resources();
	if (r == 0)
		r = sandbox_enter();
	if (r < 0) {
		errno = -r;
		log_warn("sandbox: cannot be entered (--no-sandbox runs without it)");
		return -1;
	}
	log_info("sandbox: on");
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct machine m = {0};
	struct console con = {.con_machine = &m};
	struct vm_entry entry;
	struct boot_display display;
	struct boot_spec spec;
	struct sigaction sa = {.sa_handler = on_signal};
	char err[512];
	struct conslog *serial_out = NULL;
	int status = 1;

	/* Every thread allocates from the main heap: glibc's per-thread arenas read
	 * /proc/sys/vm/overcommit_memory the first time one shrinks, which the sandbox would
	 * kill (a VNC viewer's ZRLE buffers freed in the display thread did). */
	mallopt(M_ARENA_MAX, 1);
	parse_options(argc, argv, &o);
	log_init("vdi-hv", o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, false);
	signal(SIGPIPE, SIG_IGN);

	if (o.serial == SERIAL_STDIO) {
		serial_out = conslog_from_fd(STDOUT_FILENO);
		if (!serial_out)
			fatal("out of memory");
	} else if (o.serial == SERIAL_FILE) {
		serial_out = conslog_open(o.serial_path, o.serial_max);
		if (!serial_out)
			fatal("--serial: cannot open %s%s", o.serial_path,
			      errno == ELOOP ? " (a symbolic link: refused)" : "");
	}

	m.m_loop = mainloop_create();
	m.m_vm = m.m_loop ? vm_create((uint64_t)o.memory_mib << 20, o.cpus) : NULL;
	if (!m.m_vm)
		goto out;
	if (build_machine(&m, &o, serial_out) < 0)
		goto out;

	spec = (struct boot_spec){o.kernel, o.initrd, o.cmdline, NULL};
	if (m.m_fb) {
		display = (struct boot_display){fb_gpa(m.m_fb), fb_size(m.m_fb), fb_width(m.m_fb),
						fb_height(m.m_fb), fb_stride(m.m_fb)};
		spec.bs_display = &display;
	}
	if (loader_load(m.m_vm, &spec, &entry, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	/* The control socket comes last: once a client reaches it, the display is up. */
	if (o.vnc && start_display(&m, &o) < 0)
		goto out;
	if (o.control) {
		m.m_control = control_create(&m, o.control);
		if (!m.m_control)
			goto out;
	}

	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("pipe");
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	mainloop_add(m.m_loop, signal_pipe[0], POLLIN, signal_readable, &m);
	mainloop_add(m.m_loop, vm_stop_fd(m.m_vm), POLLIN, vm_stopped, &m);
	mainloop_add(m.m_loop, serial_output_fd(m.m_serial), POLLIN, serial_output_ready, &m);
	if (o.serial == SERIAL_STDIO) {
		if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
			struct termios raw = saved_termios;

			termios_saved = true;
			atexit(restore_terminal);
			cfmakeraw(&raw);
			raw.c_oflag |= OPOST | ONLCR;
			tcsetattr(STDIN_FILENO, TCSANOW, &raw);
			log_info("console on this terminal; Ctrl-A x quits");
		}
		mainloop_add(m.m_loop, STDIN_FILENO, POLLIN, stdin_readable, &con);
	}
	mainloop_set_tick(m.m_loop, TICK_MS, tick, &con);
	if (vm_set_entry(m.m_vm, &entry) < 0) {
		log_err("cannot set the boot vCPU's registers");
		goto out;
	}

	/* Everything is open: from here on the guest runs, and a guest or viewer that took
	 * the process over would get only what the allow-list leaves. */
	if (o.no_sandbox) {
		log_warnx("sandbox: off (--no-sandbox)");
	} else if (enter_sandbox(&o, serial_out) < 0) {
		goto out;
	}
	if (m.m_display && display_start(m.m_display) < 0)
		goto out;
	if (vm_start(m.m_vm) < 0) {
		log_err("cannot start the vCPUs");
		goto out;
	}
	mainloop_run(m.m_loop);
	vm_join(m.m_vm);
	switch (vm_stop_reason(m.m_vm)) {
	case VM_STOP_RESET:
	case VM_STOP_SHUTDOWN:
	case VM_STOP_QUIT: status = 0; break;
	default: status = 1;
	}
out:
	free_machine(&m); /* the UART writes what it still holds, then its log closes */
	conslog_close(serial_out);
	restore_terminal();
	return status;
}
