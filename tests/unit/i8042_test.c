/* Unit tests for hv/dev/i8042: the real device driven through its port handlers, with
 * fake vm_* functions that capture the I/O regions, record the interrupt lines and the
 * reset request. Covers Linux's probe sequence, scan code sets and translation, mouse
 * packets, bounded queues, interrupt edges and hostile port writes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/input-event-codes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/dev/i8042.h"
#include "hv/vm.h"
#include "lib/log.h"

/* ---- fake VM ---- */

static struct io_region regions[4];
static size_t nregions;
static int register_fail_at = -1; /* which vm_register_pio call fails, -1 none */
static int register_calls;
static bool irq_level[16];
static unsigned irq_rises[16];
static unsigned irq_calls;
static unsigned stop_requests;
static enum vm_stop_reason stop_reason;
static struct vm *const fake_vm = (struct vm *)&nregions;

int vm_register_pio(struct vm *vm, const struct io_region *r)
{
	assert_ptr_equal(vm, fake_vm);
	if (register_calls++ == register_fail_at)
		return -EEXIST;
	assert_true(nregions < 4);
	regions[nregions++] = *r;
	return 0;
}

int vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	assert_ptr_equal(vm, fake_vm);
	assert_true(gsi == VM_IRQ_KEYBOARD || gsi == VM_IRQ_MOUSE);
	/* The device drives a line only when its level changes. */
	assert_true(level != irq_level[gsi]);
	if (level)
		irq_rises[gsi]++;
	irq_level[gsi] = level;
	/* One output buffer: never both lines at once. */
	assert_false(irq_level[VM_IRQ_KEYBOARD] && irq_level[VM_IRQ_MOUSE]);
	irq_calls++;
	return 0;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why)
{
	assert_ptr_equal(vm, fake_vm);
	assert_non_null(why);
	stop_requests++;
	stop_reason = reason;
}

/* ---- port helpers ---- */

#define DATA	0x60
#define CMD	0x64
#define STS_OBF 0x01
#define STS_AUX 0x20

static struct i8042 *kbc;
static int log_fd = -1;

static const struct io_region *region_of(uint16_t port)
{
	for (size_t i = 0; i < nregions; i++)
		if (port >= regions[i].io_base && port < regions[i].io_base + regions[i].io_len)
			return &regions[i];
	fail_msg("port 0x%x not registered", port);
	return NULL;
}

static void out8(uint16_t port, uint8_t v)
{
	const struct io_region *r = region_of(port);

	r->io_write(r->io_opaque, port - r->io_base, &v, 1);
}

static uint8_t in8(uint16_t port)
{
	const struct io_region *r = region_of(port);
	uint8_t v = 0;

	r->io_read(r->io_opaque, port - r->io_base, &v, 1);
	return v;
}

static void command(uint8_t c)
{
	out8(CMD, c);
}

/* The next output byte, or -1 when the output buffer is empty. */
static int read_data(void)
{
	if (!(in8(CMD) & STS_OBF))
		return -1;
	return in8(DATA);
}

/* Reads everything the controller has to say (bounded), returns the count. */
static size_t drain(uint8_t *buf, size_t max)
{
	size_t n = 0;
	int b;

	while (n < 8192 && (b = read_data()) >= 0) {
		if (n < max)
			buf[n] = (uint8_t)b;
		n++;
	}
	return n;
}

static void want_bytes(const uint8_t *want, size_t n, int line)
{
	uint8_t got[64];
	size_t m = drain(got, sizeof(got));

	if (m != n || (n && memcmp(got, want, n) != 0)) {
		char text[512];
		size_t off = 0;

		for (size_t i = 0; i < m && i < sizeof(got) && off < sizeof(text) - 4; i++)
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%02x ", got[i]);
		text[off] = '\0';
		fail_msg("line %d: wanted %zu bytes starting %02x, got %zu: %s", line, n,
			 n ? want[0] : 0, m, text);
	}
}

#define WANT(...)                                                                                  \
	do {                                                                                       \
		const uint8_t want_[] = {__VA_ARGS__};                                             \
		want_bytes(want_, sizeof(want_), __LINE__);                                        \
	} while (0)
#define WANT_NOTHING() want_bytes(NULL, 0, __LINE__)

static uint8_t read_ctr(void)
{
	int v;

	command(0x20);
	v = read_data();
	assert_true(v >= 0);
	return (uint8_t)v;
}

static void write_ctr(uint8_t v)
{
	command(0x60);
	out8(DATA, v);
}

static void kbd_send(uint8_t v)
{
	out8(DATA, v);
}

static void aux_send(uint8_t v)
{
	command(0xD4);
	out8(DATA, v);
}

static void key(unsigned code, bool down)
{
	i8042_key_event(kbc, code, down);
}

/* Keyboard interrupt and translation on, mouse port and interrupt on, scanning on. */
static void linux_ready(void)
{
	write_ctr(0x47);
	kbd_send(0xF4);
	WANT(0xFA);
}

static void mouse_ready(void)
{
	linux_ready();
	aux_send(0xFF);
	WANT(0xFA, 0xAA, 0x00);
	aux_send(0xF4);
	WANT(0xFA);
}

static int setup(void **state)
{
	(void)state;
	memset(regions, 0, sizeof(regions));
	nregions = 0;
	register_calls = 0;
	register_fail_at = -1;
	memset(irq_level, 0, sizeof(irq_level));
	memset(irq_rises, 0, sizeof(irq_rises));
	irq_calls = 0;
	stop_requests = 0;
	stop_reason = VM_STOP_NONE;
	log_fd = open("/dev/null", O_WRONLY);
	log_set_fd(log_fd);
	log_init("i8042_test", LOG_LEVEL_INFO, false);
	kbc = i8042_create(fake_vm);
	assert_non_null(kbc);
	assert_int_equal(nregions, 2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	i8042_free(kbc);
	kbc = NULL;
	log_set_fd(-1);
	close(log_fd);
	return 0;
}

/* ---- tests ---- */

static void test_linux_probe(void **state)
{
	uint8_t ctr;

	(void)state;
	/* Power-on: nothing to read, SYS and the key-lock bit set, a BIOS-like CTR. */
	assert_int_equal(in8(CMD), 0x14);
	WANT_NOTHING();
	assert_int_equal(read_ctr(), 0x65);
	assert_int_equal(in8(CMD) & 0x08, 0x08); /* A2: last write was a command */

	/* i8042_controller_selftest */
	command(0xAA);
	assert_int_equal(in8(CMD) & (STS_OBF | STS_AUX), STS_OBF);
	WANT(0x55);

	/* i8042_controller_init: stable CTR, then ports off and interrupts off. */
	ctr = read_ctr();
	assert_int_equal(read_ctr(), ctr);
	ctr = (uint8_t)((ctr | 0x30) & ~0x03);
	write_ctr(ctr);
	assert_int_equal(read_ctr(), ctr);
	assert_int_equal(in8(CMD) & 0x04, 0x04);

	/* i8042_check_aux: loopback answers on the AUX side. */
	command(0xD3);
	out8(DATA, 0x5A);
	assert_int_equal(in8(CMD) & (STS_OBF | STS_AUX), STS_OBF | STS_AUX);
	WANT(0x5A);
	command(0xA9);
	WANT(0x00);
	command(0xA7);
	assert_true(read_ctr() & 0x20);
	command(0xA8);
	assert_false(read_ctr() & 0x20);

	/* The multiplexer probe must find a plain controller (third echo unchanged). */
	command(0xD3);
	out8(DATA, 0xF0);
	WANT(0xF0);
	command(0xD3);
	out8(DATA, 0x56);
	WANT(0x56);
	command(0xD3);
	out8(DATA, 0xA4);
	WANT(0xA4);

	/* AUX IRQ delivery test: IRQ 12 rises for the looped byte. */
	write_ctr((uint8_t)((ctr | 0x02) & ~0x20));
	command(0xD3);
	out8(DATA, 0xA5);
	assert_true(irq_level[VM_IRQ_MOUSE]);
	assert_int_equal(irq_rises[VM_IRQ_MOUSE], 1);
	assert_int_equal(in8(DATA), 0xA5);
	assert_false(irq_level[VM_IRQ_MOUSE]);

	command(0xAB);
	WANT(0x00);

	/* Ports on with interrupts, as i8042_enable_kbd_port/aux_port leave them. */
	write_ctr(0x47);

	/* atkbd_probe and atkbd_activate. */
	kbd_send(0xF2);
	WANT(0xFA, 0xAB, 0x41);
	kbd_send(0xF5);
	WANT(0xFA);
	kbd_send(0xED);
	WANT(0xFA);
	kbd_send(0x02);
	WANT(0xFA);
	kbd_send(0xF3);
	kbd_send(0x00);
	WANT(0xFA, 0xFA);
	kbd_send(0xF4);
	WANT(0xFA);
	kbd_send(0xEE);
	WANT(0xEE);
	kbd_send(0xFF);
	WANT(0xFA, 0xAA);

	/* psmouse: reset, id, IntelliMouse knock, id 3, enable. */
	aux_send(0xFF);
	WANT(0xFA, 0xAA, 0x00);
	aux_send(0xF2);
	WANT(0xFA, 0x00);
	aux_send(0xF3);
	aux_send(200);
	aux_send(0xF3);
	aux_send(100);
	aux_send(0xF3);
	aux_send(80);
	WANT(0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA);
	aux_send(0xF2);
	WANT(0xFA, 0x03);
	aux_send(0xE8);
	aux_send(0x03);
	aux_send(0xE6);
	aux_send(0xF4);
	WANT(0xFA, 0xFA, 0xFA, 0xFA);

	/* And input flows. */
	key(KEY_A, true);
	assert_true(irq_level[VM_IRQ_KEYBOARD]);
	WANT(0x1E);
	i8042_mouse_event(kbc, 1, 0, 0, 0);
	assert_true(irq_level[VM_IRQ_MOUSE]);
	assert_int_equal(in8(CMD) & STS_AUX, STS_AUX);
	WANT(0x08, 0x01, 0x00, 0x00);
	assert_int_equal(stop_requests, 0);
}

static void test_scanning_starts_disabled(void **state)
{
	(void)state;
	key(KEY_A, true);
	key(KEY_A, false);
	WANT_NOTHING();
	kbd_send(0xF4);
	WANT(0xFA);
	key(KEY_A, true);
	WANT(0x1E);
	kbd_send(0xF5); /* disable: dropped again */
	WANT(0xFA);
	key(KEY_A, false);
	WANT_NOTHING();
	kbd_send(0xFF); /* reset: enabled, like a real keyboard after BAT */
	WANT(0xFA, 0xAA);
	key(KEY_A, false);
	WANT(0x9E);
	/* Keys the keyboard has no code for are ignored. */
	key(KEY_MAX, true);
	key(KEY_BRIGHTNESSUP, true);
	key(0x7FFFFFFF, true);
	WANT_NOTHING();
}

static void test_translated_set1(void **state)
{
	(void)state;
	linux_ready();
	key(KEY_A, true);
	key(KEY_A, false);
	WANT(0x1E, 0x9E);
	key(KEY_UP, true);
	key(KEY_UP, false);
	WANT(0xE0, 0x48, 0xE0, 0xC8);
	key(KEY_RIGHTCTRL, true);
	key(KEY_RIGHTCTRL, false);
	WANT(0xE0, 0x1D, 0xE0, 0x9D);
	key(KEY_KPENTER, true);
	WANT(0xE0, 0x1C);
	key(KEY_F7, true);
	key(KEY_F7, false);
	WANT(0x41, 0xC1);
	key(KEY_LEFTMETA, true);
	WANT(0xE0, 0x5B);
	key(KEY_SYSRQ, true);
	key(KEY_SYSRQ, false);
	WANT(0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA);
	key(KEY_PAUSE, true);
	key(KEY_PAUSE, false);
	WANT(0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5);
	key(KEY_DELETE, true);
	WANT(0xE0, 0x53);
	key(KEY_ESC, true);
	WANT(0x01);
	/* Replies are translated too: scan code set 2 reads as 0x41. */
	kbd_send(0xF0);
	kbd_send(0x00);
	WANT(0xFA, 0xFA, 0x41);
}

static void test_raw_set2_and_set1(void **state)
{
	(void)state;
	write_ctr(0x05); /* no translation */
	kbd_send(0xF2);
	WANT(0xFA, 0xAB, 0x83);
	kbd_send(0xF4);
	WANT(0xFA);
	key(KEY_A, true);
	key(KEY_A, false);
	WANT(0x1C, 0xF0, 0x1C);
	key(KEY_UP, true);
	key(KEY_UP, false);
	WANT(0xE0, 0x75, 0xE0, 0xF0, 0x75);
	key(KEY_SYSRQ, true);
	key(KEY_SYSRQ, false);
	WANT(0xE0, 0x12, 0xE0, 0x7C, 0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12);
	key(KEY_PAUSE, true);
	key(KEY_PAUSE, false);
	WANT(0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77);
	key(KEY_F7, true);
	WANT(0x83);

	kbd_send(0xF0);
	kbd_send(0x00);
	WANT(0xFA, 0xFA, 0x02);
	kbd_send(0xF0);
	kbd_send(0x03); /* no set 3 */
	WANT(0xFA, 0xFE);
	kbd_send(0xF0);
	kbd_send(0x01);
	WANT(0xFA, 0xFA);
	key(KEY_A, true);
	key(KEY_A, false);
	key(KEY_UP, true);
	WANT(0x1E, 0x9E, 0xE0, 0x48);
	kbd_send(0xF0);
	kbd_send(0x00);
	WANT(0xFA, 0xFA, 0x01);
	kbd_send(0xF6); /* defaults: back to set 2 */
	WANT(0xFA);
	key(KEY_A, true);
	WANT(0x1C);

	/* Not-a-command bytes get Resend; set-3 commands are acknowledged. */
	kbd_send(0x42);
	WANT(0xFE);
	kbd_send(0xFA);
	WANT(0xFA);
	/* A command in place of an argument is a command. */
	kbd_send(0xED);
	kbd_send(0xF2);
	WANT(0xFA, 0xFA, 0xAB, 0x83);
}

/* Every key of a US 105-key keyboard has a code; codes are distinct; releases are the
 * make code with F0 (raw) or bit 7 (translated). */
static void test_keycode_table(void **state)
{
	static const unsigned us_keys[] = {
	    KEY_ESC,	   KEY_1,	   KEY_2,	  KEY_3,	  KEY_4,
	    KEY_5,	   KEY_6,	   KEY_7,	  KEY_8,	  KEY_9,
	    KEY_0,	   KEY_MINUS,	   KEY_EQUAL,	  KEY_BACKSPACE,  KEY_TAB,
	    KEY_Q,	   KEY_W,	   KEY_E,	  KEY_R,	  KEY_T,
	    KEY_Y,	   KEY_U,	   KEY_I,	  KEY_O,	  KEY_P,
	    KEY_LEFTBRACE, KEY_RIGHTBRACE, KEY_ENTER,	  KEY_LEFTCTRL,	  KEY_A,
	    KEY_S,	   KEY_D,	   KEY_F,	  KEY_G,	  KEY_H,
	    KEY_J,	   KEY_K,	   KEY_L,	  KEY_SEMICOLON,  KEY_APOSTROPHE,
	    KEY_GRAVE,	   KEY_LEFTSHIFT,  KEY_BACKSLASH, KEY_Z,	  KEY_X,
	    KEY_C,	   KEY_V,	   KEY_B,	  KEY_N,	  KEY_M,
	    KEY_COMMA,	   KEY_DOT,	   KEY_SLASH,	  KEY_RIGHTSHIFT, KEY_KPASTERISK,
	    KEY_LEFTALT,   KEY_SPACE,	   KEY_CAPSLOCK,  KEY_F1,	  KEY_F2,
	    KEY_F3,	   KEY_F4,	   KEY_F5,	  KEY_F6,	  KEY_F7,
	    KEY_F8,	   KEY_F9,	   KEY_F10,	  KEY_F11,	  KEY_F12,
	    KEY_NUMLOCK,   KEY_SCROLLLOCK, KEY_KP7,	  KEY_KP8,	  KEY_KP9,
	    KEY_KPMINUS,   KEY_KP4,	   KEY_KP5,	  KEY_KP6,	  KEY_KPPLUS,
	    KEY_KP1,	   KEY_KP2,	   KEY_KP3,	  KEY_KP0,	  KEY_KPDOT,
	    KEY_102ND,	   KEY_KPENTER,	   KEY_RIGHTCTRL, KEY_KPSLASH,	  KEY_SYSRQ,
	    KEY_RIGHTALT,  KEY_HOME,	   KEY_UP,	  KEY_PAGEUP,	  KEY_LEFT,
	    KEY_RIGHT,	   KEY_END,	   KEY_DOWN,	  KEY_PAGEDOWN,	  KEY_INSERT,
	    KEY_DELETE,	   KEY_PAUSE,	   KEY_LEFTMETA,  KEY_RIGHTMETA,  KEY_COMPOSE,
	};
	static uint8_t raw[KEY_CNT][8], xl[KEY_CNT][8];
	static size_t raw_len[KEY_CNT], xl_len[KEY_CNT];
	uint8_t buf[16];
	size_t n;

	(void)state;
	kbd_send(0xF4);
	WANT(0xFA);
	for (int pass = 0; pass < 2; pass++) {
		write_ctr(pass ? 0x45 : 0x05);
		for (unsigned code = 0; code < KEY_CNT; code++) {
			uint8_t(*make)[8] = pass ? xl : raw;
			size_t *make_len = pass ? xl_len : raw_len;

			key(code, true);
			n = drain(buf, sizeof(buf));
			assert_true(n <= 8);
			memcpy(make[code], buf, n);
			make_len[code] = n;
			key(code, false);
			n = drain(buf, sizeof(buf));
			if (code == KEY_PAUSE || make_len[code] == 0) {
				assert_int_equal(n, 0);
				continue;
			}
			if (code == KEY_SYSRQ || code == KEY_PRINT)
				continue; /* checked in the set tests */
			if (pass == 0) {  /* [E0] F0 code */
				assert_int_equal(n, make_len[code] + 1);
				assert_int_equal(buf[n - 2], 0xF0);
				assert_int_equal(buf[n - 1], make[code][make_len[code] - 1]);
			} else { /* [E0] code|0x80 */
				assert_int_equal(n, make_len[code]);
				assert_int_equal(buf[n - 1], make[code][n - 1] | 0x80);
				assert_false(make[code][n - 1] & 0x80);
			}
			assert_memory_equal(buf, make[code], make_len[code] - 1);
		}
	}
	for (size_t i = 0; i < sizeof(us_keys) / sizeof(us_keys[0]); i++) {
		if (raw_len[us_keys[i]] == 0)
			fail_msg("key %u has no scan code", us_keys[i]);
		assert_int_not_equal(xl_len[us_keys[i]], 0);
	}
	for (unsigned a = 0; a < KEY_CNT; a++) {
		for (unsigned b = a + 1; b < KEY_CNT; b++) {
			if (!raw_len[a] || (a == KEY_SYSRQ && b == KEY_PRINT))
				continue;
			if (raw_len[a] == raw_len[b] && !memcmp(raw[a], raw[b], raw_len[a]))
				fail_msg("keys %u and %u share a set 2 code", a, b);
			if (xl_len[a] == xl_len[b] && !memcmp(xl[a], xl[b], xl_len[a]))
				fail_msg("keys %u and %u share a set 1 code", a, b);
		}
	}
	/* Spot checks against the PC tables. */
	assert_int_equal(raw[KEY_A][0], 0x1C);
	assert_int_equal(xl[KEY_A][0], 0x1E);
	assert_int_equal(raw[KEY_ENTER][0], 0x5A);
	assert_int_equal(xl[KEY_ENTER][0], 0x1C);
	assert_int_equal(xl[KEY_F12][0], 0x58);
	assert_int_equal(xl[KEY_NUMLOCK][0], 0x45);
	assert_int_equal(xl[KEY_KPASTERISK][0], 0x37);
	assert_int_equal(xl[KEY_KPSLASH][1], 0x35);
}

static void test_mouse_packets(void **state)
{
	(void)state;
	mouse_ready();
	aux_send(0xF2);
	WANT(0xFA, 0x00);
	i8042_mouse_event(kbc, 5, -3, 0, 0); /* right and up */
	WANT(0x08, 0x05, 0x03);
	i8042_mouse_event(kbc, -5, 3, 0, 1); /* left and down, left button */
	WANT(0x39, 0xFB, 0xFD);
	i8042_mouse_event(kbc, 0, 0, 0, 1 | 2 | 4);
	WANT(0x0F, 0x00, 0x00);
	i8042_mouse_event(kbc, 0, 0, 0, 7); /* nothing changed: no packet */
	WANT_NOTHING();
	i8042_mouse_event(kbc, 0, 0, 3, 7); /* no wheel yet */
	WANT_NOTHING();
	i8042_mouse_event(kbc, 0, 0, 0, 0x100 | 2); /* unknown buttons ignored */
	WANT(0x0A, 0x00, 0x00);

	/* Status request: enabled, right button, resolution 2, 100 samples/s. */
	aux_send(0xE9);
	WANT(0xFA, 0x21, 0x02, 100);
	aux_send(0xF5);
	WANT(0xFA);
	i8042_mouse_event(kbc, 5, 5, 0, 0);
	WANT_NOTHING();
	aux_send(0x42); /* not a command */
	WANT(0xFE);
	aux_send(0xF4);
	WANT(0xFA);
	/* The mouse port disabled in the CTR holds the bytes back. */
	command(0xA7);
	i8042_mouse_event(kbc, 1, 0, 0, 0);
	WANT_NOTHING();
	command(0xA8);
	WANT(0x08, 0x01, 0x00);
}

static void test_mouse_split_and_overflow(void **state)
{
	(void)state;
	mouse_ready();
	i8042_mouse_event(kbc, 600, 0, 0, 0);
	WANT(0x08, 0xFF, 0x00, 0x08, 0xFF, 0x00, 0x08, 0x5A, 0x00);
	/* -256 would read as 0 in Linux: the most negative step is -255. */
	i8042_mouse_event(kbc, -300, 0, 0, 0);
	WANT(0x18, 0x01, 0x00, 0x18, 0xD3, 0x00);
	i8042_mouse_event(kbc, 0, 300, 0, 0); /* down */
	WANT(0x28, 0x00, 0x01, 0x28, 0x00, 0xD3);
	i8042_mouse_event(kbc, 255, -255, 0, 0);
	WANT(0x08, 0xFF, 0xFF);
	/* Beyond 8 packets the rest is dropped and the last packet says overflow. */
	i8042_mouse_event(kbc, 5000, 0, 0, 0);
	WANT(0x08, 0xFF, 0x00, 0x08, 0xFF, 0x00, 0x08, 0xFF, 0x00, 0x08, 0xFF, 0x00, 0x08, 0xFF,
	     0x00, 0x08, 0xFF, 0x00, 0x08, 0xFF, 0x00, 0x48, 0xFF, 0x00);
	i8042_mouse_event(kbc, INT_MIN, INT_MAX, INT_MIN, 0);
	WANT(0x38, 0x01, 0x01, 0x38, 0x01, 0x01, 0x38, 0x01, 0x01, 0x38, 0x01, 0x01, 0x38, 0x01,
	     0x01, 0x38, 0x01, 0x01, 0x38, 0x01, 0x01, 0xF8, 0x01, 0x01);
}

static void test_mouse_wheel(void **state)
{
	(void)state;
	mouse_ready();
	/* The wrong order does not enable the wheel. */
	aux_send(0xF3);
	aux_send(200);
	aux_send(0xF3);
	aux_send(80);
	aux_send(0xF3);
	aux_send(100);
	aux_send(0xF2);
	WANT(0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0x00);
	aux_send(0xF3);
	aux_send(200);
	aux_send(0xF3);
	aux_send(100);
	aux_send(0xF3);
	aux_send(80);
	aux_send(0xF2);
	WANT(0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0x03);
	i8042_mouse_event(kbc, 0, 0, 1, 0); /* scroll up: Linux reads -(s8)byte3 */
	WANT(0x08, 0x00, 0x00, 0xFF);
	i8042_mouse_event(kbc, 0, 0, -2, 0);
	WANT(0x08, 0x00, 0x00, 0x02);
	i8042_mouse_event(kbc, 1, 0, 20, 4);
	WANT(0x0C, 0x01, 0x00, 0xF8, 0x0C, 0x00, 0x00, 0xF8, 0x0C, 0x00, 0x00, 0xFC);
	/* Reset forgets the wheel. */
	aux_send(0xFF);
	WANT(0xFA, 0xAA, 0x00);
	aux_send(0xF2);
	WANT(0xFA, 0x00);
}

static void test_mouse_remote_and_wrap(void **state)
{
	(void)state;
	mouse_ready();
	aux_send(0xF0);
	WANT(0xFA);
	i8042_mouse_event(kbc, 10, 0, 0, 0);
	i8042_mouse_event(kbc, 5, -2, 0, 1);
	WANT_NOTHING();
	aux_send(0xEB);
	WANT(0xFA, 0x09, 0x0F, 0x02);
	aux_send(0xEB);
	WANT(0xFA, 0x09, 0x00, 0x00);
	i8042_mouse_event(kbc, 1000, 0, 0, 0);
	aux_send(0xEB);
	WANT(0xFA, 0x48, 0xFF, 0x00);
	aux_send(0xE9);
	WANT(0xFA, 0x60, 0x02, 100);
	aux_send(0xEA);
	WANT(0xFA);
	i8042_mouse_event(kbc, 1, 0, 0, 0);
	WANT(0x08, 0x01, 0x00);

	/* Wrap mode echoes until Reset Wrap. */
	aux_send(0xEE);
	WANT(0xFA);
	aux_send(0x12);
	aux_send(0xF4);
	WANT(0x12, 0xF4);
	aux_send(0xEC);
	WANT(0xFA);
	aux_send(0xFE); /* resend the last unit */
	WANT(0xFA);
}

static void test_queue_full(void **state)
{
	uint8_t *buf = malloc(8192);
	char logbuf[4096];
	FILE *logf = tmpfile();
	size_t n;
	ssize_t got;

	(void)state;
	assert_non_null(buf);
	assert_non_null(logf);
	log_set_fd(fileno(logf));
	linux_ready();

	/* Keyboard: one byte per event, 2000 events, nobody reading. */
	for (int i = 0; i < 2000; i++)
		key(KEY_A, i % 2 == 0);
	/* A command still gets its reply: the queue keeps room for it. */
	kbd_send(0xEE);
	n = drain(buf, 8192);
	assert_true(n > 500 && n < 1100);
	for (size_t i = 0; i + 1 < n; i++)
		assert_int_equal(buf[i], i % 2 == 0 ? 0x1E : 0x9E);
	assert_int_equal(buf[n - 1], 0xEE);

	/* Multi-byte sequences are kept or dropped whole. */
	write_ctr(0x07);
	for (int i = 0; i < 2000; i++)
		key(KEY_UP, i % 2 == 0);
	n = drain(buf, 8192);
	assert_true(n > 500 && n < 1100);
	for (size_t i = 0, presses = 0; i < n; presses++) {
		if (presses % 2 == 0) {
			assert_true(i + 2 <= n);
			assert_memory_equal(buf + i, ((const uint8_t[]){0xE0, 0x75}), 2);
			i += 2;
		} else {
			assert_true(i + 3 <= n);
			assert_memory_equal(buf + i, ((const uint8_t[]){0xE0, 0xF0, 0x75}), 3);
			i += 3;
		}
	}

	/* Mouse: whole packets only. */
	aux_send(0xFF);
	WANT(0xFA, 0xAA, 0x00);
	aux_send(0xF4);
	WANT(0xFA);
	for (int i = 0; i < 2000; i++)
		i8042_mouse_event(kbc, i % 2 ? 1 : -1, 0, 0, 0);
	n = drain(buf, 8192);
	assert_int_equal(n % 3, 0);
	assert_true(n > 500 && n < 1100);
	for (size_t i = 0; i < n; i += 3)
		assert_true(buf[i] & 0x08);

	/* Input flows again once the guest reads. */
	key(KEY_A, true);
	WANT(0x1C);

	/* Each overflow episode is logged once. */
	fflush(logf);
	rewind(logf);
	got = read(fileno(logf), logbuf, sizeof(logbuf) - 1);
	assert_true(got > 0);
	logbuf[got] = '\0';
	n = 0;
	for (char *p = logbuf; (p = strstr(p, "keyboard queue full")); p++)
		n++;
	assert_int_equal(n, 2);
	assert_non_null(strstr(logbuf, "mouse queue full"));
	log_set_fd(log_fd);
	fclose(logf);
	free(buf);
}

static void test_irq_edges(void **state)
{
	(void)state;
	linux_ready();
	irq_rises[VM_IRQ_KEYBOARD] = 0;
	key(KEY_A, true);
	key(KEY_A, false);
	assert_true(irq_level[VM_IRQ_KEYBOARD]);
	assert_int_equal(irq_rises[VM_IRQ_KEYBOARD], 1);
	/* Reading drops the line and the next byte raises it again: one edge per byte. */
	assert_int_equal(in8(DATA), 0x1E);
	assert_true(irq_level[VM_IRQ_KEYBOARD]);
	assert_int_equal(irq_rises[VM_IRQ_KEYBOARD], 2);
	assert_int_equal(in8(DATA), 0x9E);
	assert_false(irq_level[VM_IRQ_KEYBOARD]);
	/* Reading an empty buffer returns the last byte and changes nothing. */
	assert_int_equal(in8(DATA), 0x9E);
	assert_int_equal(irq_rises[VM_IRQ_KEYBOARD], 2);

	/* Interrupt disabled in the CTR: polled only, the line stays low... */
	write_ctr(0x44);
	key(KEY_B, true);
	assert_false(irq_level[VM_IRQ_KEYBOARD]);
	assert_int_equal(in8(CMD) & STS_OBF, STS_OBF);
	/* ...until the guest enables it with a byte waiting. */
	write_ctr(0x45);
	assert_true(irq_level[VM_IRQ_KEYBOARD]);
	WANT(0x30);
	assert_false(irq_level[VM_IRQ_KEYBOARD]);

	/* Keyboard port disabled: bytes wait in the keyboard. */
	command(0xAD);
	key(KEY_C, true);
	WANT_NOTHING();
	command(0xAE);
	WANT(0x2E);

	/* Controller replies use IRQ 1; mouse bytes IRQ 12. */
	command(0xAA);
	assert_true(irq_level[VM_IRQ_KEYBOARD]);
	WANT(0x55);
	write_ctr(0x47);
	command(0xD2);
	out8(DATA, 0x99);
	assert_true(irq_level[VM_IRQ_KEYBOARD]);
	assert_int_equal(in8(CMD) & STS_AUX, 0);
	WANT(0x99);
	command(0xD3);
	out8(DATA, 0x98);
	assert_true(irq_level[VM_IRQ_MOUSE]);
	WANT(0x98);
	assert_false(irq_level[VM_IRQ_MOUSE]);
}

static void test_reset(void **state)
{
	(void)state;
	command(0xFF); /* pulse nothing */
	assert_int_equal(stop_requests, 0);
	command(0xD1);
	out8(DATA, 0x03); /* reset line high */
	assert_int_equal(stop_requests, 0);
	command(0xD0);
	WANT(0x03);
	command(0xFE);
	assert_int_equal(stop_requests, 1);
	assert_int_equal(stop_reason, VM_STOP_RESET);
	command(0xF0); /* pulse every line, reset among them */
	assert_int_equal(stop_requests, 2);
	command(0xD1);
	out8(DATA, 0x02);
	assert_int_equal(stop_requests, 3);
	/* A command cancels a pending one: 0xFE after 0xD1 still resets. */
	command(0xD1);
	command(0xFE);
	assert_int_equal(stop_requests, 4);
}

static void test_wide_accesses(void **state)
{
	const struct io_region *r = region_of(DATA);
	uint8_t buf[8];

	(void)state;
	command(0xAA);
	memset(buf, 0, sizeof(buf));
	r->io_read(r->io_opaque, 0, buf, 4);
	assert_int_equal(buf[0], 0x55);
	assert_int_equal(buf[1], 0xFF);
	assert_int_equal(buf[3], 0xFF);
	r = region_of(CMD);
	memcpy(buf, (const uint8_t[]){0xAA, 0x12, 0x34, 0x56, 0, 0, 0, 0}, 8);
	r->io_write(r->io_opaque, 0, buf, 8);
	WANT(0x55);
}

/* Random writes and reads of every port, value and width, mixed with host input, never
 * crash, overflow or wedge the device (run under SAN=1). */
static void test_hostile_guest(void **state)
{
	uint64_t seed = 0x8042;
	uint8_t buf[8];

	(void)state;
	log_set_level(LOG_LEVEL_DEBUG); /* exercise the log lines too */
	for (int i = 0; i < 300000; i++) {
		uint32_t r;
		const struct io_region *reg;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		r = (uint32_t)(seed >> 33);
		reg = &regions[r & 1];
		for (size_t j = 0; j < sizeof(buf); j++)
			buf[j] = (uint8_t)(r >> (j % 3 * 8));
		switch ((r >> 1) % 8) {
		case 0:
		case 1:
		case 2: reg->io_write(reg->io_opaque, 0, buf, 1u << ((r >> 20) % 4)); break;
		case 3:
		case 4: reg->io_read(reg->io_opaque, 0, buf, 1u << ((r >> 20) % 4)); break;
		case 5: key((r >> 8) % (KEY_CNT + 16), r & 0x10); break;
		case 6:
			i8042_mouse_event(kbc, (int)(r * 2654435761u), (int)(r << 7),
					  (int)((r >> 4) % 40) - 20, r >> 28);
			break;
		case 7: /* plausible Linux traffic keeps the device in interesting states */
			command(0xD4);
			out8(DATA, (uint8_t[]){0xF4, 0xF3, 200, 100, 80, 0xF2, 0xEB, 0xF0}[r % 8]);
			break;
		}
		assert_int_equal(in8(CMD) & 0x02, 0); /* never busy */
		if (in8(CMD) & STS_AUX)
			assert_true(in8(CMD) & STS_OBF);
	}
	log_set_level(LOG_LEVEL_INFO);

	/* Still a working controller and keyboard afterwards. */
	command(0xA7);
	command(0xAD);
	drain(buf, 0);
	write_ctr(0x65);
	drain(buf, 0); /* what the keyboard still held */
	kbd_send(0xFF);
	WANT(0xFA, 0xAA);
	aux_send(0xFF); /* may be swallowed as a pending argument */
	drain(buf, 0);
	aux_send(0xFF);
	WANT(0xFA, 0xAA, 0x00);
	key(KEY_A, true);
	WANT(0x1E);
}

struct typist {
	unsigned long events;
	atomic_ulong consumed; /* bytes the reader has seen; the typist stays 500 ahead */
};

static void *type_keys(void *arg)
{
	struct typist *t = arg;

	for (unsigned long i = 0; i < t->events; i++) {
		while (i - atomic_load(&t->consumed) > 500)
			sched_yield();
		key(KEY_A, i % 2 == 0);
	}
	return NULL;
}

/* Host events from another thread while the vCPU side reads: nothing lost, nothing
 * reordered, as long as the guest keeps up. */
static void test_threads(void **state)
{
	struct typist t = {.events = 100000};
	pthread_t th;
	unsigned long seen = 0;

	(void)state;
	linux_ready();
	assert_int_equal(pthread_create(&th, NULL, type_keys, &t), 0);
	while (seen < t.events) {
		int b = read_data();

		if (b < 0) {
			sched_yield();
			continue;
		}
		assert_int_equal(b, seen % 2 == 0 ? 0x1E : 0x9E);
		atomic_store(&t.consumed, ++seen);
	}
	pthread_join(th, NULL);
	WANT_NOTHING();
}

static void test_create_failure(void **state)
{
	(void)state;
	i8042_free(kbc);
	nregions = 0;
	register_calls = 0;
	register_fail_at = 0;
	assert_null(i8042_create(fake_vm));
	assert_int_equal(nregions, 0);
	/* The second port fails: the first still points at the state, which stays. */
	register_calls = 0;
	register_fail_at = 1;
	assert_null(i8042_create(fake_vm));
	assert_int_equal(nregions, 1);
	kbc = regions[0].io_opaque; /* freed by teardown */
	assert_int_equal(in8(DATA), 0x00);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_linux_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scanning_starts_disabled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_translated_set1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_raw_set2_and_set1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keycode_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mouse_packets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mouse_split_and_overflow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mouse_wheel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mouse_remote_and_wrap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_irq_edges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_failure, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
