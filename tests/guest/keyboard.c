/* Keyboard test guest: brings up the i8042 and the keyboard the way Linux does (flush,
 * self-test, command byte, keyboard reset and id, LEDs, scanning on), then takes IRQ 1
 * through the IOAPIC and decodes set-1 scan codes: "keyboard: scancode XX" for every
 * byte, "keyboard: line <text>" for every Enter; the line "done" passes. Caps Lock
 * sends the LED command while keys keep coming, as atkbd does. */
#include "rt.h"

#define VEC_KBD	    0x21
#define PORT_DATA   0x60
#define PORT_STATUS 0x64
#define STS_OBF	    0x01
#define STS_IBF	    0x02
#define STS_AUX	    0x20
#define CTR_KBD_INT 0x01
#define CTR_SYS	    0x04
#define CTR_AUX_DIS 0x20
#define CTR_XLATE   0x40
#define POLL_LIMIT  10000 /* status reads before giving up (slow KVM: ~1 ms each) */

/* Bytes from the interrupt handler to the main loop. */
static volatile uint8_t ring[256];
static volatile unsigned ring_head, ring_tail;

static void kbd_irq(uint8_t vector)
{
	(void)vector;
	for (int i = 0; i < 64; i++) {
		uint8_t st = inb(PORT_STATUS);
		uint8_t b;

		if (!(st & STS_OBF))
			break;
		b = inb(PORT_DATA);
		if (st & STS_AUX)
			continue;
		if (ring_head - ring_tail < sizeof(ring))
			ring[ring_head++ % sizeof(ring)] = b;
	}
	rt_lapic_eoi();
}

static void wait_write(void)
{
	for (int i = 0; i < POLL_LIMIT && (inb(PORT_STATUS) & STS_IBF); i++)
		cpu_relax();
}

static void controller_command(uint8_t cmd)
{
	wait_write();
	outb(PORT_STATUS, cmd);
}

static void data_write(uint8_t b)
{
	wait_write();
	outb(PORT_DATA, b);
}

/* Polled read while the keyboard interrupt is off; -1 after POLL_LIMIT tries. */
static int poll_read(void)
{
	for (int i = 0; i < POLL_LIMIT; i++)
		if (inb(PORT_STATUS) & STS_OBF)
			return inb(PORT_DATA);
	return -1;
}

static void want(const char *what, uint8_t expected)
{
	int b = poll_read();

	if (b != expected)
		rt_fail("keyboard", "%s: got %d, wanted 0x%x", what, b, expected);
}

static void init_keyboard(void)
{
	uint8_t ctr = CTR_XLATE | CTR_SYS | CTR_AUX_DIS;

	for (int i = 0; i < 32 && (inb(PORT_STATUS) & STS_OBF); i++)
		inb(PORT_DATA);
	controller_command(0xAA);
	want("controller self-test", 0x55);
	controller_command(0x60); /* keyboard port on, interrupts off while polling */
	data_write(ctr);
	controller_command(0x20);
	if (poll_read() != ctr)
		rt_fail("keyboard", "command byte did not stick");
	controller_command(0xAB);
	want("keyboard interface test", 0x00);
	data_write(0xFF);
	want("reset ack", 0xFA);
	want("reset self-test", 0xAA);
	data_write(0xF2);
	want("get id ack", 0xFA);
	want("id byte 1", 0xAB);
	want("id byte 2 (translated)", 0x41);
	data_write(0xED);
	want("set leds ack", 0xFA);
	data_write(0x00);
	want("leds ack", 0xFA);
	data_write(0xF4);
	want("enable ack", 0xFA);

	rt_lapic_enable();
	rt_set_handler(VEC_KBD, kbd_irq);
	rt_ioapic_route(1, VEC_KBD, false);
	controller_command(0x60);
	data_write(ctr | CTR_KBD_INT);
	irq_enable();
}

/* Set 1 make codes 0x00-0x39 to characters, without and with Shift. */
static const char plain[0x3B] = "\0\0"
				"1234567890-="
				"\0\t"
				"qwertyuiop[]"
				"\0\0"
				"asdfghjkl;'`"
				"\0\\"
				"zxcvbnm,./"
				"\0*\0 ";
static const char shifted[0x3B] = "\0\0"
				  "!@#$%^&*()_+"
				  "\0\t"
				  "QWERTYUIOP{}"
				  "\0\0"
				  "ASDFGHJKL:\"~"
				  "\0|"
				  "ZXCVBNM<>?"
				  "\0*\0 ";

enum led_state { LED_IDLE, LED_WAIT_COMMAND_ACK, LED_WAIT_VALUE_ACK };

static struct {
	bool shift_l, shift_r, caps, e0;
	unsigned pause_left; /* bytes of the Pause sequence still to skip */
	enum led_state led;
	uint8_t leds;
	char line[128];
	unsigned len;
} kbd;

static void end_line(void)
{
	kbd.line[kbd.len] = '\0';
	rt_printf("keyboard: line %s\n", kbd.line);
	if (kbd.len == 4 && !memcmp(kbd.line, "done", 4))
		rt_pass("keyboard");
	kbd.len = 0;
}

static void caps_lock(void)
{
	kbd.caps = !kbd.caps;
	kbd.leds = kbd.caps ? 0x04 : 0x00;
	if (kbd.led == LED_IDLE) {
		data_write(0xED);
		kbd.led = LED_WAIT_COMMAND_ACK;
	}
}

static void decode(uint8_t b)
{
	bool up = b & 0x80, ext = kbd.e0;
	uint8_t code = b & 0x7F;
	char c;

	rt_printf("keyboard: scancode %02x\n", b);
	if (b == 0xFA && kbd.led != LED_IDLE) { /* the LED command's acknowledgements */
		if (kbd.led == LED_WAIT_COMMAND_ACK) {
			data_write(kbd.leds);
			kbd.led = LED_WAIT_VALUE_ACK;
		} else {
			kbd.led = LED_IDLE;
			rt_printf("keyboard: leds %x\n", kbd.leds);
		}
		return;
	}
	if (kbd.pause_left) {
		kbd.pause_left--;
		return;
	}
	if (b == 0xE1) {
		kbd.pause_left = 5;
		rt_printf("keyboard: key pause\n");
		return;
	}
	if (b == 0xE0) {
		kbd.e0 = true;
		return;
	}
	kbd.e0 = false;
	if (ext && code != 0x1C && code != 0x35) {	 /* all but keypad Enter and '/' */
		if (!up && code != 0x2A && code != 0x36) /* not the fake shifts */
			rt_printf("keyboard: key e0 %02x\n", code);
		return;
	}
	switch (code) {
	case 0x2A: kbd.shift_l = !up; return;
	case 0x36: kbd.shift_r = !up; return;
	case 0x3A:
		if (!up)
			caps_lock();
		return;
	}
	if (up)
		return;
	if (code == 0x1C) {
		end_line();
		return;
	}
	if (code == 0x0E) {
		if (kbd.len)
			kbd.len--;
		return;
	}
	if (code >= sizeof(plain))
		return;
	c = (kbd.shift_l || kbd.shift_r ? shifted : plain)[code];
	if (kbd.caps && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
		c ^= 0x20;
	if (c && kbd.len < sizeof(kbd.line) - 1)
		kbd.line[kbd.len++] = c;
}

void guest_main(void)
{
	init_keyboard();
	rt_printf("keyboard: ready\n");
	for (;;) {
		irq_disable();
		if (ring_tail == ring_head)
			halt(); /* sti; hlt: no wake-up lost in between */
		else
			irq_enable();
		while (ring_tail != ring_head)
			decode(ring[ring_tail++ % sizeof(ring)]);
	}
}
