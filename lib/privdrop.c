#include "lib/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"

/* Only CAP_NET_BIND_SERVICE, permitted and effective. */
static int keep_bind_service(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};

	data[CAP_TO_INDEX(CAP_NET_BIND_SERVICE)].effective = CAP_TO_MASK(CAP_NET_BIND_SERVICE);
	data[CAP_TO_INDEX(CAP_NET_BIND_SERVICE)].permitted = CAP_TO_MASK(CAP_NET_BIND_SERVICE);
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

int privileges_drop(const char *user, const char *program, char *err, size_t errlen)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int r;

	if (geteuid() != 0)
		return 0;
	if (!user || !user[0]) {
		log_warnx("running as root: set `user` in the configuration so that %s runs "
			  "as an unprivileged user",
			  program);
		return 0;
	}
	r = getpwnam_r(user, &pw, buf, sizeof(buf), &found);
	if (!found) {
		snprintf(err, errlen, "user %s: %s", user, r ? strerror(r) : "no such user");
		return r ? -r : -ENOENT;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "user %s is root: name an unprivileged user", user);
		return -EINVAL;
	}
	if (prctl(PR_SET_KEEPCAPS, 1) < 0 || initgroups(user, pw.pw_gid) < 0 ||
	    setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) < 0 ||
	    setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) < 0 || (r = keep_bind_service()) < 0 ||
	    prctl(PR_SET_KEEPCAPS, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "cannot become user %s: %s", user, strerror(errno));
		return -errno;
	}
	if (setuid(0) == 0) { /* root must be gone for good */
		snprintf(err, errlen, "still able to become root after dropping to %s", user);
		return -EPERM;
	}
	log_info("running as user %s (uid %u, gid %u)", user, (unsigned)pw.pw_uid,
		 (unsigned)pw.pw_gid);
	return 0;
}
