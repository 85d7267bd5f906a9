/* libFuzzer harness for the i8042 port interface (hv/dev/i8042.c): the input is a
 * script of guest port reads and writes on 0x60 and 0x64 interleaved with host key and
 * mouse events, run against the real device with a fake VM (as tests/unit/i8042_test.c
 * does) that checks the interrupt lines stay consistent. A reset request ends the run. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/dev/i8042.h"
#include "hv/vm.h"
#include "lib/log.h"

static struct io_region regions[4];
static size_t nregions;
static bool irq_level[16];
static bool stopped;
static int fake_vm_storage;
static struct vm *const fake_vm = (struct vm *)&fake_vm_storage;

int vm_register_pio(struct vm *vm, const struct io_region *r)
{
	if (vm != fake_vm || nregions == 4)
		abort();
	regions[nregions++] = *r;
	return 0;
}

int vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	if (vm != fake_vm || (gsi != VM_IRQ_KEYBOARD && gsi != VM_IRQ_MOUSE))
		abort();
	irq_level[gsi] = level;
	if (irq_level[VM_IRQ_KEYBOARD] && irq_level[VM_IRQ_MOUSE])
		abort(); /* one output buffer: never both lines */
	return 0;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why)
{
	(void)reason, (void)why;
	if (vm != fake_vm)
		abort();
	stopped = true;
}

static const struct io_region *region_of(uint16_t port)
{
	for (size_t i = 0; i < nregions; i++)
		if (port >= regions[i].io_base && port < regions[i].io_base + regions[i].io_len)
			return &regions[i];
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct i8042 *kbc;
	size_t i = 0;

	log_set_level(LOG_LEVEL_ERR);
	nregions = 0;
	stopped = false;
	memset(irq_level, 0, sizeof(irq_level));
	kbc = i8042_create(fake_vm);
	if (!kbc)
		abort();
	while (i + 2 <= size && !stopped) {
		uint8_t op = data[i], arg = data[i + 1];
		uint16_t port = op & 1 ? 0x64 : 0x60;
		const struct io_region *r;
		uint8_t v = 0;

		i += 2;
		switch (op >> 1 & 3) {
		case 0: /* guest reads */
			r = region_of(port);
			r->io_read(r->io_opaque, port - r->io_base, &v, 1);
			break;
		case 1: /* guest writes */
			r = region_of(port);
			r->io_write(r->io_opaque, port - r->io_base, &arg, 1);
			break;
		case 2: /* host key: any keycode, even out of range */
			i8042_key_event(kbc, (unsigned)arg | (unsigned)(op >> 3) << 8, op & 0x80);
			break;
		case 3: /* host mouse motion */
			i8042_mouse_event(kbc, (int8_t)arg * (op >> 3 & 15), (int8_t)(arg * 7),
					  (int8_t)op >> 6, op >> 4 & 7);
			break;
		}
	}
	i8042_free(kbc);
	return 0;
}
