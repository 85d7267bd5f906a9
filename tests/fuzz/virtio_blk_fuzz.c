/* libFuzzer harness for what a guest controls in virtio-blk: the input is guest memory
 * (descriptor table, avail ring, request headers and buffers) plus a few driver choices
 * (queue size, features, avail index steps), run against the real PCI bus, virtio-pci
 * transport, virtqueue and virtio-blk code on a small image, with the fake VM of
 * tests/unit/fake_vm.c, whose RAM is a heap buffer so ASan sees any access outside it. */
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
#include "tests/unit/fake_vm.h"

#define RAM_SIZE  (1u << 20)
#define DESC_GPA  0x10000u
#define AVAIL_GPA 0x20000u
#define USED_GPA  0x30000u
#define SLOT	  1

static struct vm *fake;
static char image[64];

static void remove_image(void)
{
	unlink(image);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pci_bus *bus;
	struct virtio_blk *blk;
	uint64_t bar;
	uint16_t qsize, avail_idx = 0;

	if (size < 4)
		return 0;
	if (!fake) {
		log_init("fuzz", LOG_LEVEL_ERR, false);
		fake = fake_vm_create(RAM_SIZE);
		if (!fake)
			abort();
		snprintf(image, sizeof(image), "/tmp/vdi-virtio-fuzz-%d.img", (int)getpid());
		FILE *f = fopen(image, "w");
		if (!f || ftruncate(fileno(f), 64 * 512) < 0)
			abort();
		fclose(f);
		atexit(remove_image);
	}
	fake_vm_reset(fake);
	bus = pci_create(fake);
	blk = bus ? virtio_blk_create(fake, bus, image, data[0] & 1) : NULL;
	if (!blk)
		abort();
	bar = fake_vm_bar0(fake, SLOT);

	/* The driver's choices: queue size (any value), features, then guest memory. */
	qsize = (uint16_t)(data[1] | data[2] << 8);
	fake_vm_common_write(fake, bar, CC_STATUS, 1,
			     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	fake_vm_common_write(fake, bar, CC_GFSELECT, 4, 0);
	fake_vm_common_write(fake, bar, CC_GF, 4, (data[3] & 1 ? 1u << 28 : 0) | (1u << 9));
	fake_vm_common_write(fake, bar, CC_GFSELECT, 4, 1);
	fake_vm_common_write(fake, bar, CC_GF, 4, 1); /* VERSION_1 */
	fake_vm_common_write(fake, bar, CC_STATUS, 1, 0x0B);
	fake_vm_common_write(fake, bar, CC_Q_SELECT, 2, 0);
	fake_vm_common_write(fake, bar, CC_Q_SIZE, 2, qsize);
	fake_vm_common_write(fake, bar, CC_Q_DESC, 8, DESC_GPA);
	fake_vm_common_write(fake, bar, CC_Q_DRIVER, 8, AVAIL_GPA);
	fake_vm_common_write(fake, bar, CC_Q_DEVICE, 8, USED_GPA);
	fake_vm_common_write(fake, bar, CC_Q_ENABLE, 2, 1);
	fake_vm_common_write(fake, bar, CC_STATUS, 1, 0x0F);

	/* The rest of the input is guest RAM from DESC_GPA on (descriptors, avail ring,
	 * headers and buffers all point into it), then notifications with avail index
	 * steps taken from the input's last bytes. */
	size_t body = size - 4 < RAM_SIZE - DESC_GPA ? size - 4 : RAM_SIZE - DESC_GPA;
	memcpy(fake->ram + DESC_GPA, data + 4, body);
	for (size_t i = 0; i < 4 && i < size; i++) {
		avail_idx = (uint16_t)(avail_idx + data[size - 1 - i] % 4);
		memcpy(fake->ram + AVAIL_GPA + 2, &avail_idx, 2);
		fake_vm_write(fake, true, bar + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	}
	(void)fake_vm_common_read(fake, bar, CC_STATUS, 1);
	virtio_blk_free(blk);
	pci_free(bus);
	return 0;
}
