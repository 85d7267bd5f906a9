/* Keyboard test guest: brings up the i8042 and the keyboard the way Linux does (flush,
 * self-test, command byte, keyboard reset and id, LEDs, scanning on), then takes IRQ 1
 * through the IOAPIC and decodes set-1 scan codes: "keyboard: scancode XX" for every
 * byte, "keyboard: line <text>" for every Enter; the line "done" passes. Caps Lock
 * sends the LED command while keys keep coming, as atkbd does. */
#include "i8042.h"
#include "rt.h"
#include "scancode.h"

#define VEC_KBD	   0x21
#define POLL_LIMIT 10000 /* status reads before giving up (slow KVM: ~1 ms each) */

static struct i8042_ring keys;

static void kbd_irq(uint8_t vector)
{
	(void)vector;
	i8042_drain(&keys, NULL);
	rt_lapic_eoi();
}

static void init_keyboard(void)
{
	uint8_t ctr = I8042_CTR_XLATE | I8042_CTR_SYS | I8042_CTR_AUX_DIS;

	i8042_init("keyboard", POLL_LIMIT);
	i8042_flush();
	i8042_command(0xAA);
	i8042_want("controller self-test", 0x55);
	i8042_write_ctr(ctr); /* keyboard port on, interrupts off while polling */
	i8042_command(0x20);
	if (i8042_read() != ctr)
		rt_fail("keyboard", "command byte did not stick");
	i8042_command(0xAB);
	i8042_want("keyboard interface test", 0x00);
	i8042_write(0xFF);
	i8042_want("reset ack", 0xFA);
	i8042_want("reset self-test", 0xAA);
	i8042_write(0xF2);
	i8042_want("get id ack", 0xFA);
	i8042_want("id byte 1", 0xAB);
	i8042_want("id byte 2 (translated)", 0x41);
	i8042_write(0xED);
	i8042_want("set leds ack", 0xFA);
	i8042_write(0x00);
	i8042_want("leds ack", 0xFA);
	i8042_write(0xF4);
	i8042_want("enable ack", 0xFA);

	rt_lapic_enable();
	rt_set_handler(VEC_KBD, kbd_irq);
	rt_ioapic_route(1, VEC_KBD, false);
	i8042_write_ctr(ctr | I8042_CTR_KBD_INT);
	irq_enable();
}

enum led_state { LED_IDLE, LED_WAIT_COMMAND_ACK, LED_WAIT_VALUE_ACK };

static struct {
	bool shift_l, shift_r, caps, e0;
	unsigned pause_left; /* bytes of the Pause sequence still to skip */
	enum led_state led;
	uint8_t leds;
	bool pass_after_leds; /* "done" was typed while a LED command was under way */
	char line[128];
	unsigned len;
} kbd;

static void end_line(void)
{
	kbd.line[kbd.len] = '\0';
	rt_printf("keyboard: line %s\n", kbd.line);
	/* A LED command may still wait for its acknowledgement, queued behind the keys
	 * typed before it: pass once it has come. */
	if (kbd.len == 4 && !memcmp(kbd.line, "done", 4)) {
		if (kbd.led == LED_IDLE)
			rt_pass("keyboard");
		else
			kbd.pass_after_leds = true;
	}
	kbd.len = 0;
}

static void caps_lock(void)
{
	kbd.caps = !kbd.caps;
	kbd.leds = kbd.caps ? 0x04 : 0x00;
	if (kbd.led == LED_IDLE) {
		i8042_write(0xED);
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
			i8042_write(kbd.leds);
			kbd.led = LED_WAIT_VALUE_ACK;
		} else {
			kbd.led = LED_IDLE;
			rt_printf("keyboard: leds %x\n", kbd.leds);
			if (kbd.pass_after_leds)
				rt_pass("keyboard");
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
	c = scancode_char(code, kbd.shift_l || kbd.shift_r, kbd.caps);
	if (c && kbd.len < sizeof(kbd.line) - 1)
		kbd.line[kbd.len++] = c;
}

void guest_main(void)
{
	init_keyboard();
	rt_printf("keyboard: ready\n");
	for (;;) {
		int b;

		irq_disable();
		if (i8042_ring_empty(&keys))
			halt(); /* sti; hlt: no wake-up lost in between */
		else
			irq_enable();
		while ((b = i8042_ring_get(&keys)) >= 0)
			decode((uint8_t)b);
	}
}
