/* A desktop as hostd knows it: its definition (engine, kernel, initrd, base
 * disk, command line, memory, vCPUs), its state and, while it runs, its VMM.
 * Validation of definitions from the API (ids, template paths confined to the
 * configured directories), the JSON forms for the API and the store, and where
 * a desktop's files live. No I/O on VMMs. */
#ifndef VDI_HOSTD_DESKTOP_H
#define VDI_HOSTD_DESKTOP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "hostd/conf.h"

#define DESKTOP_ID_MAX	    40
#define DESKTOP_CMDLINE_MAX 2048

enum desktop_state {
	DESKTOP_STOPPED,
	DESKTOP_STARTING, /* VMM spawned, control socket not answering yet */
	DESKTOP_RUNNING,
	DESKTOP_STOPPING, /* asked to shut down; forced off after stop_timeout */
	DESKTOP_FAILED,	  /* the VMM died or never came up; see d_failure */
};

enum desktop_engine { DESKTOP_ENGINE_QEMU, DESKTOP_ENGINE_VDIHV };

enum desktop_file {
	DESKTOP_FILE_JSON,    /* state_dir/desktops/<id>.json */
	DESKTOP_FILE_DISK,    /* state_dir/disks/<id>.qcow2 or .ovl */
	DESKTOP_FILE_SERIAL,  /* state_dir/logs/<id>.serial */
	DESKTOP_FILE_VMM_LOG, /* state_dir/logs/<id>.vmm */
	DESKTOP_FILE_RUN_DIR, /* run_dir/<id> */
	DESKTOP_FILE_PID,     /* run_dir/<id>/vmm.pid */
	DESKTOP_FILE_EXIT,    /* run_dir/<id>/exit: the VMM's wait status, by its monitor
			       */
	DESKTOP_FILE_CONTROL, /* run_dir/<id>/control.sock: QMP or the vdi-hv control
				 socket */
	DESKTOP_FILE_VNC,     /* run_dir/<id>/vnc.sock */
};

struct desktop {
	char d_id[DESKTOP_ID_MAX + 1];
	enum desktop_engine d_engine;
	char *d_kernel, *d_initrd, *d_base; /* absolute; d_kernel, d_initrd may be NULL */
	char *d_cmdline;		    /* may be NULL */
	int d_memory_mib, d_vcpus;
	long long d_created; /* unix seconds */
	enum desktop_state d_state;
	json_t *d_failure; /* {"reason", "exit", "serial_tail": [...]} or NULL */
	/* While a VMM exists (starting, running, stopping). */
	pid_t d_vmm_pid, d_monitor_pid;
	unsigned long long d_vmm_start; /* its /proc start time, against pid reuse */
	int d_watch_fd;			/* pidfd of the monitor (or of the VMM), -1 */
	bool d_monitor_is_child;	/* spawned by this hostd: reap it */
	long long d_started;		/* unix seconds */
	double d_deadline;		/* monotonic: start or stop timeout */
	int d_stop_stage;		/* 0 asked politely, 1 quit sent, 2 killed */
	bool d_stop_requested;		/* an exit now is a stop, not a failure */
	bool d_vnc;			/* the VMM serves VNC on DESKTOP_FILE_VNC */
	uid_t d_vmm_uid;		/* the VMM runs as this uid and gid; 0: as hostd */
	const char *d_fail_reason;	/* set when hostd ends a VMM because it failed */
};

const char *desktop_state_name(enum desktop_state s);
const char *desktop_engine_name(enum desktop_engine e);

/* Whether id is 1 to DESKTOP_ID_MAX characters of [A-Za-z0-9_-], starting
 * alphanumeric. */
bool desktop_id_valid(const char *id);

/* Resolves name (relative to one of the template directories, or absolute) to
 * an absolute path with symlinks resolved that lies inside one of them and is a
 * regular file. Returns a new string (free()), or NULL with *why set to what is
 * wrong, a phrase to follow the quoted name ("not found in the template
 * directories", "is outside the template directories", ...). */
char *desktop_find_template(const struct conf *c, const char *name, const char **why);
/* The same with the reason as a sentence in err ("template file 'NAME' ..."). */
char *desktop_resolve_template(const struct conf *c, const char *name, char *err, size_t errlen);

/* Checks a create request's fields other than the files (unknown fields, types,
 * id, engine, memory and vCPUs within [desktops] limits, cmdline, what needs a
 * kernel). Returns the engine (enum desktop_engine), or -EINVAL with the reason
 * in err. */
int desktop_check_request(const struct conf *c, const json_t *body, char *err, size_t errlen);

/* Builds a desktop from an API request body, checked field by field (unknown
 * fields, types, ranges, paths). Returns a new desktop in state stopped
 * (desktop_free()), or NULL with the reason in err. id is generated when the
 * body has none. */
struct desktop *desktop_from_request(const struct conf *c, const json_t *body, char *err,
				     size_t errlen);
/* Rebuilds a desktop from what desktop_to_json(..., true) stored. NULL when
 * damaged. */
struct desktop *desktop_from_saved(const json_t *saved, char *err, size_t errlen);
/* The API form (with runtime facts) or the stored form. A new reference. */
json_t *desktop_to_json(const struct desktop *d, bool for_store);
void desktop_free(struct desktop *d);

/* Writes the path of one of d's files into buf. Returns 0 or -ENAMETOOLONG. */
int desktop_path(const struct conf *c, const struct desktop *d, enum desktop_file f, char *buf,
		 size_t len);

/* The files an engine names on a VMM's command line. */
struct vm_paths {
	char vp_disk[4200], vp_serial[4200], vp_control[256], vp_vnc[256];
};

/* Fills p for d. Returns 0 or -ENAMETOOLONG. */
int desktop_vm_paths(const struct conf *c, const struct desktop *d, struct vm_paths *p);

#endif
