/* Puts a kernel into guest memory and describes the machine to it: Linux bzImage
 * (boot protocol >= 2.06, 64-bit entry) with boot_params, and ELF64 kernels (PVH entry
 * when the image carries the Xen PVH note, else the plain 64-bit entry). Knows the
 * guest memory layout below 1 MiB; does not create devices. */
#ifndef VDI_HV_LOADER_H
#define VDI_HV_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "hv/vm.h"

/* The linear framebuffer as the kernel should see it (screen_info, VIDEO_TYPE_VLFB). */
struct boot_display {
	uint64_t bd_base;
	uint64_t bd_size;
	unsigned bd_width, bd_height, bd_stride;
};

struct boot_spec {
	const char *bs_kernel;
	const char *bs_initrd;		       /* may be NULL */
	const char *bs_cmdline;		       /* may be NULL */
	const struct boot_display *bs_display; /* may be NULL */
};

/* Loads spec into vm's RAM and fills entry. Returns 0, or a negative errno with a
 * one-line reason in err (e.g. "kernel.bin: not a bzImage or ELF64 kernel"). */
int loader_load(struct vm *vm, const struct boot_spec *spec, struct vm_entry *entry, char *err,
		size_t errlen);

#endif
