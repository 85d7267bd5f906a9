/* libFuzzer harness for the virtio tablet (hv/dev/virtio_input.c) on the real PCI bus,
 * virtio-pci transport and virtqueue code, with the fake VM of tests/unit/fake_vm.c
 * (guest RAM is a heap buffer, so ASan sees any access outside it). The first four bytes
 * give the screen size (0 must be refused); then three-byte steps play a driver, sane or
 * not, and the VNC side: start the device with queue sizes and features from the input,
 * post event and status buffers with any length, flags and chain, notify any queue,
 * write any common-configuration register, select config fields, reset, send pointer
 * events, ask whether the tablet is ready, take used buffers. Checked: the config size
 * never exceeds the 128-byte union and unknown selections read as empty; used
 * elements name a posted buffer with 8 bytes; no more buffers are used than posted; each
 * event the device wrote into a well-formed buffer is SYN_REPORT, an absolute X/Y within
 * [0, VIRTIO_INPUT_ABS_MAX], a left/right/middle button of value 0 or 1 or a wheel step of
 * +1 or -1. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/dev/pci.h"
#include "hv/dev/virtio_input.h"
#include "hv/dev/virtio_pci.h"
#include "hv/dev/virtqueue.h"
#include "hv/vm.h"
#include "lib/log.h"
#include "tests/unit/fake_vm.h"

#define RAM_SIZE      (1u << 20)
#define SLOT	      1
#define EVENTQ	      0
#define STATUSQ	      1
#define EVBUF	      0x80000u /* event buffer i at EVBUF + 8 * i */
#define STATBUF	      0x90000u
#define CFG_SIZE      2
#define CFG_UNION_LEN 128

static struct vm *fake;

struct queue {
	struct fake_vq vq;
	bool good[1024];       /* descriptor i was posted as one writable 8-byte buffer */
	uint8_t pending[1024]; /* posts of descriptor i not used yet */
	uint32_t posted, used;
};

static struct queue q[2];
static bool hostile; /* a raw common-configuration write: the rings may have moved */

static void common_wr(uint64_t bar, unsigned off, unsigned len, uint64_t v)
{
	fake_vm_common_write(fake, bar, off, len, v);
}

static void queue_setup(uint64_t bar, unsigned n, uint16_t size)
{
	struct queue *qu = &q[n];
	uint64_t base = 0x10000u + 0x10000u * n;

	memset(qu, 0, sizeof(*qu));
	memset(fake->ram + base, 0, 0xC000); /* a new driver's rings start empty */
	qu->vq = (struct fake_vq){base, base + 0x4000, base + 0x8000, size, 0, 0};
	common_wr(bar, CC_Q_SELECT, 2, n);
	common_wr(bar, CC_Q_SIZE, 2, size);
	common_wr(bar, CC_Q_DESC, 8, qu->vq.desc);
	common_wr(bar, CC_Q_DRIVER, 8, qu->vq.avail);
	common_wr(bar, CC_Q_DEVICE, 8, qu->vq.used);
	common_wr(bar, CC_Q_ENABLE, 2, 1);
}

static void notify(uint64_t bar, unsigned n)
{
	fake_vm_write(fake, true, bar + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * n, 2, n);
}

static void check_event(const uint8_t *b)
{
	uint16_t type = (uint16_t)(b[0] | b[1] << 8), code = (uint16_t)(b[2] | b[3] << 8);
	int32_t value;

	memcpy(&value, b + 4, 4);
	switch (type) {
	case 0: /* EV_SYN */
		if (code != 0 || value != 0)
			abort();
		break;
	case 1: /* EV_KEY */
		if (code < 0x110 || code > 0x112 || (value != 0 && value != 1))
			abort();
		break;
	case 2: /* EV_REL */
		if (code != 8 || (value != 1 && value != -1))
			abort();
		break;
	case 3: /* EV_ABS */
		if (code > 1 || value < 0 || value > VIRTIO_INPUT_ABS_MAX)
			abort();
		break;
	default: abort();
	}
}

static void take_used(unsigned n)
{
	struct queue *qu = &q[n];
	uint32_t id, len;

	if (!qu->vq.size || hostile)
		return;
	if ((uint16_t)(fake_vm_used_idx(fake, &qu->vq) - qu->vq.used_seen) > qu->posted - qu->used)
		abort(); /* more used than posted */
	while (fake_vm_take_used(fake, &qu->vq, &id, &len)) {
		qu->used++;
		if (id >= qu->vq.size)
			abort();
		if (qu->pending[id])
			qu->pending[id]--;
		if (n == EVENTQ && len != 8)
			abort();
		if (n == STATUSQ && len != 0)
			abort();
		if (n == EVENTQ && qu->good[id]) {
			check_event(fake->ram + EVBUF + 8 * id);
			qu->good[id] = false;
		}
	}
}

static void check_config(uint64_t bar, uint8_t select, uint8_t subsel)
{
	uint64_t cfg = bar + VIRTIO_PCI_DEVICE_OFF;
	uint8_t size;

	fake_vm_write(fake, true, cfg, 1, select);
	fake_vm_write(fake, true, cfg + 1, 1, subsel);
	if (fake_vm_read(fake, true, cfg, 1) != select ||
	    fake_vm_read(fake, true, cfg + 1, 1) != subsel)
		abort();
	size = (uint8_t)fake_vm_read(fake, true, cfg + CFG_SIZE, 1);
	if (size > CFG_UNION_LEN)
		abort();
	if ((select == 0 || (select > 3 && select < 0x10) || select > 0x12) && size != 0)
		abort();
	/* the union reads back zero past size */
	for (unsigned off = size; off < CFG_UNION_LEN; off += 8)
		if (fake_vm_read(fake, true, cfg + 8 + off, 1) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pci_bus *bus;
	struct virtio_input *t;
	unsigned width, height;
	uint64_t bar;

	if (size < 4)
		return 0;
	if (!fake) {
		log_init("fuzz", LOG_LEVEL_ERR, false);
		fake = fake_vm_create(RAM_SIZE);
		if (!fake)
			abort();
	}
	fake_vm_reset(fake);
	memset(q, 0, sizeof(q));
	hostile = false;
	bus = pci_create(fake);
	if (!bus)
		abort();
	width = (unsigned)(data[0] | data[1] << 8);
	height = (unsigned)(data[2] | data[3] << 8);
	t = virtio_input_create_tablet(fake, bus, width, height);
	if (!t != (width == 0 || height == 0))
		abort();
	if (!t) {
		pci_free(bus);
		return 0;
	}
	bar = fake_vm_bar0(fake, SLOT);

	for (size_t i = 4; i + 3 <= size; i += 3) {
		uint8_t op = data[i], a = data[i + 1], b = data[i + 2];
		unsigned n = op >> 7; /* which queue for the queue steps */

		switch (op & 15) {
		case 0: /* a driver starts: reset, features, both queues, DRIVER_OK */
			hostile = false;
			common_wr(bar, CC_STATUS, 1, 0);
			common_wr(bar, CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
			common_wr(bar, CC_STATUS, 1,
				  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
			common_wr(bar, CC_GFSELECT, 4, 1);
			common_wr(bar, CC_GF, 4, op & 16 ? 0 : 1);
			common_wr(bar, CC_STATUS, 1,
				  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				      VIRTIO_STATUS_FEATURES_OK);
			queue_setup(bar, EVENTQ, op & 32 ? a : (uint16_t)(1u << (a % 8)));
			queue_setup(bar, STATUSQ, op & 64 ? b : (uint16_t)(1u << (b % 8)));
			common_wr(bar, CC_STATUS, 1, 0x0F);
			break;
		case 1: /* post a buffer: 8 bytes writable unless the input says otherwise */
		case 2: {
			struct queue *qu = &q[n];
			unsigned d;
			uint32_t len = op & 16 ? b : 8;
			uint16_t flags = op & 32 ? (uint16_t)(b >> 4) : (n == EVENTQ ? 2 : 0);

			if (!qu->vq.size)
				break;
			d = a % qu->vq.size;
			if (n == EVENTQ)
				memset(fake->ram + EVBUF + 8 * d, 0xEE, 8);
			fake_vm_put_desc(fake, qu->vq.desc, d,
					 (n == EVENTQ ? EVBUF : STATBUF) + 8 * d, len, flags,
					 (uint16_t)(b & 7));
			/* posted again before its use, the device may still hold the old chain */
			qu->good[d] = n == EVENTQ && len >= 8 && flags == 2 && !qu->pending[d] &&
				      qu->posted - qu->used < qu->vq.size;
			if (qu->pending[d] < 255)
				qu->pending[d]++;
			fake_vm_make_available(fake, &qu->vq, (uint16_t)d, 1);
			qu->posted++;
			if ((op & 15) == 2)
				notify(bar, n);
			break;
		}
		case 3: notify(bar, a % 4); break;
		case 4: /* the VNC side moves the pointer */
			virtio_input_tablet_event(t, (unsigned)a * width / 200,
						  (unsigned)b * height / 200, op >> 4,
						  (int)((op >> 6) % 3) - 1);
			break;
		case 5: (void)virtio_input_tablet_ready(t); break;
		case 6: check_config(bar, a, b); break;
		case 7: /* the driver resets */
			common_wr(bar, CC_STATUS, 1, 0);
			memset(q, 0, sizeof(q));
			break;
		case 8: /* a hostile write to any common register */
			hostile = true;
			common_wr(bar, a % 0x38, 1u << (op >> 4 & 3) > 8 ? 1 : 1u << (op >> 4 & 3),
				  (uint64_t)b * 0x01010101u);
			break;
		case 9: (void)fake_vm_common_read(fake, bar, a % 0x38, 1); break;
		default: take_used(n); break;
		}
	}
	take_used(EVENTQ);
	take_used(STATUSQ);
	virtio_input_free(t);
	pci_free(bus);
	return 0;
}
