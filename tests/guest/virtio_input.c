/* Virtio-input test guest: finds the tablet (1af4:1052) on PCI bus 0, reads its config
 * (name, event bits, axis ranges), sets up the event queue (MSI-X) and the status queue,
 * sends one LED event, posts event buffers, prints "virtio-input: ready", then prints
 * every event it receives as "input: type=.. code=.. value=.." and passes on a BTN_LEFT
 * press. The host test (tests/integration/test_hv_virtio_input.py) moves the pointer. */
#include "rt.h"
#include "virtio_guest.h"

#define VIRTIO_INPUT_PCI_ID 0x1052
#define VEC_CONFIG	    0x40
#define VEC_EVENT	    0x41
#define VEC_STATUS	    0x42
#define NBUF		    VG_QSIZE

#define CFG_ID_NAME  0x01
#define CFG_EV_BITS  0x11
#define CFG_ABS_INFO 0x12
#define EV_KEY	     0x01
#define EV_LED	     0x11
#define BTN_LEFT     0x110

static uint8_t events[NBUF][8] __attribute__((aligned(64)));
static uint8_t st_desc[4096] __attribute__((aligned(4096)));
static uint8_t st_avail[4096] __attribute__((aligned(4096)));
static uint8_t st_used[4096] __attribute__((aligned(4096)));
static uint8_t led_event[8] __attribute__((aligned(8))) = {EV_LED, 0, 0, 0, 1, 0, 0, 0};
static volatile unsigned event_irqs;

static void on_event(uint8_t vector)
{
	(void)vector;
	event_irqs++;
	rt_lapic_eoi();
}

static void on_other(uint8_t vector)
{
	(void)vector;
	rt_lapic_eoi();
}

/* Selects a config item; returns its size. */
static unsigned cfg_select(struct vdev *d, uint8_t select, uint8_t subsel)
{
	mmio_write8(d->device, select);
	mmio_write8(d->device + 1, subsel);
	return mmio_read8(d->device + 2);
}

static uint32_t cfg_u32(struct vdev *d, unsigned off)
{
	return mmio_read32(d->device + 8 + off);
}

/* The status queue (queue 1): four entries in its own rings. */
static void status_queue(struct vdev *d)
{
	mmio_write16(d->common + CC_Q_SELECT, 1);
	if (mmio_read16(d->common + CC_Q_SIZE) < 4)
		rt_fail("virtio-input", "no status queue");
	mmio_write16(d->common + CC_Q_SIZE, 4);
	mmio_write32(d->common + CC_Q_DESC, (uint32_t)(uint64_t)st_desc);
	mmio_write32(d->common + CC_Q_DESC + 4, 0);
	mmio_write32(d->common + CC_Q_DRIVER, (uint32_t)(uint64_t)st_avail);
	mmio_write32(d->common + CC_Q_DRIVER + 4, 0);
	mmio_write32(d->common + CC_Q_DEVICE, (uint32_t)(uint64_t)st_used);
	mmio_write32(d->common + CC_Q_DEVICE + 4, 0);
	mmio_write16(d->common + CC_Q_MSIX, 2);
	mmio_write16(d->common + CC_Q_ENABLE, 1);
}

/* Sends LED_NUML on through the status queue; the device gives it back unused. */
static void send_led(struct vdev *d)
{
	uint16_t noff;

	vq_desc_in(st_desc, 0, (uint64_t)led_event, sizeof(led_event), 0, 0);
	*(volatile uint16_t *)(st_avail + 4) = 0;
	barrier();
	*(volatile uint16_t *)(st_avail + 2) = 1;
	barrier();
	mmio_write16(d->common + CC_Q_SELECT, 1);
	noff = mmio_read16(d->common + CC_Q_NOFF);
	mmio_write16(d->notify + (uint64_t)noff * d->notify_mult, 1);
	for (int i = 0; i < 100000 && *(volatile uint16_t *)(st_used + 2) != 1; i++)
		cpu_relax();
	if (*(volatile uint16_t *)(st_used + 2) != 1)
		rt_fail("virtio-input", "LED event not consumed");
}

/* Gives buffer i to the device (does not notify). */
static void post(struct vdev *d, uint16_t i)
{
	*(volatile uint16_t *)(vg_avail + 4 + 2 * (d->avail_idx % d->qsize)) = i;
	barrier();
	d->avail_idx++;
	*(volatile uint16_t *)(vg_avail + 2) = d->avail_idx;
	barrier();
}

static void read_config(struct vdev *d)
{
	char name[129];
	unsigned n = cfg_select(d, CFG_ID_NAME, 0);

	for (unsigned i = 0; i < n && i < 128; i++)
		name[i] = (char)mmio_read8(d->device + 8 + i);
	name[n < 128 ? n : 128] = '\0';
	rt_printf("virtio-input: name '%s'\n", name);
	if (cfg_select(d, CFG_EV_BITS, EV_KEY) <= BTN_LEFT / 8 ||
	    !(mmio_read8(d->device + 8 + BTN_LEFT / 8) & (1u << (BTN_LEFT % 8))))
		rt_fail("virtio-input", "no BTN_LEFT in the key bits");
	for (uint8_t axis = 0; axis < 2; axis++) {
		if (cfg_select(d, CFG_ABS_INFO, axis) < 8)
			rt_fail("virtio-input", "no ABS_INFO for axis %u", axis);
		rt_printf("virtio-input: abs %c %u..%u\n", axis ? 'y' : 'x', cfg_u32(d, 0),
			  cfg_u32(d, 4));
	}
}

void guest_main(void)
{
	struct vdev d;

	if (!vdev_find(&d, VIRTIO_INPUT_PCI_ID))
		rt_fail("virtio-input", "no virtio-input device (1af4:1052) on bus 0");
	rt_printf("virtio-input: found 00:%02x.0\n", d.slot);
	if (!d.device || !d.msix_cap)
		rt_fail("virtio-input", "no device config or MSI-X capability");
	if (!vdev_negotiate(&d, 0))
		rt_fail("virtio-input", "feature negotiation refused");
	read_config(&d);

	rt_lapic_enable();
	rt_set_handler(VEC_CONFIG, on_other);
	rt_set_handler(VEC_EVENT, on_event);
	rt_set_handler(VEC_STATUS, on_other);
	vdev_msix_entry(&d, 0, VEC_CONFIG);
	vdev_msix_entry(&d, 1, VEC_EVENT);
	vdev_msix_entry(&d, 2, VEC_STATUS);
	pci_write16(d.slot, d.msix_cap + 2, 0x8000);
	mmio_write16(d.common + CC_MSIX, 0);
	if (!vdev_queue(&d, 1))
		rt_fail("virtio-input", "event queue setup failed");
	status_queue(&d);
	vdev_driver_ok(&d);
	if (vdev_status(&d) & S_NEEDS_RESET)
		rt_fail("virtio-input", "device needs reset after DRIVER_OK");
	send_led(&d);
	for (uint16_t i = 0; i < d.qsize && i < NBUF; i++) {
		vq_desc(i, (uint64_t)events[i], sizeof(events[i]), D_WRITE, 0);
		post(&d, i);
	}
	mmio_write16(d.notify_addr, 0);
	irq_enable();
	rt_printf("virtio-input: ready, %u buffers\n", d.qsize);

	for (;;) {
		irq_disable();
		if (vq_used_idx() == d.used_seen) {
			if (vdev_status(&d) & S_NEEDS_RESET)
				rt_fail("virtio-input", "device needs reset");
			halt();
			continue;
		}
		irq_enable();
		while (vq_used_idx() != d.used_seen) {
			uint32_t id, len;
			uint16_t type, code;
			int32_t value;

			barrier();
			memcpy(&id, vg_used + 4 + 8 * (d.used_seen % d.qsize), 4);
			memcpy(&len, vg_used + 4 + 8 * (d.used_seen % d.qsize) + 4, 4);
			d.used_seen++;
			if (id >= d.qsize || len != 8)
				rt_fail("virtio-input", "used buffer %u of %u bytes", id, len);
			memcpy(&type, events[id], 2);
			memcpy(&code, events[id] + 2, 2);
			memcpy(&value, events[id] + 4, 4);
			rt_printf("input: type=%u code=%u value=%d\n", type, code, value);
			if (type == EV_KEY && code == BTN_LEFT && value == 1)
				rt_pass("virtio-input");
			post(&d, (uint16_t)id);
		}
		mmio_write16(d.notify_addr, 0);
	}
}
