/* libFuzzer harness for what a guest controls in virtio-blk: the input is guest memory
 * (descriptor table, avail ring, request headers and buffers) plus a few driver choices
 * (queue size, features, avail index steps), run against the real PCI bus, virtio-pci
 * transport, virtqueue and virtio-blk code on a small image, with a fake VM whose RAM is
 * a heap buffer so ASan sees any access outside it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/dev/pci.h"
#include "hv/dev/virtio_blk.h"
#include "hv/dev/virtio_pci.h"
#include "hv/vm.h"
#include "lib/log.h"

#define RAM_SIZE    (1u << 20)
#define MAX_REGIONS 8
#define DESC_GPA    0x10000u
#define AVAIL_GPA   0x20000u
#define USED_GPA    0x30000u
#define SLOT	    1

enum {
	CC_DFSELECT = 0x00,
	CC_GFSELECT = 0x08,
	CC_GF = 0x0C,
	CC_STATUS = 0x14,
	CC_Q_SELECT = 0x16,
	CC_Q_SIZE = 0x18,
	CC_Q_ENABLE = 0x1C,
	CC_Q_DESC = 0x20,
	CC_Q_DRIVER = 0x28,
	CC_Q_DEVICE = 0x30
};

struct vm {
	uint8_t *ram;
	struct io_region pio[MAX_REGIONS], mmio[MAX_REGIONS];
	unsigned npio, nmmio;
};

static struct vm fake;
static char image[64];

static void remove_image(void)
{
	unlink(image);
}

void *vm_guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa > RAM_SIZE || len > RAM_SIZE - gpa)
		return NULL;
	return vm->ram + gpa;
}

static int add_region(struct io_region *t, unsigned *n, const struct io_region *r)
{
	if (*n == MAX_REGIONS)
		return -1;
	t[(*n)++] = *r;
	return 0;
}

int vm_register_pio(struct vm *vm, const struct io_region *r)
{
	return add_region(vm->pio, &vm->npio, r);
}

int vm_register_mmio(struct vm *vm, const struct io_region *r)
{
	return add_region(vm->mmio, &vm->nmmio, r);
}

int vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	(void)vm, (void)gsi, (void)level;
	return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	(void)vm, (void)addr, (void)data;
	return 0;
}

static void io(bool mmio, uint64_t addr, unsigned len, uint64_t *v, bool write)
{
	const struct io_region *t = mmio ? fake.mmio : fake.pio;
	unsigned n = mmio ? fake.nmmio : fake.npio;
	uint8_t data[8];

	memset(data, 0xFF, sizeof(data));
	for (unsigned i = 0; i < len; i++)
		data[i] = (uint8_t)(*v >> (8 * i));
	for (unsigned i = 0; i < n; i++) {
		if (addr < t[i].io_base || addr - t[i].io_base >= t[i].io_len)
			continue;
		if (write)
			t[i].io_write(t[i].io_opaque, addr - t[i].io_base, data, len);
		else
			t[i].io_read(t[i].io_opaque, addr - t[i].io_base, data, len);
		break;
	}
	*v = 0;
	for (unsigned i = 0; i < len; i++)
		*v |= (uint64_t)data[i] << (8 * i);
}

static void out(bool mmio, uint64_t addr, unsigned len, uint64_t v)
{
	io(mmio, addr, len, &v, true);
}

static uint64_t in(bool mmio, uint64_t addr, unsigned len)
{
	uint64_t v = 0;

	io(mmio, addr, len, &v, false);
	return v;
}

static uint32_t cfg_read(unsigned off)
{
	out(false, 0xCF8, 4, 0x80000000u | SLOT << 11 | (off & 0xFC));
	return (uint32_t)in(false, 0xCFC, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pci_bus *bus;
	struct virtio_blk *blk;
	uint64_t bar, common;
	uint16_t qsize, avail_idx = 0;

	if (size < 4)
		return 0;
	if (!fake.ram) {
		log_init("fuzz", LOG_LEVEL_ERR, false);
		fake.ram = malloc(RAM_SIZE);
		snprintf(image, sizeof(image), "/tmp/vdi-virtio-fuzz-%d.img", (int)getpid());
		FILE *f = fopen(image, "w");
		if (!f || ftruncate(fileno(f), 64 * 512) < 0)
			abort();
		fclose(f);
		atexit(remove_image);
	}
	memset(fake.ram, 0, RAM_SIZE);
	fake.npio = fake.nmmio = 0;
	bus = pci_create(&fake);
	blk = bus ? virtio_blk_create(&fake, bus, image, data[0] & 1) : NULL;
	if (!blk)
		abort();
	bar = (cfg_read(0x10) & ~0xFull) | (uint64_t)cfg_read(0x14) << 32;
	common = bar + VIRTIO_PCI_COMMON_OFF;

	/* The driver's choices: queue size (any value), features, then guest memory. */
	qsize = (uint16_t)(data[1] | data[2] << 8);
	out(true, common + CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	out(true, common + CC_GFSELECT, 4, 0);
	out(true, common + CC_GF, 4, (data[3] & 1 ? 1u << 28 : 0) | (1u << 9));
	out(true, common + CC_GFSELECT, 4, 1);
	out(true, common + CC_GF, 4, 1); /* VERSION_1 */
	out(true, common + CC_STATUS, 1, 0x0B);
	out(true, common + CC_Q_SELECT, 2, 0);
	out(true, common + CC_Q_SIZE, 2, qsize);
	out(true, common + CC_Q_DESC, 8, DESC_GPA);
	out(true, common + CC_Q_DRIVER, 8, AVAIL_GPA);
	out(true, common + CC_Q_DEVICE, 8, USED_GPA);
	out(true, common + CC_Q_ENABLE, 2, 1);
	out(true, common + CC_STATUS, 1, 0x0F);

	/* The rest of the input is guest RAM from DESC_GPA on (descriptors, avail ring,
	 * headers and buffers all point into it), then notifications with avail index
	 * steps taken from the input's last bytes. */
	size_t body = size - 4 < RAM_SIZE - DESC_GPA ? size - 4 : RAM_SIZE - DESC_GPA;
	memcpy(fake.ram + DESC_GPA, data + 4, body);
	for (size_t i = 0; i < 4 && i < size; i++) {
		avail_idx = (uint16_t)(avail_idx + data[size - 1 - i] % 4);
		memcpy(fake.ram + AVAIL_GPA + 2, &avail_idx, 2);
		out(true, bar + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	}
	(void)in(true, common + CC_STATUS, 1);
	virtio_blk_free(blk);
	pci_free(bus);
	return 0;
}
