/* Mouse test guest: brings up the i8042's mouse port the way Linux's psmouse does
 * (port enable and test, reset, id, the IntelliMouse knock 200/100/80 and id 3, stream
 * on), takes IRQ 12 through the IOAPIC and decodes 4-byte packets, printing
 * "mouse: dx=.. dy=.. dz=.. buttons=.." in screen terms (dy down, dz up). It first loops
 * one packet back through the controller (0xD3) to check the path end to end; the line
 * "done" on the serial console passes. */
#include "i8042.h"
#include "rt.h"

#define VEC_MOUSE  0x2C
#define VEC_COM1   0x24
#define COM1	   0x3F8
#define POLL_LIMIT 10000

static struct i8042_ring packets;
static volatile char line[16];
static volatile unsigned line_len;
static volatile bool line_ready;

static void mouse_irq(uint8_t vector)
{
	(void)vector;
	i8042_drain(NULL, &packets);
	rt_lapic_eoi();
}

static void com1_irq(uint8_t vector)
{
	(void)vector;
	while (inb(COM1 + 5) & 0x01) {
		char c = (char)inb(COM1);

		if (line_ready)
			continue;
		if (c == '\r' || c == '\n')
			line_ready = line_len > 0;
		else if (line_len < sizeof(line) - 1)
			line[line_len++] = c;
	}
	rt_lapic_eoi();
}

/* A byte to the mouse (0xD4) and its acknowledgement. */
static void mouse_command(uint8_t b)
{
	i8042_write_aux(b);
	i8042_want("mouse ack", 0xFA);
}

static void init_mouse(void)
{
	uint8_t ctr = I8042_CTR_XLATE | I8042_CTR_SYS | I8042_CTR_KBD_DIS;
	static const uint8_t knock[] = {200, 100, 80};

	i8042_init("mouse", POLL_LIMIT);
	i8042_flush();
	i8042_command(0xAA);
	i8042_want("controller self-test", 0x55);
	i8042_write_ctr(ctr); /* keyboard off, mouse interrupt off while polling */
	i8042_command(0xA8);
	i8042_command(0xA9);
	i8042_want("mouse port test", 0x00);
	mouse_command(0xFF);
	i8042_want("mouse self-test", 0xAA);
	i8042_want("mouse id after reset", 0x00);
	mouse_command(0xF2);
	i8042_want("mouse id", 0x00);
	for (unsigned i = 0; i < sizeof(knock); i++) {
		mouse_command(0xF3);
		mouse_command(knock[i]);
	}
	mouse_command(0xF2);
	i8042_want("IntelliMouse id", 0x03);
	mouse_command(0xE8);
	mouse_command(0x03);
	mouse_command(0xE6);
	mouse_command(0xF4);

	rt_lapic_enable();
	rt_set_handler(VEC_MOUSE, mouse_irq);
	rt_ioapic_route(12, VEC_MOUSE, false);
	rt_set_handler(VEC_COM1, com1_irq);
	rt_ioapic_route(4, VEC_COM1, false);
	outb(COM1 + 4, 0x08); /* MCR: OUT2 gates the interrupt line */
	outb(COM1 + 1, 0x01); /* IER: received data available */
	i8042_write_ctr(ctr | I8042_CTR_AUX_INT);
	irq_enable();
}

static struct {
	uint8_t bytes[4];
	unsigned have;
} packet;

static void decode(uint8_t b)
{
	int dx, dy, dz;

	if (packet.have == 0 && !(b & 0x08))
		return; /* out of step: wait for a first byte */
	packet.bytes[packet.have++] = b;
	if (packet.have < 4)
		return;
	packet.have = 0;
	dx = packet.bytes[1] - ((packet.bytes[0] << 4) & 0x100);
	dy = packet.bytes[2] - ((packet.bytes[0] << 3) & 0x100);
	dz = (int8_t)packet.bytes[3];
	rt_printf("mouse: dx=%d dy=%d dz=%d buttons=%u\n", dx, -dy, -dz, packet.bytes[0] & 0x07u);
}

void guest_main(void)
{
	/* Left button, 5 right, 3 down (PS/2 counts y up), one wheel click down. */
	static const uint8_t looped[] = {0x29, 0x05, 0xFD, 0x01};

	init_mouse();
	rt_printf("mouse: ready id=3\n");
	for (unsigned i = 0; i < sizeof(looped); i++) {
		i8042_command(0xD3);
		i8042_write(looped[i]);
	}
	for (;;) {
		int b;

		irq_disable();
		if (i8042_ring_empty(&packets) && !line_ready)
			halt();
		else
			irq_enable();
		while ((b = i8042_ring_get(&packets)) >= 0)
			decode((uint8_t)b);
		if (line_ready) {
			if (line_len == 4 && !memcmp((const char *)line, "done", 4))
				rt_pass("mouse");
			line_len = 0;
			line_ready = false;
		}
	}
}
