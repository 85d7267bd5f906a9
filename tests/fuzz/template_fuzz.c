/* libFuzzer harness for hostd's kernel and disk format checks (hostd/template.c), which
 * read template files an administrator put on a host. The first byte picks the engine
 * (bit 0) and the guest memory (the rest, in 8 MiB steps from 64 MiB); the rest is the
 * file, copied to an exact-size heap buffer so ASan sees any read past it. Checked: an
 * accepted kernel has one of the documented formats and a refused one a reason; an ELF
 * vdi-hv accepts starts with the ELF magic, a bzImage has "HdrS" at 0x202; QEMU refuses
 * no bzImage vdi-hv takes; a disk is "raw" or refused with a reason. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/template.h"

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const formats[] = {"bzImage", "ELF64 (PVH entry)",
					      "ELF64 (64-bit entry)", "multiboot", NULL};
	enum desktop_engine e;
	long long memory;
	const char *hv, *qemu, *disk;
	char why[300];
	unsigned char *file;

	if (size < 1)
		return 0;
	e = data[0] & 1 ? DESKTOP_ENGINE_VDIHV : DESKTOP_ENGINE_QEMU;
	memory = 64 + (long long)(data[0] >> 1) * 8;
	file = malloc(size - 1 ? size - 1 : 1);
	if (!file)
		abort();
	memcpy(file, data + 1, size - 1);

	why[0] = '\0';
	hv = template_kernel_format(file, size - 1, DESKTOP_ENGINE_VDIHV, memory, why, sizeof(why));
	if (hv ? !one_of(hv, formats) || !strcmp(hv, "multiboot") : !why[0])
		abort();
	if (hv && !strncmp(hv, "ELF64", 5) && memcmp(file, "\177ELF", 4))
		abort();
	if (hv && !strcmp(hv, "bzImage") && memcmp(file + 0x202, "HdrS", 4))
		abort();
	why[0] = '\0';
	qemu =
	    template_kernel_format(file, size - 1, DESKTOP_ENGINE_QEMU, memory, why, sizeof(why));
	if (qemu ? !one_of(qemu, formats) : !why[0])
		abort();
	if (hv && !strcmp(hv, "bzImage") && (!qemu || strcmp(qemu, "bzImage")))
		abort();
	why[0] = '\0';
	disk = template_disk_format(file, size - 1 < 512 ? size - 1 : 512,
				    (unsigned long long)(size - 1) * 512, e, why, sizeof(why));
	if (disk ? strcmp(disk, "raw") : !why[0])
		abort();
	free(file);
	return 0;
}
