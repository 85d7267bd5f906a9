/* vdi-hv's sandbox (see sandbox.h and SANDBOX in vdi-hv(1)). The allow-list is the one
 * table below. It was taken from `strace -f` of vdi-hv in the KVM box running the test
 * guests (framebuffer, virtio_blk, serial) with a raw disk and an overlay, a capped serial
 * file that rotated, the control socket and VNC viewers (a good and a wrong ticket), from
 * the filter to exit; a few calls on paths those runs did not take were added and say why
 * (crash dumps, the terminal, writes through virtio-blk). Calls made only while the
 * machine is assembled (open, socket, bind, the KVM set-up ioctls) are left out on
 * purpose. Anything else kills the process with SIGSYS, which hostd reports as a
 * forbidden system call. */
#include "hv/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

/* Descriptors the running VMM may hold: its devices, disks and sockets take a few dozen;
 * viewers and control clients are capped well below this. libvncserver keeps its sockets
 * in fd_sets, so this also keeps every descriptor under FD_SETSIZE. */
#define SANDBOX_NOFILE 256

enum rule_arg {
	ARG_ANY,	  /* any arguments */
	ARG_IOCTL,	  /* ioctl: request number in ioctl_allowed[] */
	ARG_NO_EXEC,	  /* mmap, mprotect: PROT_EXEC not in the protection */
	ARG_THREAD,	  /* clone: CLONE_THREAD set, a thread rather than a process */
	ARG_OWN_PROCESS,  /* tgkill: only threads of this process */
	ARG_SET_NAME,	  /* prctl: PR_SET_NAME only */
	ARG_ERRNO_ENOSYS, /* not allowed, but fails with ENOSYS (the C library falls back) */
	ARG_ERRNO_EPERM,  /* not allowed, but fails with EPERM (callers cope) */
	ARG_ADD_FILTER,	  /* seccomp: only to add a filter (which can only forbid more) */
};

struct rule {
	int r_syscall;
	enum rule_arg r_arg;
};

#define ALLOW(name)                                                                                \
	{                                                                                          \
		SCMP_SYS(name), ARG_ANY                                                            \
	}
#define ALLOW_IF(name, arg)                                                                        \
	{                                                                                          \
		SCMP_SYS(name), arg                                                                \
	}

static const struct rule rules[] = {
    /* The guest: KVM_RUN and interrupts on the vCPU and VM descriptors, the
     * framebuffer's dirty log; the terminal on standard input (raw mode is undone at
     * exit). Every request number is listed in ioctl_allowed[]. */
    ALLOW_IF(ioctl, ARG_IOCTL),
    /* Disks (virtio-blk, the overlay), the serial log (capped: ftruncate), console and
     * log on the standard streams, eventfds and pipes between threads. */
    ALLOW(read),
    ALLOW(write),
    ALLOW(readv),
    ALLOW(writev),
    ALLOW(pread64),
    ALLOW(pwrite64),
    ALLOW(preadv),
    ALLOW(pwritev),
    ALLOW(fdatasync),
    ALLOW(fsync),
    ALLOW(ftruncate),
    ALLOW(fstat),
    ALLOW(newfstatat),
    ALLOW(fcntl),
    ALLOW(close),
    /* The control socket and VNC viewers on the sockets listening already: accept,
     * talk, close. No socket(), connect() or bind(). */
    ALLOW(accept4),
    ALLOW(recvfrom),
    ALLOW(recvmsg),
    ALLOW(sendto),
    ALLOW(sendmsg),
    ALLOW(shutdown),
    ALLOW(getsockopt),
    ALLOW(setsockopt),
    ALLOW(getpeername),
    ALLOW(getsockname),
    /* Waiting: the main loop's and the display thread's poll, libvncserver's select
     * (pselect6 in glibc). */
    ALLOW(poll),
    ALLOW(ppoll),
    ALLOW(pselect6),
    /* Memory: malloc, thread stacks. Nothing becomes executable. */
    ALLOW_IF(mmap, ARG_NO_EXEC),
    ALLOW_IF(mprotect, ARG_NO_EXEC),
    ALLOW(munmap),
    ALLOW(mremap),
    ALLOW(madvise),
    ALLOW(brk),
    /* Threads (vCPUs, started after the filter) and their locks. clone3's flags are in
     * memory seccomp cannot read: it fails with ENOSYS and glibc falls back to clone,
     * whose flags are checked. */
    ALLOW_IF(clone, ARG_THREAD),
    ALLOW_IF(clone3, ARG_ERRNO_ENOSYS),
    ALLOW(futex),
    ALLOW(set_robust_list),
    ALLOW(rseq),
    ALLOW(sched_yield),
    ALLOW(gettid),
    ALLOW(getpid),
    ALLOW(exit),
    ALLOW(exit_group),
    ALLOW_IF(prctl, ARG_SET_NAME), /* a vCPU thread names itself */
    /* and narrows what it may do further (sandbox_enter_vcpu()) */
    ALLOW_IF(seccomp, ARG_ADD_FILTER),
    /* Signals: vCPU kicks (tgkill to our own threads), SIGTERM to stop, abort(). */
    ALLOW(rt_sigreturn),
    ALLOW(rt_sigprocmask),
    ALLOW(rt_sigaction),
    ALLOW_IF(tgkill, ARG_OWN_PROCESS),
    ALLOW(restart_syscall),
    /* Time: the main loop's tick, timestamps in the log, the RTC. */
    ALLOW(clock_gettime),
    ALLOW(clock_nanosleep),
    ALLOW(nanosleep),
    ALLOW(gettimeofday),
    /* VNC authentication's challenges (OpenSSL's RAND). */
    ALLOW(getrandom),
    /* vdi-hv removes its sockets on the way out; under the sandbox it may not remove
     * files, the call fails and the sockets stay for whoever made the directory. */
    ALLOW_IF(unlink, ARG_ERRNO_EPERM),
    ALLOW_IF(unlinkat, ARG_ERRNO_EPERM),
};

/* ioctl requests of the running VMM. The set-up ones (KVM_CREATE_*, KVM_SET_CPUID2,
 * KVM_SET_SREGS...) are done by then. */
static const unsigned long ioctl_allowed[] = {
    /* vCPUs, interrupts (the PIC's lines, virtio's MSIs), the framebuffer's dirty pages */
    KVM_RUN,
    KVM_IRQ_LINE,
    KVM_SIGNAL_MSI,
    KVM_GET_DIRTY_LOG,
    /* the registers logged when a guest crashes */
    KVM_GET_REGS,
    KVM_GET_SREGS,
    /* the console's terminal: isatty(), its mode restored at exit */
    TCGETS,
    TCSETS,
    /* libvncserver makes viewer sockets non-blocking */
    FIONBIO,
};

static bool active;

bool sandbox_active(void)
{
	return active;
}

/* The new root: an empty tmpfs mounted over an existing directory in the private mount
 * namespace (nobody else sees it), made the root with pivot_root, the old one detached. */
static const char *const root_mount_points[] = {"/tmp", "/mnt", "/var/tmp"};

static int mount_empty_root(void)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	size_t i;

	/* Nothing done here may reach the host's mount table. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	for (i = 0; i < sizeof(root_mount_points) / sizeof(root_mount_points[0]); i++)
		if (mount("vdi-hv-root", root_mount_points[i], "tmpfs", flags,
			  "size=4k,nr_inodes=8,mode=0555") == 0)
			break;
	if (i == sizeof(root_mount_points) / sizeof(root_mount_points[0]))
		return -errno;
	if (chdir(root_mount_points[i]) < 0)
		return -errno;
	/* pivot_root(".", ".") stacks the old root under the new one, then it is detached.
	 * Where the old root cannot be pivoted (an initramfs), the new one is moved over it
	 * and entered with chroot; without CAP_SYS_CHROOT later there is no way back. */
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return -errno;
	} else if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0) {
		return -errno;
	}
	if (chdir("/") < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) < 0)
		return -errno;
	return 0;
}

int sandbox_confine(uid_t uid, gid_t gid)
{
	int r;

	if (geteuid() != 0)
		return 1;
	/* Files read on first use are read now: the time zone for log times. */
	tzset();
	if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return -errno;
	r = mount_empty_root();
	if (r < 0)
		return r;
	if (sethostname("vdi-hv", 6) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -errno;
	/* Changing uid drops every capability; check that it did and cannot be undone. */
	if (setresuid(0, 0, 0) == 0 || getuid() != uid || geteuid() != uid)
		return -EPERM;
	return 0;
}

int sandbox_limit_resources(void)
{
	struct rlimit nofile;
	const struct rlimit none = {0, 0};

	/* Lowered only: a hard limit below ours already (which only root could raise) stays. */
	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
		return -errno;
	if (nofile.rlim_max > SANDBOX_NOFILE)
		nofile.rlim_max = SANDBOX_NOFILE;
	if (nofile.rlim_cur > nofile.rlim_max)
		nofile.rlim_cur = nofile.rlim_max;
	/* A core dump would hold all of guest RAM: the guest's data, written to disk. */
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_CORE, &none) < 0)
		return -errno;
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, const struct rule *r)
{
	int rc = 0;

	switch (r->r_arg) {
	case ARG_ANY: return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 0);
	case ARG_IOCTL:
		/* The request is compared on its low 32 bits: an int sign-extended by a
		 * caller is still the same request. */
		for (size_t i = 0; !rc && i < sizeof(ioctl_allowed) / sizeof(ioctl_allowed[0]); i++)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 1,
					      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu,
						      ioctl_allowed[i] & 0xffffffffu));
		return rc;
	case ARG_NO_EXEC:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 1,
					SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	case ARG_THREAD:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 1,
					SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	case ARG_OWN_PROCESS:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 1,
					SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	case ARG_SET_NAME:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 1,
					SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	case ARG_ERRNO_ENOSYS:
		return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), r->r_syscall, 0);
	case ARG_ERRNO_EPERM: return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), r->r_syscall, 0);
	case ARG_ADD_FILTER:
		/* libseccomp also asks which actions the kernel has */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 1,
				      SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER));
		return rc ? rc
			  : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->r_syscall, 1,
					     SCMP_A0(SCMP_CMP_EQ, SECCOMP_GET_ACTION_AVAIL));
	}
	return -EINVAL;
}

int sandbox_enter(void)
{
	scmp_filter_ctx ctx;
	int rc = 0;

	/* Forbidden calls kill the process, not just the thread: a half-dead VMM would hide
	 * what happened. */
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	/* no_new_privs (libseccomp's default, made explicit); every thread gets the filter,
	 * the display thread started before it too. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	if (!rc)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; !rc && i < sizeof(rules) / sizeof(rules[0]); i++) {
		rc = add_rule(ctx, &rules[i]);
		if (rc)
			log_warnx("sandbox: rule for system call %d: %s", rules[i].r_syscall,
				  strerror(-rc));
	}
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc)
		return rc < 0 ? rc : -EINVAL;
	active = true;
	return 0;
}

/* What a vCPU thread never does, on top of the process's list: it runs the guest and
 * the devices it exits to (port and MMIO I/O, disk reads and writes, the serial log,
 * interrupts, kicks of other vCPUs), so the network, new threads, waiting on other
 * descriptors and randomness are left to the main and display threads. A device
 * model taken over by the guest then cannot reach a viewer's or the control socket. */
static const int vcpu_forbidden[] = {
    SCMP_SYS(accept4),	   SCMP_SYS(recvfrom),	  SCMP_SYS(recvmsg),	SCMP_SYS(sendto),
    SCMP_SYS(sendmsg),	   SCMP_SYS(shutdown),	  SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
    SCMP_SYS(getpeername), SCMP_SYS(getsockname), SCMP_SYS(clone),	SCMP_SYS(clone3),
    SCMP_SYS(poll),	   SCMP_SYS(ppoll),	  SCMP_SYS(pselect6),	SCMP_SYS(getrandom),
    SCMP_SYS(unlink),	   SCMP_SYS(unlinkat),	  SCMP_SYS(seccomp),
};

int sandbox_enter_vcpu(void)
{
	scmp_filter_ctx ctx;
	int rc = 0;

	if (!active)
		return 1;
	ctx = seccomp_init(SCMP_ACT_ALLOW); /* the process's list still applies */
	if (!ctx)
		return -ENOMEM;
	/* no_new_privs is set already (sandbox_enter()); prctl() is not allowed any more */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; !rc && i < sizeof(vcpu_forbidden) / sizeof(vcpu_forbidden[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, vcpu_forbidden[i], 0);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc < 0 ? rc : rc ? -EINVAL : 0;
}
