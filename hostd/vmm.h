/* Running VMM processes detached from hostd, so desktops outlive a hostd
 * restart: each VMM is started by a monitor (vdi-hostd re-executed as
 * `vdi-hostd --monitor`) in a session of its own; the monitor waits for the VMM
 * and records its wait status in a file. hostd watches the monitor with a
 * pidfd, whether it started it or found it after a restart. Pid files carry
 * start times so a reused pid is never mistaken for a VMM. Also: the last lines
 * of a serial log, for failure reports. Not engine-specific. */
#ifndef VDI_HOSTD_VMM_H
#define VDI_HOSTD_VMM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define VMM_ARGS_MAX 64

/* A VMM command line being built, and how to run it. */
struct vmm_args {
	char *va_argv[VMM_ARGS_MAX + 1];
	int va_count;
	bool va_overflow;
	uid_t va_uid;	       /* the user the VMM runs as (0: hostd's), for the pid file */
	bool va_pid_namespace; /* start it as the first process of a PID namespace */
};

void vmm_args_add(struct vmm_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds option, then its value formatted from fmt: two words. */
void vmm_args_opt(struct vmm_args *a, const char *option, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vmm_args_free(struct vmm_args *a);

struct vmm_proc {
	pid_t vp_vmm, vp_monitor;
	unsigned long long vp_vmm_start, vp_monitor_start; /* /proc/PID/stat field 22 */
	uid_t vp_uid; /* vmm_args' va_uid, kept in the pid file */
};

/* Starts argv through a monitor: the VMM's standard output and error go to
 * log_path (appended; a symlink there is refused), its wait status to exit_path when it ends, and
 * the pid file pid_path is written. self is the path of vdi-hostd (for --monitor). Returns 0 with p
 * filled, or -errno with a log line. */
int vmm_spawn(const char *self, const struct vmm_args *argv, const char *log_path,
	      const char *exit_path, const char *pid_path, struct vmm_proc *p);
/* The monitor's main: `vdi-hostd --monitor EXIT_PATH -- ARGV...`, started by
 * vmm_spawn with the pid pipe on fd 3. Returns the exit status for main(). */
int vmm_monitor_main(int argc, char **argv);

/* Reads a pid file. 0, -ENOENT when there is none, -EINVAL when damaged. */
int vmm_read_pidfile(const char *pid_path, struct vmm_proc *p);
/* Whether pid still runs and started at start (not a reused pid). */
bool vmm_alive(pid_t pid, unsigned long long start);
/* A pidfd for pid, checked against start after opening. -errno when it is gone.
 */
int vmm_watch(pid_t pid, unsigned long long start);
/* Whether the process behind a pidfd has ended. */
bool vmm_ended(int pidfd);
/* The wait status the monitor recorded. 0 or -ENOENT / -EINVAL. */
int vmm_read_exit(const char *exit_path, int *status);
/* Whether the VMM was killed by SIGSYS, which a seccomp filter (vdi-hv's sandbox,
 * QEMU's -sandbox) sends for a forbidden system call: the signal itself, or exit status
 * 128 + SIGSYS, as a launcher such as `kvmbox run` reports a program the signal ended
 * (vdi-hv's own exit statuses are 0, 1 and 2). */
bool vmm_killed_by_sandbox(int status);
/* "exited with status 1", "killed by signal 9 (Killed)", "was killed by its sandbox
 * (forbidden system call; signal 31)". */
void vmm_describe_status(int status, char *buf, size_t len);
/* Sends sig to pid if it is still the process that started at start. */
int vmm_signal(pid_t pid, unsigned long long start, int sig);

/* The last max_lines lines of a log (serial console or VMM output), terminal
 * escape sequences and control characters removed, each at most 200 characters.
 * A new JSON array, empty when the file is missing. */
json_t *vmm_log_tail(const char *path, int max_lines);

/* The most a VMM's serial log may hold (vdi-hv's own default cap, --serial-max). */
#define VMM_SERIAL_MAX (16LL << 20)
/* Empties the log at path when it holds more than max bytes: for QEMU, whose file
 * chardev has no size cap of its own (it writes with append=on, so it goes on at the
 * new end). A symlink there is not followed. Returns 1 when emptied, 0 when not (also
 * when missing), or -errno. */
int vmm_log_cap(const char *path, long long max);

#endif
