/* Unit tests for hv/dev/virtio_input: the real tablet on the real PCI and virtio-pci
 * transport, on the fake VM of fake_vm.c (guest RAM is a malloc'd buffer, port and MMIO
 * handlers are captured and called directly, interrupts are recorded). The test plays the
 * guest driver, well-behaved, slow (no buffers) and hostile, and the VNC server. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/dev/pci.h"
#include "hv/dev/virtio_input.h"
#include "hv/dev/virtio_pci.h"
#include "hv/dev/virtqueue.h"
#include "hv/vm.h"
#include "lib/log.h"
#include "tests/unit/fake_vm.h"

#define RAM_SIZE (4u << 20)

static struct vm *fake;

/* Fixture: a bus with one 1024x768 tablet in slot 1. */

#define SLOT   1
#define WIDTH  1024
#define HEIGHT 768

static struct {
	struct pci_bus *bus;
	struct virtio_input *tablet;
	FILE *log;
	off_t log_mark;
	uint64_t bar;
} fx;

/* What was logged since the previous call. */
static char *log_text(void)
{
	static char buf[16384];
	ssize_t n = pread(fileno(fx.log), buf, sizeof(buf) - 1, fx.log_mark);

	buf[n > 0 ? n : 0] = '\0';
	fx.log_mark += n > 0 ? n : 0;
	return buf;
}

static int setup_bus(void)
{
	memset(&fx, 0, sizeof(fx));
	fake = fake_vm_create(RAM_SIZE);
	fx.log = tmpfile();
	if (!fake || !fx.log)
		return -1;
	log_init("test", LOG_LEVEL_INFO, false);
	log_set_fd(fileno(fx.log));
	fx.bus = pci_create(fake);
	return fx.bus ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	if (setup_bus() < 0)
		return -1;
	fx.tablet = virtio_input_create_tablet(fake, fx.bus, WIDTH, HEIGHT);
	if (!fx.tablet)
		return -1;
	fx.bar = fake_vm_bar0(fake, SLOT);
	log_text();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	virtio_input_free(fx.tablet);
	pci_free(fx.bus);
	log_set_fd(-1);
	fclose(fx.log);
	fake_vm_free(fake);
	fake = NULL;
	return 0;
}

/* The test's virtio-input driver */

#define F_VERSION_1  (1ULL << 32)
#define S_ALL_BUT_OK (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)

#define EVENTQ	   0
#define STATUSQ	   1
#define QSIZE	   64
#define EVBUF	   0x100000u /* event buffer i at EVBUF + 8 * i */
#define STATBUF	   0x200000u
#define BTN_LEFT   0x110
#define BTN_RIGHT  0x111
#define BTN_MIDDLE 0x112

static struct fake_vq dq[2] = {
    {0x10000, 0x11000, 0x12000, 0, 0, 0},
    {0x20000, 0x21000, 0x22000, 0, 0, 0},
};

struct event {
	uint16_t type, code;
	int32_t value;
};

static uint64_t common_rd(unsigned off, unsigned len)
{
	return fake_vm_common_read(fake, fx.bar, off, len);
}

static void common_wr(unsigned off, unsigned len, uint64_t v)
{
	fake_vm_common_write(fake, fx.bar, off, len, v);
}

static uint8_t status(void)
{
	return (uint8_t)common_rd(CC_STATUS, 1);
}

static bool broken(void)
{
	return status() & VIRTIO_STATUS_NEEDS_RESET;
}

static void queue_setup(unsigned q, uint16_t size)
{
	struct fake_vq *d = &dq[q];

	memset(fake->ram + d->desc, 0, 0x3000);
	d->size = size;
	d->avail_idx = d->used_seen = 0;
	common_wr(CC_Q_SELECT, 2, q);
	common_wr(CC_Q_SIZE, 2, size);
	common_wr(CC_Q_DESC, 8, d->desc);
	common_wr(CC_Q_DRIVER, 8, d->avail);
	common_wr(CC_Q_DEVICE, 8, d->used);
	common_wr(CC_Q_ENABLE, 2, 1);
}

/* Reset, features, both queues, DRIVER_OK (no buffers yet). */
static void drv_start(void)
{
	common_wr(CC_STATUS, 1, 0);
	common_wr(CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	common_wr(CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	common_wr(CC_GFSELECT, 4, 1);
	common_wr(CC_GF, 4, 1);
	common_wr(CC_STATUS, 1, S_ALL_BUT_OK);
	assert_true(status() & VIRTIO_STATUS_FEATURES_OK);
	queue_setup(EVENTQ, QSIZE);
	queue_setup(STATUSQ, QSIZE);
	common_wr(CC_STATUS, 1, S_ALL_BUT_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void put_desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	fake_vm_put_desc(fake, dq[q].desc, i, addr, len, flags, next);
}

/* Puts head on the avail ring without notifying. */
static void make_available(unsigned q, uint16_t head)
{
	fake_vm_make_available(fake, &dq[q], head, 1);
}

static void notify(unsigned q)
{
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, 2,
		      0);
}

/* Gives the device event buffers first .. first + n - 1 (8 bytes each) and notifies. */
static void post_event_buffers(unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++) {
		put_desc(EVENTQ, i, EVBUF + 8 * i, 8, VIRTQ_DESC_F_WRITE, 0);
		make_available(EVENTQ, (uint16_t)i);
	}
	notify(EVENTQ);
}

static uint16_t used_idx(unsigned q)
{
	return fake_vm_used_idx(fake, &dq[q]);
}

/* The next used event buffer, decoded; false when there is none. *head gets its id. */
static bool next_event(struct event *ev, uint16_t *head)
{
	struct fake_vq *d = &dq[EVENTQ];
	const uint8_t *b;
	uint32_t id, len;

	if (!fake_vm_take_used(fake, d, &id, &len))
		return false;
	assert_true(id < d->size);
	assert_int_equal(len, 8);
	b = fake->ram + EVBUF + 8 * id;
	memcpy(&ev->type, b, 2);
	memcpy(&ev->code, b + 2, 2);
	memcpy(&ev->value, b + 4, 4);
	if (head)
		*head = (uint16_t)id;
	return true;
}

/* Reads every used event into evs (room for max); returns how many. */
static unsigned drain(struct event *evs, unsigned max)
{
	unsigned n = 0;
	struct event ev;

	while (next_event(&ev, NULL)) {
		assert_true(n < max);
		evs[n++] = ev;
	}
	return n;
}

static void expect_events(const struct event *want, unsigned n)
{
	struct event got[QSIZE];
	unsigned have = drain(got, QSIZE);

	for (unsigned i = 0; i < n && i < have; i++)
		if (got[i].type != want[i].type || got[i].code != want[i].code ||
		    got[i].value != want[i].value)
			fail_msg("event %u is {%u, %#x, %d}, want {%u, %#x, %d}", i, got[i].type,
				 got[i].code, got[i].value, want[i].type, want[i].code,
				 want[i].value);
	assert_int_equal(have, n);
}

static uint32_t scale(unsigned v, unsigned size)
{
	if (v > size - 1)
		v = size - 1;
	return (uint32_t)(((uint64_t)v * 32767 + (size - 1) / 2) / (size - 1));
}

#define ABS(code, v)                                                                               \
	{                                                                                          \
		3, code, (int32_t)(v)                                                              \
	}
#define KEY(code, v)                                                                               \
	{                                                                                          \
		1, code, v                                                                         \
	}
#define SYN                                                                                        \
	{                                                                                          \
		0, 0, 0                                                                            \
	}

/* Config space */

static void cfg_select(uint8_t select, uint8_t subsel)
{
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF, 1, select);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF + 1, 1, subsel);
}

static unsigned cfg_size(void)
{
	return (unsigned)fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF + 2, 1);
}

static void cfg_union(void *buf, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		((uint8_t *)buf)[i] =
		    (uint8_t)fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF + 8 + i, 1);
}

static void test_pci_identity(void **state)
{
	(void)state;
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x00, 4), 0x10521AF4);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x08, 1), 1);		/* modern only */
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x08, 4) >> 8, 0x098000); /* input, other */
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x2C, 2), 0x1AF4);
	assert_true(fake_vm_cfg_read(fake, SLOT, 0x2E, 2) >= 0x40);
	assert_int_equal(common_rd(CC_NUMQ, 2), 2);
	common_wr(CC_Q_SELECT, 2, 1);
	assert_int_equal(common_rd(CC_Q_SIZE, 2), QSIZE);
	common_wr(CC_Q_SELECT, 2, 2);
	assert_int_equal(common_rd(CC_Q_SIZE, 2), 0);
}

static void test_config_space(void **state)
{
	uint8_t u[128];
	uint32_t absinfo[5];
	uint16_t ids[4];

	(void)state;
	cfg_select(0x01, 0); /* ID_NAME */
	assert_int_equal(cfg_size(), 10);
	cfg_union(u, 16);
	assert_memory_equal(u, "vdi tablet\0\0\0\0\0\0", 16);
	cfg_select(0x02, 0); /* ID_SERIAL */
	assert_true(cfg_size() > 0);
	cfg_union(u, cfg_size());
	assert_memory_equal(u, "vdi-tablet-0", cfg_size());
	cfg_select(0x03, 0); /* ID_DEVIDS */
	assert_int_equal(cfg_size(), 8);
	cfg_union(ids, 8);
	assert_int_equal(ids[0], 0x06); /* BUS_VIRTUAL */
	cfg_select(0x10, 0);		/* PROP_BITS: none, so not a touchscreen */
	assert_int_equal(cfg_size(), 0);
	/* EV_BITS for EV_KEY: BTN_LEFT, BTN_RIGHT, BTN_MIDDLE and nothing else. */
	cfg_select(0x11, 1);
	assert_int_equal(cfg_size(), BTN_MIDDLE / 8 + 1);
	cfg_union(u, 128);
	for (unsigned bit = 0; bit < 128 * 8; bit++) {
		bool set = u[bit / 8] & (1u << (bit % 8));

		assert_int_equal(set, bit == BTN_LEFT || bit == BTN_RIGHT || bit == BTN_MIDDLE);
	}
	cfg_select(0x11, 2); /* EV_REL: REL_WHEEL */
	assert_int_equal(cfg_size(), 2);
	cfg_union(u, 2);
	assert_int_equal(u[0] | u[1] << 8, 1 << 8);
	cfg_select(0x11, 3); /* EV_ABS: ABS_X, ABS_Y */
	assert_int_equal(cfg_size(), 1);
	cfg_union(u, 1);
	assert_int_equal(u[0], 3);
	for (uint8_t ev = 4; ev < 0x20; ev++) { /* EV_MSC, EV_SW, EV_LED, ...: none */
		cfg_select(0x11, ev);
		assert_int_equal(cfg_size(), 0);
	}
	cfg_select(0x11, 0);
	assert_int_equal(cfg_size(), 0);
	for (uint8_t axis = 0; axis < 2; axis++) { /* ABS_INFO */
		cfg_select(0x12, axis);
		assert_int_equal(cfg_size(), 20);
		cfg_union(absinfo, 20);
		assert_int_equal(absinfo[0], 0);
		assert_int_equal(absinfo[1], 32767);
		assert_int_equal(absinfo[2] | absinfo[3] | absinfo[4], 0);
	}
	cfg_select(0x12, 2);
	assert_int_equal(cfg_size(), 0);
	/* UNSET and unknown selectors: size 0 and an empty union. */
	static const uint8_t unknown[] = {0x00, 0x04, 0x13, 0x7F, 0xFF};
	for (unsigned i = 0; i < sizeof(unknown); i++) {
		cfg_select(unknown[i], 0);
		assert_int_equal(cfg_size(), 0);
		cfg_union(u, 128);
		for (unsigned k = 0; k < 128; k++)
			assert_int_equal(u[k], 0);
	}
	/* A wide write sets select and subsel only; size and union stay read-only. */
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF, 8, 0xFFFFFFFFFFFF0001ULL);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF, 2), 0x0001);
	assert_int_equal(cfg_size(), 10);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF + 8, 8, 0);
	cfg_union(u, 10);
	assert_memory_equal(u, "vdi tablet", 10);
	/* Reading past the config does nothing harmful. */
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF + 136, 4), 0);
}

/* Events */

static void test_event_encoding(void **state)
{
	(void)state;
	drv_start();
	post_event_buffers(0, 16);
	assert_true(virtio_input_tablet_ready(fx.tablet));
	virtio_input_tablet_event(fx.tablet, 512, 384, 1, 0);
	const struct event press[] = {ABS(0, 16400), ABS(1, 16405), KEY(BTN_LEFT, 1), SYN};
	expect_events(press, 4);
	assert_int_equal(scale(512, WIDTH), 16400);
	/* An interrupt per batch: INTx here (no MSI-X set up), line up, ISR bit 0. */
	assert_true(fake->irq[VM_PCI_INTX_GSI(SLOT)]);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_ISR_OFF, 1), 1);
	/* Release plus a wheel step down: value -1 as a little-endian 32-bit int. */
	virtio_input_tablet_event(fx.tablet, 512, 384, 0, -1);
	const struct event release[] = {KEY(BTN_LEFT, 0), {2, 8, -1}, SYN};
	expect_events(release, 3);
	assert_int_equal(*(uint32_t *)(fake->ram + EVBUF + 8 * 5 + 4), 0xFFFFFFFF);
	/* Nothing changed: nothing sent. */
	virtio_input_tablet_event(fx.tablet, 512, 384, 0, 0);
	expect_events(NULL, 0);
	/* Middle and right (RFB bits 2 and 4); bits above 4 are the viewer's wheel, ignored. */
	virtio_input_tablet_event(fx.tablet, 512, 384, 2 | 8 | 16, 1);
	const struct event middle[] = {KEY(BTN_MIDDLE, 1), {2, 8, 1}, SYN};
	expect_events(middle, 3);
	virtio_input_tablet_event(fx.tablet, 512, 384, 4, 0);
	const struct event right[] = {KEY(BTN_MIDDLE, 0), KEY(BTN_RIGHT, 1), SYN};
	expect_events(right, 3);
	/* Only y moves: only ABS_Y. */
	virtio_input_tablet_event(fx.tablet, 512, 0, 4, 0);
	const struct event up[] = {ABS(1, 0), SYN};
	expect_events(up, 2);
	assert_false(broken());
}

static void test_scaling_and_clamping(void **state)
{
	(void)state;
	drv_start();
	post_event_buffers(0, QSIZE);
	virtio_input_tablet_event(fx.tablet, WIDTH - 1, HEIGHT - 1, 0, 0);
	const struct event corner[] = {ABS(0, 32767), ABS(1, 32767), SYN};
	expect_events(corner, 3);
	/* Off the screen: clamped to the same corner, so nothing new. */
	virtio_input_tablet_event(fx.tablet, 5000, 99999, 0, 0);
	virtio_input_tablet_event(fx.tablet, ~0u, ~0u, 0, 0);
	expect_events(NULL, 0);
	virtio_input_tablet_event(fx.tablet, 0, 0, 0, 0);
	const struct event origin[] = {ABS(0, 0), ABS(1, 0), SYN};
	expect_events(origin, 3);
	/* Every pixel maps to its own value and back (what a guest computes). */
	for (unsigned x = 0; x < WIDTH; x++) {
		uint32_t v = scale(x, WIDTH);

		assert_int_equal((v * (WIDTH - 1) + 16383) / 32767, x);
	}
	virtio_input_tablet_event(fx.tablet, 1, 767, 0, 0);
	const struct event one[] = {ABS(0, 32), ABS(1, 32767), SYN};
	expect_events(one, 3);
	/* A one-pixel-wide screen and bad sizes. */
	struct virtio_input *narrow = virtio_input_create_tablet(fake, fx.bus, 1, 1);
	assert_non_null(narrow);
	virtio_input_free(narrow);
	assert_null(virtio_input_create_tablet(fake, fx.bus, 0, 768));
	assert_null(virtio_input_create_tablet(fake, fx.bus, 1024, 70000));
	assert_non_null(strstr(log_text(), "invalid screen size"));
	/* NULL is harmless for callers without a tablet. */
	assert_false(virtio_input_tablet_ready(NULL));
	virtio_input_tablet_event(NULL, 1, 2, 3, 4);
}

static void test_ready(void **state)
{
	(void)state;
	assert_false(virtio_input_tablet_ready(fx.tablet)); /* no driver */
	virtio_input_tablet_event(fx.tablet, 10, 10, 0, 0); /* queued, harmless */
	drv_start();
	assert_false(virtio_input_tablet_ready(fx.tablet)); /* no buffers yet */
	post_event_buffers(0, 2);
	assert_true(virtio_input_tablet_ready(fx.tablet));
	/* What was sent before the reset is gone: the new driver starts from zero. */
	expect_events(NULL, 0);
	/* Out of buffers for a moment: still ready, events wait. */
	virtio_input_tablet_event(fx.tablet, 100, 100, 1, 0);
	assert_true(virtio_input_tablet_ready(fx.tablet));
	post_event_buffers(2, 4);
	const struct event click[] = {ABS(0, scale(100, WIDTH)), ABS(1, scale(100, HEIGHT)),
				      KEY(BTN_LEFT, 1), SYN};
	expect_events(click, 4);
	/* Reset: not ready until the new driver has given buffers again. */
	common_wr(CC_STATUS, 1, 0);
	assert_false(virtio_input_tablet_ready(fx.tablet));
	drv_start();
	assert_false(virtio_input_tablet_ready(fx.tablet));
	post_event_buffers(0, 8);
	assert_true(virtio_input_tablet_ready(fx.tablet));
	/* After the reset the guest's state is zero again: the whole state is resent. */
	virtio_input_tablet_event(fx.tablet, 100, 100, 1, 0);
	expect_events(click, 4);
	/* Broken: not ready. */
	put_desc(EVENTQ, 9, EVBUF, 8, 0, 0);
	make_available(EVENTQ, 9);
	notify(EVENTQ);
	assert_true(broken());
	assert_false(virtio_input_tablet_ready(fx.tablet));
}

/* The guest gives no buffers while the pointer moves: the backlog coalesces motion, keeps
 * clicks, and delivers everything once buffers come. */
static void test_backlog_coalesces_motion(void **state)
{
	(void)state;
	drv_start();
	for (unsigned i = 0; i < 1000; i++)
		virtio_input_tablet_event(fx.tablet, i, i % HEIGHT, 0, 0);
	virtio_input_tablet_event(fx.tablet, 10, 20, 1, 0);
	for (unsigned i = 0; i < 1000; i++)
		virtio_input_tablet_event(fx.tablet, 1000 - i, 700 - i % 700, 1, 0);
	virtio_input_tablet_event(fx.tablet, 100, 200, 1, 0);
	expect_events(NULL, 0);
	post_event_buffers(0, 10);
	const struct event want[] = {
	    ABS(0, scale(999, WIDTH)),
	    ABS(1, scale(999 % HEIGHT, HEIGHT)),
	    SYN,
	    ABS(0, scale(10, WIDTH)),
	    ABS(1, scale(20, HEIGHT)),
	    KEY(BTN_LEFT, 1),
	    SYN,
	    ABS(0, scale(100, WIDTH)),
	    ABS(1, scale(200, HEIGHT)),
	    SYN,
	};
	expect_events(want, sizeof(want) / sizeof(want[0]));
	/* Motion there and back before the guest looks: nothing at all. */
	virtio_input_tablet_event(fx.tablet, 300, 300, 1, 0);
	virtio_input_tablet_event(fx.tablet, 100, 200, 1, 0);
	post_event_buffers(10, 1);
	expect_events(NULL, 0);
	/* A report already being delivered is not rewritten: with one buffer, ABS_X goes out,
	 * and the next motion is appended rather than merged. */
	virtio_input_tablet_event(fx.tablet, 101, 201, 1, 0);
	const struct event first[] = {ABS(0, scale(101, WIDTH))};
	expect_events(first, 1);
	virtio_input_tablet_event(fx.tablet, 102, 202, 1, 0);
	post_event_buffers(11, 8);
	const struct event rest[] = {ABS(1, scale(201, HEIGHT)), SYN, ABS(0, scale(102, WIDTH)),
				     ABS(1, scale(202, HEIGHT)), SYN};
	expect_events(rest, 5);
	assert_false(broken());
}

/* Replays events as Linux's input core would: values take effect at SYN_REPORT. */
struct guest_state {
	int32_t x, y, px, py;
	unsigned buttons, pbuttons; /* RFB bits */
	int wheel;
	unsigned reports;
};

static void replay(struct guest_state *g, const struct event *ev)
{
	unsigned bit = ev->code == BTN_LEFT ? 1 : ev->code == BTN_MIDDLE ? 2 : 4;

	switch (ev->type) {
	case 3:
		if (ev->code == 0)
			g->px = ev->value;
		else
			g->py = ev->value;
		break;
	case 1: g->pbuttons = ev->value ? g->pbuttons | bit : g->pbuttons & ~bit; break;
	case 2: g->wheel += ev->value; break;
	case 0:
		g->x = g->px, g->y = g->py, g->buttons = g->pbuttons;
		g->reports++;
		break;
	default: fail_msg("unexpected event type %u", ev->type);
	}
}

static void test_backlog_is_bounded(void **state)
{
	struct event evs[QSIZE];
	struct guest_state g = {0};
	unsigned n;

	(void)state;
	drv_start();
	/* Far more clicks than the backlog holds: it resyncs to the final state. */
	for (unsigned i = 0; i < 100000; i++)
		virtio_input_tablet_event(fx.tablet, i % WIDTH, i % HEIGHT, i & 7, i % 3 ? 0 : 1);
	virtio_input_tablet_event(fx.tablet, 33, 44, 5, 0);
	post_event_buffers(0, QSIZE);
	n = drain(evs, QSIZE);
	assert_true(n > 0 && n <= QSIZE);
	for (unsigned i = 0; i < n; i++)
		replay(&g, &evs[i]);
	assert_int_equal(evs[n - 1].type, 0);
	assert_int_equal(g.x, scale(33, WIDTH));
	assert_int_equal(g.y, scale(44, HEIGHT));
	assert_int_equal(g.buttons, 5);
	/* Nothing more is pending. */
	post_event_buffers(0, 0);
	assert_int_equal(drain(evs, QSIZE), 0);
}

/* Hostile drivers: each ends with the device broken, the host fine, and the device usable
 * after a reset. */

static void expect_broken(const char *reason)
{
	const char *log = log_text();

	assert_true(broken());
	assert_non_null(strstr(log, "virtio-tablet 00:01.0: driver error, device needs reset: "));
	if (reason && !strstr(log, reason))
		fail_msg("expected '%s' in the log: %s", reason, log);
	assert_false(virtio_input_tablet_ready(fx.tablet));
	virtio_input_tablet_event(fx.tablet, 7, 7, 1, 0); /* dropped at the reset */
	drv_start();
	post_event_buffers(0, 8);
	assert_true(virtio_input_tablet_ready(fx.tablet));
	virtio_input_tablet_event(fx.tablet, 8, 9, 0, 0);
	const struct event want[] = {ABS(0, scale(8, WIDTH)), ABS(1, scale(9, HEIGHT)), SYN};
	expect_events(want, 3);
	assert_false(broken());
}

static void test_hostile_event_buffers(void **state)
{
	(void)state;
	drv_start();
	/* Device-readable. */
	put_desc(EVENTQ, 0, EVBUF, 8, 0, 0);
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	expect_broken("device-readable");
	/* Too short for an event, even split over two buffers. */
	put_desc(EVENTQ, 0, EVBUF, 4, VIRTQ_DESC_F_WRITE, 0);
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	expect_broken("holds 4 bytes");
	put_desc(EVENTQ, 0, EVBUF, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(EVENTQ, 1, EVBUF + 3, 4, VIRTQ_DESC_F_WRITE, 0);
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	expect_broken("holds 7 bytes");
	/* Loop, out of RAM, wrapping address: caught by the queue module. */
	put_desc(EVENTQ, 0, EVBUF, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(EVENTQ, 1, EVBUF, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	expect_broken("loops");
	put_desc(EVENTQ, 0, RAM_SIZE - 4, 8, VIRTQ_DESC_F_WRITE, 0);
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	expect_broken("outside guest RAM");
	put_desc(EVENTQ, 0, ~0ULL - 3, 8, VIRTQ_DESC_F_WRITE, 0);
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	expect_broken("wraps around");
	/* The avail index jumps past the ring. */
	put_desc(EVENTQ, 0, EVBUF, 8, VIRTQ_DESC_F_WRITE, 0);
	dq[EVENTQ].avail_idx = 100;
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	expect_broken("avail index jumped");
	/* The same problems found by a host event (the display thread's kick). */
	put_desc(EVENTQ, 0, EVBUF, 8, 0, 0);
	make_available(EVENTQ, 0);
	virtio_input_tablet_event(fx.tablet, 1, 1, 0, 0);
	expect_broken("device-readable");
}

static void test_hostile_split_and_reused_buffers(void **state)
{
	struct event ev;
	uint16_t head;

	(void)state;
	drv_start();
	/* An event split over three buffers arrives whole. */
	put_desc(EVENTQ, 0, EVBUF, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(EVENTQ, 1, EVBUF + 3, 2, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	put_desc(EVENTQ, 2, EVBUF + 5, 64, VIRTQ_DESC_F_WRITE, 0);
	make_available(EVENTQ, 0);
	notify(EVENTQ);
	virtio_input_tablet_event(fx.tablet, WIDTH - 1, 0, 0, 0);
	assert_true(next_event(&ev, &head));
	assert_int_equal(head, 0);
	assert_int_equal(ev.type, 3);
	assert_int_equal(ev.value, 32767);
	assert_false(next_event(&ev, NULL)); /* the SYN waits for a buffer */
	/* One descriptor offered again and again: the device holds at most a queue's worth and
	 * leaves the rest in the ring, where the ring check catches the overrun once it looks
	 * again. Nothing grows, nothing crashes. */
	put_desc(EVENTQ, 3, EVBUF + 24, 8, VIRTQ_DESC_F_WRITE, 0);
	for (unsigned i = 0; i < 3 * QSIZE; i++) {
		make_available(EVENTQ, 3);
		notify(EVENTQ);
	}
	assert_true(next_event(&ev, &head)); /* the SYN */
	assert_int_equal(ev.type, 0);
	assert_int_equal(head, 3);
	assert_false(broken());
	virtio_input_tablet_event(fx.tablet, 5, 5, 0, 0);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(next_event(&ev, &head));
		assert_int_equal(head, 3);
	}
	assert_false(next_event(&ev, &head));
	notify(EVENTQ);
	assert_true(broken());
	assert_non_null(strstr(log_text(), "avail index jumped"));
	/* Buffers given back by a reset are never written again. */
	memset(fake->ram + EVBUF, 0xAB, 64);
	common_wr(CC_STATUS, 1, 0);
	virtio_input_tablet_event(fx.tablet, 3, 3, 1, 0);
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(fake->ram[EVBUF + i], 0xAB);
}

static void test_status_queue(void **state)
{
	uint8_t led[8] = {0x11, 0, 1, 0, 1, 0, 0, 0}; /* EV_LED LED_CAPSL on */
	uint8_t *used;
	uint32_t len;

	(void)state;
	drv_start();
	memcpy(fake->ram + STATBUF, led, 8);
	put_desc(STATUSQ, 0, STATBUF, 8, 0, 0);
	make_available(STATUSQ, 0);
	put_desc(STATUSQ, 1, STATBUF + 8, 3, 0, 0); /* odd sizes are consumed too */
	make_available(STATUSQ, 1);
	notify(STATUSQ);
	assert_int_equal(used_idx(STATUSQ), 2);
	used = fake->ram + dq[STATUSQ].used + 4;
	memcpy(&len, used + 4, 4);
	assert_int_equal(len, 0);
	assert_false(broken());
	/* A loop on the status queue breaks the device like anywhere else. */
	put_desc(STATUSQ, 0, STATBUF, 8, VIRTQ_DESC_F_NEXT, 0);
	make_available(STATUSQ, 0);
	notify(STATUSQ);
	expect_broken("status queue");
}

/* The display thread sends while a vCPU thread runs the driver. */

static void *pointer_thread(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < 20000; i++)
		virtio_input_tablet_event(fx.tablet, (i * 7) % WIDTH, (i * 13) % HEIGHT,
					  (i / 100) & 7, 0);
	virtio_input_tablet_event(fx.tablet, 640, 480, 2, 0);
	return NULL;
}

static void test_threads(void **state)
{
	struct guest_state g = {0};
	pthread_t th;
	struct event ev;
	uint16_t head;
	bool running = true;
	unsigned idle = 0;

	(void)state;
	drv_start();
	post_event_buffers(0, QSIZE);
	assert_int_equal(pthread_create(&th, NULL, pointer_thread, NULL), 0);
	/* The driver: take each used buffer, replay its event, give it back. */
	while (running || idle < 3) {
		bool any = false;

		while (next_event(&ev, &head)) {
			replay(&g, &ev);
			make_available(EVENTQ, head);
			any = true;
		}
		notify(EVENTQ);
		if (running && pthread_tryjoin_np(th, NULL) == 0)
			running = false;
		idle = any || running ? 0 : idle + 1;
	}
	assert_false(broken());
	assert_true(g.reports > 0);
	assert_int_equal(g.x, scale(640, WIDTH));
	assert_int_equal(g.y, scale(480, HEIGHT));
	assert_int_equal(g.buttons, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pci_identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_encoding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scaling_and_clamping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backlog_coalesces_motion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backlog_is_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_event_buffers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_split_and_reused_buffers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests_name("virtio_input", tests, NULL, NULL);
}
