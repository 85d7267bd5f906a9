/* The desktop table and its life cycle. Every public function takes the host
 * lock for its whole length; VMM exchanges under it are bounded by
 * ENGINE_CALL_TIMEOUT_MS. State changes that a restart must see (created,
 * started, ended, destroyed) are stored at once. */
#include "hostd/host.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostd/engine.h"
#include "hostd/definitions.h"
#include "hostd/metrics.h"
#include "hostd/vmm.h"
#include "lib/clock.h"
#include "lib/file.h"
#include "lib/json.h"
#include "lib/log.h"

#define SERIAL_TAIL_LINES  20
#define VMM_LOG_TAIL_LINES 5
#define ESCALATE_S	   5.0
#define PATH_LEN	   4200

struct host {
	pthread_mutex_t h_lock;
	const struct conf *h_conf;
	char *h_self;
	char h_id[65];
	struct desktop **h_desktops;
	size_t h_count;
	struct tickets *h_tickets;
};

static struct desktop *find(struct host *h, const char *id)
{
	for (size_t i = 0; i < h->h_count; i++)
		if (!strcmp(h->h_desktops[i]->d_id, id))
			return h->h_desktops[i];
	return NULL;
}

static struct desktop *find_or_fail(struct host *h, const char *id, char *err, size_t errlen)
{
	struct desktop *d = desktop_id_valid(id) ? find(h, id) : NULL;

	if (!d)
		snprintf(err, errlen, "no desktop '%.64s' on this host", id);
	return d;
}

static bool has_vmm(const struct desktop *d)
{
	return d->d_state == DESKTOP_STARTING || d->d_state == DESKTOP_RUNNING ||
	       d->d_state == DESKTOP_STOPPING;
}

static void path_of(struct host *h, const struct desktop *d, enum desktop_file f, char *buf)
{
	if (desktop_path(h->h_conf, d, f, buf, PATH_LEN) < 0)
		buf[0] = '\0'; /* cannot happen: lengths are bounded by the config checks */
}

/* Removes the run directory and what is in it: relative to the directory opened
 * without following a symlink, so one planted at its place does not make hostd remove
 * files elsewhere (it is left for the administrator; starts refuse it). */
static void clean_run_dir(struct host *h, const struct desktop *d)
{
	static const enum desktop_file files[] = {DESKTOP_FILE_PID, DESKTOP_FILE_EXIT,
						  DESKTOP_FILE_CONTROL, DESKTOP_FILE_VNC};
	char path[PATH_LEN];
	int dfd;

	path_of(h, d, DESKTOP_FILE_RUN_DIR, path);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *base;

		path_of(h, d, files[i], path);
		base = strrchr(path, '/');
		if (base)
			unlinkat(dfd, base + 1, 0);
	}
	close(dfd);
	path_of(h, d, DESKTOP_FILE_RUN_DIR, path);
	rmdir(path);
}

static bool reports_error(const char *line)
{
	static const char *const words[] = {"error",   "cannot",    "failed",	 "fatal",
					    "invalid", "could not", "not found", "triple fault"};

	for (size_t w = 0; line && w < sizeof(words) / sizeof(words[0]); w++)
		if (strcasestr(line, words[w]))
			return true;
	return false;
}

/* The VMM's own last word on why it ended: the last line of its log tail that reports
 * an error and names the engine ("vdi-hv error: cannot open /dev/kvm: ...", "qemu:
 * invalid kernel header"), else the last that reports one (a launcher's), or NULL. */
static const char *vmm_error_line(const json_t *tail, const char *engine)
{
	const char *other = NULL;

	for (size_t i = json_array_size(tail); i-- > 0;) {
		const char *line = json_string_value(json_array_get(tail, i));

		if (!reports_error(line))
			continue;
		if (strstr(line, engine))
			return line;
		if (!other)
			other = line;
	}
	return other;
}

/* d's failure: {reason (with the VMM's last error line), exit, time, serial_tail,
 * vmm_log_tail}. The reason given is completed in place (reason_len bytes). */
static json_t *failure_report(struct host *h, const struct desktop *d, char *reason,
			      size_t reason_len, const char *exit_text)
{
	char serial[PATH_LEN], vmm_log[PATH_LEN];
	json_t *vmm_tail;
	const char *error;
	size_t used = strlen(reason);

	path_of(h, d, DESKTOP_FILE_SERIAL, serial);
	path_of(h, d, DESKTOP_FILE_VMM_LOG, vmm_log);
	vmm_tail = vmm_log_tail(vmm_log, VMM_LOG_TAIL_LINES);
	error = vmm_error_line(vmm_tail, engine_of(d)->en_name);
	if (error && used + 3 < reason_len)
		snprintf(reason + used, reason_len - used, ": %s", error);
	return json_pack("{s:s, s:s, s:I, s:o, s:o}", "reason", reason, "exit", exit_text, "time",
			 (json_int_t)time(NULL), "serial_tail",
			 vmm_log_tail(serial, SERIAL_TAIL_LINES), "vmm_log_tail", vmm_tail);
}

static void reap_monitor(struct desktop *d)
{
	if (!d->d_monitor_is_child)
		return;
	while (waitpid(d->d_monitor_pid, NULL, WNOHANG) < 0 && errno == EINTR)
		;
	d->d_monitor_is_child = false;
}

/* The VMM (or its monitor) has ended: decide what it means and record it. */
static void vmm_gone(struct host *h, struct desktop *d)
{
	const char *engine = engine_of(d)->en_name;
	char exit_path[PATH_LEN], how[160], reason[512];
	bool known, clean;
	int status = 0;

	reap_monitor(d);
	path_of(h, d, DESKTOP_FILE_EXIT, exit_path);
	known = vmm_read_exit(exit_path, &status) == 0;
	if (!known && vmm_alive(d->d_vmm_pid, d->d_vmm_start)) {
		/* The monitor was killed but the VMM lives on: watch the VMM itself. */
		if (d->d_watch_fd >= 0)
			close(d->d_watch_fd);
		d->d_watch_fd = vmm_watch(d->d_vmm_pid, d->d_vmm_start);
		if (d->d_watch_fd >= 0) {
			log_warnx("desktop=%s: the monitor of %s pid=%d ended; watching the VMM",
				  d->d_id, engine, (int)d->d_vmm_pid);
			return;
		}
	}
	if (d->d_watch_fd >= 0)
		close(d->d_watch_fd);
	d->d_watch_fd = -1;
	if (known)
		vmm_describe_status(status, how, sizeof(how));
	else
		snprintf(how, sizeof(how), "ended, exit status unknown");
	clean = known && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	json_decref(d->d_failure);
	d->d_failure = NULL;
	if (!d->d_fail_reason && (d->d_stop_requested || clean)) {
		d->d_state = DESKTOP_STOPPED;
		log_info("desktop=%s stopped: %s pid=%d %s%s", d->d_id, engine, (int)d->d_vmm_pid,
			 how, d->d_stop_requested ? "" : " (the guest shut down)");
	} else {
		if (d->d_fail_reason)
			snprintf(reason, sizeof(reason), "%s", d->d_fail_reason);
		else if (known && vmm_killed_by_sandbox(status))
			snprintf(reason, sizeof(reason), "%s (pid %d) %s", engine,
				 (int)d->d_vmm_pid, how);
		else
			snprintf(reason, sizeof(reason), "%s (pid %d) %s unexpectedly", engine,
				 (int)d->d_vmm_pid, how);
		d->d_state = DESKTOP_FAILED;
		d->d_failure = failure_report(h, d, reason, sizeof(reason), how);
		log_warnx("desktop=%s failed: %s", d->d_id, reason);
		hostd_metrics_vmm_failure(d->d_engine);
	}
	d->d_fail_reason = NULL;
	d->d_stop_requested = false;
	d->d_vmm_pid = d->d_monitor_pid = 0;
	clean_run_dir(h, d);
	tickets_revoke(h->h_tickets, d->d_id);
	definitions_save(h->h_conf, d);
}

/* Start-up: find the VMM a previous hostd left running for d. */
static void adopt(struct host *h, struct desktop *d)
{
	char pid_path[PATH_LEN], vnc[PATH_LEN];
	struct vmm_proc p;
	struct stat st;
	int r;

	path_of(h, d, DESKTOP_FILE_PID, pid_path);
	r = vmm_read_pidfile(pid_path, &p);
	if (r == -ENOENT && d->d_state != DESKTOP_RUNNING)
		return; /* stopped or failed, and nothing runs: as stored */
	if (r < 0) {
		char reason[512] =
		    "no VMM found when hostd started: it ended while hostd was not running";

		json_decref(d->d_failure);
		d->d_state = DESKTOP_FAILED;
		d->d_failure = failure_report(h, d, reason, sizeof(reason), "unknown");
		log_warnx("desktop=%s failed: no VMM found at start-up", d->d_id);
		clean_run_dir(h, d);
		definitions_save(h->h_conf, d);
		return;
	}
	d->d_vmm_pid = p.vp_vmm;
	d->d_vmm_start = p.vp_vmm_start;
	d->d_vmm_uid = p.vp_uid;
	d->d_monitor_pid = p.vp_monitor;
	d->d_monitor_is_child = false;
	d->d_watch_fd = vmm_watch(p.vp_monitor, p.vp_monitor_start);
	if (d->d_watch_fd < 0)
		d->d_watch_fd = vmm_watch(p.vp_vmm, p.vp_vmm_start);
	d->d_state = DESKTOP_STARTING; /* until it answers on its control socket */
	d->d_deadline = monotonic_seconds() + h->h_conf->start_timeout;
	d->d_started = stat(pid_path, &st) == 0 ? (long long)st.st_mtime : (long long)time(NULL);
	path_of(h, d, DESKTOP_FILE_VNC, vnc);
	d->d_vnc = stat(vnc, &st) == 0 && S_ISSOCK(st.st_mode);
	if (d->d_watch_fd < 0) {
		vmm_gone(h, d); /* both gone: the exit file, if any, says how */
		return;
	}
	log_info("desktop=%s: adopted %s pid=%d", d->d_id, engine_of(d)->en_name,
		 (int)d->d_vmm_pid);
}

static void add_loaded(void *arg, struct desktop *d)
{
	struct host *h = arg;

	if (h->h_count == (size_t)h->h_conf->max_desktops || find(h, d->d_id)) {
		log_warnx("definitions: desktop=%s not loaded (limit reached or duplicate)",
			  d->d_id);
		desktop_free(d);
		return;
	}
	h->h_desktops[h->h_count++] = d;
	adopt(h, d);
}

struct host *host_open(const struct conf *c, const char *self)
{
	struct host *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->h_lock, NULL);
	h->h_conf = c;
	h->h_self = strdup(self);
	h->h_desktops = calloc((size_t)c->max_desktops, sizeof(*h->h_desktops));
	h->h_tickets = tickets_create();
	if (!h->h_self || !h->h_desktops || !h->h_tickets) {
		log_warnx("host: out of memory");
		goto out_free;
	}
	if (c->host_id[0])
		snprintf(h->h_id, sizeof(h->h_id), "%s", c->host_id);
	else if (gethostname(h->h_id, sizeof(h->h_id) - 1) < 0)
		snprintf(h->h_id, sizeof(h->h_id), "localhost");
	if (definitions_init(c) < 0)
		goto out_free;
	engine_qemu.en_init(c);
	engine_vdihv.en_init(c);
	if (definitions_load(c, add_loaded, h) < 0)
		goto out_free;
	log_info("host %s: %zu desktop(s) defined", h->h_id, h->h_count);
	return h;

out_free:
	host_close(h);
	return NULL;
}

void host_close(struct host *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->h_count; i++) {
		struct desktop *d = h->h_desktops[i];

		if (d->d_watch_fd >= 0)
			close(d->d_watch_fd);
		desktop_free(d);
	}
	free(h->h_desktops);
	tickets_free(h->h_tickets);
	free(h->h_self);
	pthread_mutex_destroy(&h->h_lock);
	free(h);
}

int host_create(struct host *h, const json_t *body, json_t **out, char *err, size_t errlen)
{
	struct desktop *d = desktop_from_request(h->h_conf, body, err, errlen);
	int r;

	if (!d)
		return -EINVAL;
	pthread_mutex_lock(&h->h_lock);
	if (find(h, d->d_id)) {
		snprintf(err, errlen, "desktop '%s' exists already", d->d_id);
		r = -EEXIST;
		goto out_unlock;
	}
	if (h->h_count == (size_t)h->h_conf->max_desktops) {
		snprintf(err, errlen, "this host has its maximum of %d desktops",
			 h->h_conf->max_desktops);
		r = -ENOSPC;
		goto out_unlock;
	}
	r = engine_of(d)->en_create_disk(h->h_conf, d, err, errlen);
	if (r < 0) {
		r = -EIO;
		goto out_unlock;
	}
	r = definitions_save(h->h_conf, d);
	if (r < 0) {
		char disk[PATH_LEN];

		path_of(h, d, DESKTOP_FILE_DISK, disk);
		unlink(disk);
		snprintf(err, errlen, "cannot save the desktop: %s", strerror(-r));
		r = -EIO;
		goto out_unlock;
	}
	h->h_desktops[h->h_count++] = d;
	*out = desktop_to_json(d, false);
	log_info("desktop=%s created: engine=%s disk=%s memory=%dMiB vcpus=%d", d->d_id,
		 desktop_engine_name(d->d_engine), d->d_base, d->d_memory_mib, d->d_vcpus);
	d = NULL;
out_unlock:
	pthread_mutex_unlock(&h->h_lock);
	desktop_free(d);
	return r;
}

/* The template files must still be where the configuration allows. */
static int recheck_templates(struct host *h, const struct desktop *d, char *err, size_t errlen)
{
	const char *paths[] = {d->d_kernel, d->d_initrd, d->d_base};

	for (size_t i = 0; i < 3; i++) {
		char *real;

		if (!paths[i])
			continue;
		real = desktop_resolve_template(h->h_conf, paths[i], err, errlen);
		if (!real)
			return -EINVAL;
		free(real);
	}
	return 0;
}

/* MemTotal and MemAvailable from /proc/meminfo in MiB; -1 for what cannot be read. */
static void meminfo(long long *total_mib, long long *avail_mib)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kb;

	*total_mib = *avail_mib = -1;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
			*total_mib = kb / 1024;
		else if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
			*avail_mib = kb / 1024;
	}
	fclose(f);
}

/* vdi-hv's serial log rotated at its cap (PATH.1): it goes with the log. */
static void remove_rotated_serial(struct host *h, const struct desktop *d)
{
	char path[PATH_LEN + 2];

	path_of(h, d, DESKTOP_FILE_SERIAL, path);
	strcat(path, ".1"); /* room: PATH_LEN + 2 */
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("desktop=%s: cannot remove %s", d->d_id, path);
}

/* Empties (or makes) a log; a symlink there is refused, not followed. 0 or -errno. */
static int truncate_file(const char *path)
{
	int fd = file_open_nofollow(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* The uid d's VMM runs as: hostd running as root gives each vdi-hv its own, the lowest
 * of [vdi-hv] uid_base + 0 .. max_desktops - 1 no other VMM of this host holds. 0 (the
 * VMM runs as hostd) otherwise: QEMU has -sandbox and keeps hostd's user. */
static uid_t pick_vmm_uid(const struct host *h, const struct desktop *d)
{
	const struct conf *c = h->h_conf;

	if (d->d_engine != DESKTOP_ENGINE_VDIHV || geteuid() != 0)
		return 0;
	for (int slot = 0; slot < c->max_desktops; slot++) {
		uid_t uid = (uid_t)c->vdihv_uid_base + (uid_t)slot;
		bool held = false;

		for (size_t i = 0; i < h->h_count && !held; i++) {
			const struct desktop *o = h->h_desktops[i];

			held = o != d && o->d_vmm_uid == uid &&
			       (o->d_state == DESKTOP_STARTING || o->d_state == DESKTOP_RUNNING ||
				o->d_state == DESKTOP_STOPPING);
		}
		if (!held)
			return uid;
	}
	return 0; /* not reached: fewer desktops than slots */
}

int host_start(struct host *h, const char *id, json_t **out, char *err, size_t errlen)
{
	char run_dir[PATH_LEN], log_path[PATH_LEN], serial[PATH_LEN], exit_path[PATH_LEN];
	char pid_path[PATH_LEN];
	struct vmm_args args = {.va_count = 0};
	struct vmm_proc p;
	struct desktop *d;
	const char *why, *failed;
	long long total, avail;
	int r;

	pthread_mutex_lock(&h->h_lock);
	d = find_or_fail(h, id, err, errlen);
	if (!d) {
		r = -ENOENT;
		goto out_unlock;
	}
	if (d->d_state == DESKTOP_STARTING || d->d_state == DESKTOP_RUNNING) {
		r = 0; /* already: starting twice is not an error */
		goto out_reply;
	}
	if (d->d_state == DESKTOP_STOPPING) {
		snprintf(err, errlen, "desktop '%s' is stopping; start it once it has stopped", id);
		r = -EBUSY;
		goto out_unlock;
	}
	r = recheck_templates(h, d, err, errlen);
	if (r < 0)
		goto out_unlock;
	if (engine_of(d)->en_unavailable && (why = engine_of(d)->en_unavailable())) {
		snprintf(err, errlen, "%s cannot run desktops on this host: %s",
			 engine_of(d)->en_name, why);
		r = -ENODEV;
		goto out_unlock;
	}
	meminfo(&total, &avail);
	if (avail >= 0 && avail < d->d_memory_mib) {
		snprintf(err, errlen, "not enough free memory: %lld MiB available, %d needed",
			 avail, d->d_memory_mib);
		r = -ENOMEM;
		goto out_unlock;
	}
	path_of(h, d, DESKTOP_FILE_RUN_DIR, run_dir);
	path_of(h, d, DESKTOP_FILE_VMM_LOG, log_path);
	path_of(h, d, DESKTOP_FILE_SERIAL, serial);
	path_of(h, d, DESKTOP_FILE_EXIT, exit_path);
	path_of(h, d, DESKTOP_FILE_PID, pid_path);
	clean_run_dir(h, d);
	remove_rotated_serial(h, d); /* the serial log starts empty, its older part too */
	/* a symlink planted at any of these is refused with a message naming it */
	failed = run_dir;
	r = definitions_run_dir(run_dir);
	if (r == 0 && (r = truncate_file(serial)) < 0)
		failed = serial;
	if (r == 0 && (r = truncate_file(log_path)) < 0)
		failed = log_path;
	if (r < 0) {
		definitions_file_error(failed, r, err, errlen);
		log_warnx("desktop=%s: %s", d->d_id, err);
		r = -EIO;
		goto out_unlock;
	}
	d->d_vmm_uid = pick_vmm_uid(h, d);
	r = engine_of(d)->en_command(h->h_conf, d, &args);
	if (r == 0)
		r = vmm_spawn(h->h_self, &args, log_path, exit_path, pid_path, &p);
	vmm_args_free(&args);
	if (r < 0) {
		hostd_metrics_vmm_failure(d->d_engine);
		snprintf(err, errlen, "cannot start %s: %s", engine_of(d)->en_name, strerror(-r));
		clean_run_dir(h, d);
		r = -EIO;
		goto out_unlock;
	}
	json_decref(d->d_failure);
	d->d_failure = NULL;
	d->d_vmm_pid = p.vp_vmm;
	d->d_vmm_start = p.vp_vmm_start;
	d->d_monitor_pid = p.vp_monitor;
	d->d_monitor_is_child = true;
	d->d_state = DESKTOP_STARTING;
	d->d_started = (long long)time(NULL);
	d->d_deadline = monotonic_seconds() + h->h_conf->start_timeout;
	d->d_stop_requested = false;
	d->d_stop_stage = 0;
	d->d_fail_reason = NULL;
	d->d_vnc = engine_of(d)->en_has_vnc();
	d->d_watch_fd = vmm_watch(p.vp_monitor, p.vp_monitor_start);
	log_info("desktop=%s starting: %s pid=%d", d->d_id, engine_of(d)->en_name, (int)p.vp_vmm);
	hostd_metrics_vmm_start(d->d_engine);
	definitions_save(h->h_conf, d);
	if (d->d_watch_fd < 0)
		vmm_gone(h, d); /* ended at once; the exit file says how */
out_reply:
	*out = desktop_to_json(d, false);
out_unlock:
	pthread_mutex_unlock(&h->h_lock);
	return r;
}

/* The next step of a stop that is taking too long. */
static void escalate(struct host *h, struct desktop *d)
{
	switch (d->d_stop_stage) {
	case 0:
		log_info("desktop=%s: still running %ds after the shutdown request; quitting it",
			 d->d_id, h->h_conf->stop_timeout);
		d->d_stop_stage = 1;
		d->d_deadline = monotonic_seconds() + ESCALATE_S;
		if (engine_of(d)->en_quit(h->h_conf, d) == 0)
			break;
		/* no answer on the control socket: kill it now */
		__attribute__((fallthrough));
	case 1:
		log_warnx("desktop=%s: killing %s pid=%d", d->d_id, engine_of(d)->en_name,
			  (int)d->d_vmm_pid);
		d->d_stop_stage = 2;
		d->d_deadline = monotonic_seconds() + ESCALATE_S;
		vmm_signal(d->d_vmm_pid, d->d_vmm_start, SIGKILL);
		break;
	default:
		log_err("desktop=%s: %s pid=%d survives SIGKILL", d->d_id, engine_of(d)->en_name,
			(int)d->d_vmm_pid);
		d->d_deadline = monotonic_seconds() + 60;
	}
}

static const struct json_field stop_fields[] = {
    {"force", JSON_FIELD_BOOL, false}, {"timeout", JSON_FIELD_INT, false}, JSON_FIELDS_END};

int host_stop(struct host *h, const char *id, const json_t *body, json_t **out, char *err,
	      size_t errlen)
{
	bool force = body && json_get_bool(body, "force", false);
	long long timeout = body ? json_get_int(body, "timeout", -1) : -1;
	struct desktop *d;
	char why[256];
	int r = 0;

	if (body && json_check_fields(body, stop_fields, err, errlen) < 0)
		return -EINVAL;
	if (timeout != -1 && (timeout < 0 || timeout > 3600)) {
		snprintf(err, errlen, "timeout must be from 0 to 3600 seconds");
		return -EINVAL;
	}
	if (timeout == -1)
		timeout = h->h_conf->stop_timeout;
	pthread_mutex_lock(&h->h_lock);
	d = find_or_fail(h, id, err, errlen);
	if (!d) {
		r = -ENOENT;
		goto out_unlock;
	}
	if (has_vmm(d) && d->d_state != DESKTOP_STOPPING) {
		d->d_state = DESKTOP_STOPPING;
		d->d_stop_requested = true;
		d->d_stop_stage = 0;
		d->d_deadline = monotonic_seconds() + (double)timeout;
		if (force || timeout == 0 ||
		    engine_of(d)->en_powerdown(h->h_conf, d, why, sizeof(why)) < 0)
			escalate(h, d);
		log_info("desktop=%s stopping%s", d->d_id, force ? " (forced)" : "");
	} else if (d->d_state == DESKTOP_STOPPING && force && d->d_stop_stage == 0) {
		escalate(h, d);
	}
	*out = desktop_to_json(d, false);
out_unlock:
	pthread_mutex_unlock(&h->h_lock);
	return r;
}

int host_destroy(struct host *h, const char *id, char *err, size_t errlen)
{
	static const enum desktop_file files[] = {DESKTOP_FILE_DISK, DESKTOP_FILE_SERIAL,
						  DESKTOP_FILE_VMM_LOG};
	char path[PATH_LEN];
	struct desktop *d;
	size_t i;
	int r;

	pthread_mutex_lock(&h->h_lock);
	d = find_or_fail(h, id, err, errlen);
	if (!d) {
		r = -ENOENT;
		goto out_unlock;
	}
	if (has_vmm(d)) {
		snprintf(err, errlen, "desktop '%s' is %s: stop it first", id,
			 desktop_state_name(d->d_state));
		r = -EBUSY;
		goto out_unlock;
	}
	r = definitions_remove(h->h_conf, d);
	if (r < 0) {
		snprintf(err, errlen, "cannot remove the desktop's definition: %s", strerror(-r));
		r = -EIO;
		goto out_unlock;
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		path_of(h, d, files[i], path);
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("desktop=%s: cannot remove %s", d->d_id, path);
	}
	remove_rotated_serial(h, d);
	clean_run_dir(h, d);
	tickets_revoke(h->h_tickets, d->d_id);
	for (i = 0; h->h_desktops[i] != d; i++)
		;
	h->h_desktops[i] = h->h_desktops[--h->h_count];
	log_info("desktop=%s destroyed", d->d_id);
	desktop_free(d);
out_unlock:
	pthread_mutex_unlock(&h->h_lock);
	return r;
}

int host_get(struct host *h, const char *id, json_t **out, char *err, size_t errlen)
{
	struct desktop *d;
	int r = 0;

	pthread_mutex_lock(&h->h_lock);
	d = find_or_fail(h, id, err, errlen);
	if (d)
		*out = desktop_to_json(d, false);
	else
		r = -ENOENT;
	pthread_mutex_unlock(&h->h_lock);
	return r;
}

static int by_id(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "id")),
		      json_string_value(json_object_get(*(json_t *const *)b, "id")));
}

json_t *host_list(struct host *h)
{
	json_t *arr = json_array(), **items;
	size_t n;

	pthread_mutex_lock(&h->h_lock);
	n = h->h_count;
	items = calloc(n + 1, sizeof(*items));
	for (size_t i = 0; items && i < n; i++)
		items[i] = desktop_to_json(h->h_desktops[i], false);
	pthread_mutex_unlock(&h->h_lock);
	if (!items)
		return arr;
	qsort(items, n, sizeof(*items), by_id);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, items[i]);
	free(items);
	return json_pack("{s:o}", "desktops", arr);
}

static const struct json_field ticket_fields[] = {{"ticket", JSON_FIELD_STRING, true},
						  {"expires", JSON_FIELD_INT, true},
						  {"view_only", JSON_FIELD_BOOL, false},
						  {"password", JSON_FIELD_STRING, false},
						  JSON_FIELDS_END};

int host_set_ticket(struct host *h, const char *id, const json_t *body, json_t **out, char *err,
		    size_t errlen)
{
	const char *ticket = json_get_string(body, "ticket");
	const char *password = json_get_string(body, "password");
	long long expires = json_get_int(body, "expires", 0), now = (long long)time(NULL);
	bool view_only = json_get_bool(body, "view_only", false);
	struct desktop *d;
	int r;

	if (json_check_fields(body, ticket_fields, err, errlen) < 0)
		return -EINVAL;
	if (!tickets_valid(ticket)) {
		snprintf(err, errlen, "ticket must be %d to %d characters of A-Z a-z 0-9 _ -",
			 TICKET_MIN_LEN, TICKET_MAX_LEN);
		return -EINVAL;
	}
	if (expires <= now || expires > now + h->h_conf->ticket_max_lifetime) {
		snprintf(err, errlen,
			 "expires must be a time (unix seconds) in the future, at most %d "
			 "s away",
			 h->h_conf->ticket_max_lifetime);
		return -EINVAL;
	}
	if (password && (strlen(password) < 1 || strlen(password) > 64 ||
			 strspn(password, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					  "0123456789-_.") != strlen(password))) {
		snprintf(err, errlen, "password must be 1 to 64 characters of A-Z a-z 0-9 - _ .");
		return -EINVAL;
	}
	pthread_mutex_lock(&h->h_lock);
	d = find_or_fail(h, id, err, errlen);
	if (!d) {
		r = -ENOENT;
		goto out_unlock;
	}
	if (d->d_state != DESKTOP_RUNNING) {
		snprintf(err, errlen, "desktop '%s' is %s, not running", id,
			 desktop_state_name(d->d_state));
		r = -EBUSY;
		goto out_unlock;
	}
	if (!d->d_vnc) {
		snprintf(err, errlen, "desktop '%s' has no VNC display (its %s has none)", id,
			 engine_of(d)->en_name);
		r = -ENOTSUP;
		goto out_unlock;
	}
	r = engine_of(d)->en_set_ticket(h->h_conf, d, password ? password : ticket, expires,
					view_only, err, errlen);
	if (r < 0) {
		r = r == -ENOTSUP ? r : -EIO;
		goto out_unlock;
	}
	r = tickets_add(h->h_tickets, ticket, d->d_id, expires, view_only, now);
	if (r == -EEXIST)
		snprintf(err, errlen, "this ticket is registered already");
	else if (r == -ENOSPC)
		snprintf(err, errlen, "too many live tickets on this host");
	else if (r < 0)
		snprintf(err, errlen, "cannot register the ticket");
	if (r == 0) {
		*out = json_pack("{s:s, s:I, s:b}", "desktop", d->d_id, "expires",
				 (json_int_t)expires, "view_only", view_only);
		log_info("desktop=%s: ticket registered, expires in %llds%s", d->d_id,
			 expires - now, view_only ? ", view only" : "");
	}
out_unlock:
	pthread_mutex_unlock(&h->h_lock);
	return r;
}

static long long clamp(long long v, long long lo, long long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

json_t *host_capacity_json(const char *host_id, const struct host_figures *f)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "host_id", host_id, "cpus",
			 (json_int_t)clamp(f->hf_cpus, 0, HOST_CPUS_MAX), "memory_total_mib",
			 (json_int_t)clamp(f->hf_memory_total_mib, -1, HOST_MEMORY_MAX_MIB),
			 "memory_available_mib",
			 (json_int_t)clamp(f->hf_memory_available_mib, -1, HOST_MEMORY_MAX_MIB),
			 "memory_committed_mib",
			 (json_int_t)clamp(f->hf_memory_committed_mib, 0, HOST_MEMORY_MAX_MIB),
			 "desktops_running", (json_int_t)clamp(f->hf_running, 0, HOST_DESKTOPS_MAX),
			 "desktops_defined", (json_int_t)clamp(f->hf_defined, 0, HOST_DESKTOPS_MAX),
			 "max_desktops",
			 (json_int_t)clamp(f->hf_max_desktops, 0, HOST_DESKTOPS_MAX));
}

static json_t *capacity_locked(struct host *h)
{
	struct host_figures f = {.hf_cpus = sysconf(_SC_NPROCESSORS_ONLN),
				 .hf_defined = (long long)h->h_count,
				 .hf_max_desktops = h->h_conf->max_desktops};
	json_t *o;

	meminfo(&f.hf_memory_total_mib, &f.hf_memory_available_mib);
	for (size_t i = 0; i < h->h_count; i++) {
		if (has_vmm(h->h_desktops[i])) {
			f.hf_running++;
			/* ints, at most max_desktops (<= 10000) of them: no overflow in
			 * long long; host_capacity_json() clamps the sum */
			f.hf_memory_committed_mib += h->h_desktops[i]->d_memory_mib;
		}
	}
	o = host_capacity_json(h->h_id, &f);
	if (o) {
		json_object_set_new(o, "engines",
				    json_pack("{s:o, s:o}", "qemu", engine_qemu.en_describe(),
					      "vdi-hv", engine_vdihv.en_describe()));
		json_object_set_new(o, "default_engine",
				    json_string(h->h_conf->default_engine == CONF_ENGINE_VDIHV
						    ? engine_vdihv.en_name
						    : engine_qemu.en_name));
	}
	return o;
}

json_t *host_capacity(struct host *h)
{
	json_t *o;

	pthread_mutex_lock(&h->h_lock);
	o = capacity_locked(h);
	pthread_mutex_unlock(&h->h_lock);
	return o;
}

json_t *host_heartbeat(struct host *h)
{
	json_t *desktops = json_array(), *o;

	pthread_mutex_lock(&h->h_lock);
	for (size_t i = 0; i < h->h_count; i++) {
		const struct desktop *d = h->h_desktops[i];
		json_t *item = json_pack("{s:s, s:s, s:s}", "id", d->d_id, "state",
					 desktop_state_name(d->d_state), "engine",
					 desktop_engine_name(d->d_engine));

		if (item && d->d_failure) /* the VMM log's tail stays here: hostd's own */
			json_object_set_new(
			    item, "failure",
			    json_pack("{s:O?, s:O?, s:O?}", "reason",
				      json_object_get(d->d_failure, "reason"), "exit",
				      json_object_get(d->d_failure, "exit"), "serial_tail",
				      json_object_get(d->d_failure, "serial_tail")));
		json_array_append_new(desktops, item);
	}
	o = json_pack("{s:s, s:I, s:o, s:o}", "host_id", h->h_id, "time", (json_int_t)time(NULL),
		      "capacity", capacity_locked(h), "desktops", desktops);
	pthread_mutex_unlock(&h->h_lock);
	return o;
}

void host_tick(struct host *h)
{
	pthread_mutex_lock(&h->h_lock);
	for (size_t i = 0; i < h->h_count; i++) {
		struct desktop *d = h->h_desktops[i];

		if (!has_vmm(d))
			continue;
		if (d->d_watch_fd < 0 || vmm_ended(d->d_watch_fd)) {
			vmm_gone(h, d);
			continue;
		}
		if (d->d_engine == DESKTOP_ENGINE_QEMU) {
			/* vdi-hv caps its serial log itself (--serial-max); QEMU does not */
			char serial[PATH_LEN];

			path_of(h, d, DESKTOP_FILE_SERIAL, serial);
			if (vmm_log_cap(serial, VMM_SERIAL_MAX) == 1)
				log_info("desktop=%s: serial log past %lld bytes: emptied", d->d_id,
					 VMM_SERIAL_MAX);
		}
		if (d->d_state == DESKTOP_STARTING) {
			if (engine_of(d)->en_probe(h->h_conf, d) == 0) {
				d->d_state = DESKTOP_RUNNING;
				log_info("desktop=%s running: %s pid=%d answers", d->d_id,
					 engine_of(d)->en_name, (int)d->d_vmm_pid);
			} else if (monotonic_seconds() > d->d_deadline && !d->d_fail_reason) {
				d->d_fail_reason = "the VMM did not answer on its control socket "
						   "within start_timeout";
				d->d_stop_stage = 2;
				d->d_deadline = monotonic_seconds() + 60;
				vmm_signal(d->d_vmm_pid, d->d_vmm_start, SIGKILL);
			}
		} else if (d->d_state == DESKTOP_STOPPING && monotonic_seconds() > d->d_deadline) {
			escalate(h, d);
		}
	}
	pthread_mutex_unlock(&h->h_lock);
}

int host_vnc_socket(struct host *h, const char *id, char *path, size_t len,
		    enum desktop_engine *engine)
{
	struct desktop *d;
	int r = 0;

	pthread_mutex_lock(&h->h_lock);
	d = desktop_id_valid(id) ? find(h, id) : NULL;
	if (!d)
		r = -ENOENT;
	else if (d->d_state != DESKTOP_RUNNING || !d->d_vnc)
		r = -EBUSY;
	else
		r = desktop_path(h->h_conf, d, DESKTOP_FILE_VNC, path, len);
	if (r == 0 && engine)
		*engine = d->d_engine;
	pthread_mutex_unlock(&h->h_lock);
	return r;
}

struct tickets *host_tickets(struct host *h)
{
	return h->h_tickets;
}
