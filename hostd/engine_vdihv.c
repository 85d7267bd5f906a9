/* The vdi-hv engine: our own VMM, one process per desktop, booting the
 * template's kernel directly with its disk as a copy-on-write overlay (`--disk
 * PATH,base=BASE`, which vdi-hv creates on first start), driven over its JSON
 * control socket. VNC (`--vnc unix:PATH` and the set-ticket verb) is used when
 * the vdi-hv binary offers it. Where this machine has no KVM, `[vdi-hv] launcher`
 * runs it through another program (kvmbox run, the KVM host in a box). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostd/ctlsock.h"
#include "hostd/engine.h"
#include "lib/log.h"

extern char **environ;

static bool has_vnc;
/* Why vdi-hv desktops cannot start here; NULL when they can. */
static const char *unavailable = "not probed yet";
static char unavailable_buf[8400];
/* The launcher's words (conf's [vdi-hv] launcher split on blanks) and their text. */
static char *launcher[VMM_ARGS_MAX / 2 + 1];
static char launcher_text[4096];

static void split_launcher(const char *text)
{
	size_t n = 0;
	char *save = NULL, *w;

	snprintf(launcher_text, sizeof(launcher_text), "%s", text ? text : "");
	for (w = strtok_r(launcher_text, " \t", &save); w && n < VMM_ARGS_MAX / 2;
	     w = strtok_r(NULL, " \t", &save))
		launcher[n++] = w;
	launcher[n] = NULL;
}

/* Adds the launcher's words and vdi-hv's path to a command line. */
static void add_program(struct vmm_args *a, const struct conf *c)
{
	for (char **w = launcher; *w; w++)
		vmm_args_add(a, "%s", *w);
	vmm_args_add(a, "%s", c->vdihv_binary);
}

/* Reads `vdi-hv --help` (through the launcher) to learn whether it has --vnc. */
static void vdihv_init(const struct conf *c)
{
	struct vmm_args args = {0};
	posix_spawn_file_actions_t fa;
	char out[8192];
	size_t len = 0;
	int pipefd[2], status = 0, kvm;
	pid_t pid;

	has_vnc = false;
	unavailable = "vdi-hv could not be started";
	split_launcher(c->vdihv_launcher);
	if (access(c->vdihv_binary, X_OK) < 0) {
		log_warn("vdi-hv: %s is not executable; vdi-hv desktops will not start",
			 c->vdihv_binary);
		snprintf(unavailable_buf, sizeof(unavailable_buf), "%s is not executable: %s",
			 c->vdihv_binary, strerror(errno));
		unavailable = unavailable_buf;
		return;
	}
	if (!launcher[0]) {
		/* Without a launcher vdi-hv needs this machine's /dev/kvm. */
		kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (kvm < 0) {
			snprintf(unavailable_buf, sizeof(unavailable_buf),
				 "cannot open /dev/kvm (%s) and no [vdi-hv] launcher is set "
				 "(kvmbox run runs vdi-hv where there is no KVM)",
				 strerror(errno));
			unavailable = unavailable_buf;
			log_warnx("vdi-hv: %s; vdi-hv desktops will not start", unavailable);
			return;
		}
		close(kvm);
	}
	add_program(&args, c);
	vmm_args_add(&args, "--help");
	if (args.va_overflow || pipe2(pipefd, O_CLOEXEC) < 0) {
		vmm_args_free(&args);
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, args.va_argv[0], &fa, NULL, args.va_argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(pipefd[0]);
		close(pipefd[1]);
		snprintf(unavailable_buf, sizeof(unavailable_buf), "cannot run %s",
			 args.va_argv[0]);
		unavailable = unavailable_buf;
		vmm_args_free(&args);
		return;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	for (;;) {
		struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
		ssize_t n;

		/* A launcher may start a VM first (kvmbox run without a box). */
		if (poll(&pfd, 1, launcher[0] ? 60000 : 5000) <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		n = read(pipefd[0], out + len, sizeof(out) - 1 - len);
		if (n <= 0 || (len += (size_t)n) == sizeof(out) - 1)
			break;
	}
	out[len] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!strstr(out, "--kernel")) {
		snprintf(unavailable_buf, sizeof(unavailable_buf),
			 "`%s%s%s --help` did not answer (exit status %d)", launcher_text,
			 launcher[0] ? " " : "", c->vdihv_binary,
			 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		unavailable = unavailable_buf;
		log_warnx("vdi-hv: %s; vdi-hv desktops will not start", unavailable);
		vmm_args_free(&args);
		return;
	}
	vmm_args_free(&args);
	unavailable = NULL;
	has_vnc = strstr(out, "--vnc") != NULL;
	log_info("vdi-hv: %s%s%s%s", c->vdihv_binary, launcher[0] ? " through " : "",
		 launcher[0] ? c->vdihv_launcher : "",
		 has_vnc ? ", with VNC" : ", without VNC (no --vnc in its --help): no tickets");
}

static const char *vdihv_unavailable(void)
{
	return unavailable;
}

static json_t *vdihv_describe(void)
{
	json_t *j = json_pack("{s:b, s:b}", "available", unavailable == NULL, "vnc", has_vnc);

	if (j && unavailable)
		json_object_set_new(j, "reason", json_string(unavailable));
	if (j && launcher[0])
		json_object_set_new(j, "launcher", json_string(launcher[0]));
	return j;
}

static int vdihv_create_disk(const struct conf *c, const struct desktop *d, char *err,
			     size_t errlen)
{
	char disk[4200];

	(void)err, (void)errlen;
	if (desktop_path(c, d, DESKTOP_FILE_DISK, disk, sizeof(disk)) < 0)
		return -ENAMETOOLONG;
	/* vdi-hv makes the overlay on first start; drop one left by an earlier
	 * desktop. */
	if (unlink(disk) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int vdihv_command(const struct conf *c, const struct desktop *d, struct vmm_args *a)
{
	struct vm_paths p;

	if (desktop_vm_paths(c, d, &p) < 0)
		return -ENAMETOOLONG;
	if (!d->d_kernel)
		return -EINVAL;
	add_program(a, c);
	vmm_args_opt(a, "--kernel", "%s", d->d_kernel);
	if (d->d_initrd) {
		vmm_args_opt(a, "--initrd", "%s", d->d_initrd);
	}
	if (d->d_cmdline) {
		vmm_args_opt(a, "--cmdline", "%s", d->d_cmdline);
	}
	vmm_args_opt(a, "--memory", "%d", d->d_memory_mib);
	vmm_args_opt(a, "--cpus", "%d", d->d_vcpus);
	vmm_args_opt(a, "--disk", "%s,base=%s", p.vp_disk, d->d_base);
	vmm_args_opt(a, "--serial", "file:%s", p.vp_serial);
	vmm_args_opt(a, "--control", "unix:%s", p.vp_control);
	if (d->d_vmm_uid) {
		vmm_args_opt(a, "--user", "%u", (unsigned)d->d_vmm_uid);
		a->va_uid = d->d_vmm_uid;
		/* Through a launcher the VMM runs elsewhere (the KVM box): a namespace
		 * here would only hide the box from the launcher. */
		a->va_pid_namespace = !launcher[0];
	}
	if (has_vnc) {
		vmm_args_opt(a, "--vnc", "unix:%s", p.vp_vnc);
	}
	return a->va_overflow ? -E2BIG : 0;
}

static bool vdihv_has_vnc(void)
{
	return has_vnc;
}

static int call(const struct conf *c, const struct desktop *d, json_t *req, char *err,
		size_t errlen)
{
	char control[256];
	json_t *reply = NULL;

	if (!req) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (desktop_path(c, d, DESKTOP_FILE_CONTROL, control, sizeof(control)) == 0)
		reply = ctlsock_call(control, req, ENGINE_CALL_TIMEOUT_MS, err, errlen);
	json_decref(req);
	if (!reply)
		return -EIO;
	json_decref(reply);
	return 0;
}

static int vdihv_probe(const struct conf *c, const struct desktop *d)
{
	char err[256];

	return call(c, d, json_pack("{s:s}", "cmd", "status"), err, sizeof(err)) < 0 ? -EAGAIN : 0;
}

static int vdihv_powerdown(const struct conf *c, const struct desktop *d, char *err, size_t errlen)
{
	/* The guest image runs its shutdown script on Ctrl-Alt-Del, then resets:
	 * vdi-hv exits 0 on a reset. */
	return call(c, d, json_pack("{s:s, s:s}", "cmd", "sendkey", "key", "ctrl-alt-delete"), err,
		    errlen);
}

static int vdihv_quit(const struct conf *c, const struct desktop *d)
{
	char err[256];

	return call(c, d, json_pack("{s:s}", "cmd", "quit"), err, sizeof(err));
}

static int vdihv_set_ticket(const struct conf *c, const struct desktop *d, const char *password,
			    long long expires, bool view_only, char *err, size_t errlen)
{
	if (!has_vnc) {
		snprintf(err, errlen, "this vdi-hv has no VNC server");
		return -ENOTSUP;
	}
	return call(c, d,
		    json_pack("{s:s, s:s, s:I, s:b}", "cmd", "set-ticket", "password", password,
			      "expires", (json_int_t)expires, "view_only", view_only),
		    err, errlen);
}

const struct engine engine_vdihv = {
    .en_name = "vdi-hv",
    .en_init = vdihv_init,
    .en_unavailable = vdihv_unavailable,
    .en_describe = vdihv_describe,
    .en_create_disk = vdihv_create_disk,
    .en_command = vdihv_command,
    .en_has_vnc = vdihv_has_vnc,
    .en_probe = vdihv_probe,
    .en_powerdown = vdihv_powerdown,
    .en_quit = vdihv_quit,
    .en_set_ticket = vdihv_set_ticket,
};
