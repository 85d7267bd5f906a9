/* vdi-hv's sandbox: resource limits and a seccomp allow-list of system calls, entered
 * once every file, socket and device is open and before the first guest instruction
 * runs, so that a guest (or a VNC viewer) that takes over the process can only use what
 * the running VMM already holds. See SANDBOX in vdi-hv(1). */
#ifndef VDI_HV_SANDBOX_H
#define VDI_HV_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

/* Started as root: moves the process into new mount, network, IPC and UTS namespaces
 * whose root is an empty read-only tmpfs (the old root detached), then becomes uid:gid
 * with no supplementary groups and no capabilities. Descriptors already open (KVM, disks,
 * sockets, logs) stay usable; no path resolves any more. The process must still be
 * single-threaded. Started as another user: does nothing and returns 1. Returns 0 when
 * confined, or -errno. */
int sandbox_confine(uid_t uid, gid_t gid);

/* The user and group a VMM started as root runs as when none is given: nobody. */
#define SANDBOX_NOBODY 65534

/* Lowers RLIMIT_NOFILE to 256 (or keeps a lower one) and RLIMIT_CORE to 0 for the rest
 * of the process's life; descriptors already open stay. Returns 0, or -errno. */
int sandbox_limit_resources(void);

/* Sets no_new_privs and installs the allow-list on every thread of the process (any
 * call outside it kills the whole process with SIGSYS). Irreversible. Returns 0, or
 * -errno; on failure nothing is installed and the caller should not run the guest. */
int sandbox_enter(void);

/* In a vCPU thread, after sandbox_enter(): forbids it, on top of the process's list,
 * the calls only other threads make (sockets, new threads, poll, randomness, unlink);
 * any of them kills the process. Only this thread is affected. Returns 0, 1 when the
 * process has no sandbox (nothing to narrow), or -errno. */
int sandbox_enter_vcpu(void);

/* Whether sandbox_enter() succeeded: code that would open or rename files at run time
 * asks first and says why it cannot. */
bool sandbox_active(void);

#endif
