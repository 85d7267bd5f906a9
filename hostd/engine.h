/* The engines a desktop can run on, behind one table of operations: QEMU
 * (engine_qemu.c, driven over QMP) and vdi-hv (engine_vdihv.c, driven over its
 * control socket). Both put the desktop's disk in a copy-on-write overlay on
 * the template's base image, serve VNC on a unix socket with ticket passwords,
 * log the serial console to a file and shut the guest down politely before
 * forcing it. Spawning and watching the process is vmm.c. */
#ifndef VDI_HOSTD_ENGINE_H
#define VDI_HOSTD_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "hostd/conf.h"
#include "hostd/desktop.h"
#include "hostd/vmm.h"

/* How long hostd waits for one control-socket exchange. */
#define ENGINE_CALL_TIMEOUT_MS 2000

struct engine {
	const char *en_name;
	/* Start-up: probes the binary (and for QEMU, the acceleration). */
	void (*en_init)(const struct conf *c);
	/* Why desktops cannot start on this engine here, or NULL when they can. */
	const char *(*en_unavailable)(void);
	/* Facts for the capacity report. A new reference. */
	json_t *(*en_describe)(void);
	/* Makes the desktop's overlay disk at creation time (or leaves it to the
	 * VMM). */
	int (*en_create_disk)(const struct conf *c, const struct desktop *d, char *err,
			      size_t errlen);
	/* The VMM's command line. */
	int (*en_command)(const struct conf *c, const struct desktop *d, struct vmm_args *a);
	/* Whether the VMM started with its command line serves VNC. */
	bool (*en_has_vnc)(void);
	/* 0 once the VMM answers on its control socket (and runs the guest). */
	int (*en_probe)(const struct conf *c, const struct desktop *d);
	/* Asks the guest to shut down (ACPI power button, Ctrl-Alt-Del). */
	int (*en_powerdown)(const struct conf *c, const struct desktop *d, char *err,
			    size_t errlen);
	/* Ends the VMM at once, through its control socket. */
	int (*en_quit)(const struct conf *c, const struct desktop *d);
	/* Sets the VNC password and when it expires (unix seconds). */
	int (*en_set_ticket)(const struct conf *c, const struct desktop *d, const char *password,
			     long long expires, bool view_only, char *err, size_t errlen);
};

extern const struct engine engine_qemu, engine_vdihv;

static inline const struct engine *engine_of(const struct desktop *d)
{
	return d->d_engine == DESKTOP_ENGINE_QEMU ? &engine_qemu : &engine_vdihv;
}

#endif
