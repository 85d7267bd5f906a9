/* Serial test guest: prints a greeting, then echoes each line received on COM1 through
 * the receive interrupt (IRQ 4 via the IOAPIC) as "echo: <line>"; "done" ends the test.
 * The interrupt handler only fills a ring; the main loop takes lines out of it with
 * interrupts off and sleeps with "sti; hlt", so no byte and no wake-up is lost. */
#include "rt.h"

#define VEC_COM1 0x24
#define RING	 1024

static volatile char ring[RING];
static volatile unsigned ring_head, ring_tail; /* written by the handler / main loop */

static void com1_irq(uint8_t vector)
{
	(void)vector;
	while (inb(0x3F8 + 5) & 0x01) {
		char c = (char)inb(0x3F8);

		if (ring_head - ring_tail < RING)
			ring[ring_head++ % RING] = c;
	}
	rt_lapic_eoi();
}

/* Copies the next complete line (without its terminator) into line; false if none. */
static bool take_line(char *line, unsigned max)
{
	for (unsigned i = ring_tail; i != ring_head; i++) {
		char c = ring[i % RING];

		if (c != '\n' && c != '\r')
			continue;
		unsigned n = 0;
		for (unsigned j = ring_tail; j != i; j++)
			if (n < max - 1)
				line[n++] = ring[j % RING];
		line[n] = '\0';
		ring_tail = i + 1;
		return true;
	}
	return false;
}

void guest_main(void)
{
	char line[128];

	rt_printf("serial: hello from the test guest, cmdline '%s', entry %s\n", rt_cmdline(),
		  boot_info_is_pvh ? "pvh" : "64-bit");
	rt_lapic_enable();
	rt_set_handler(VEC_COM1, com1_irq);
	rt_ioapic_route(4, VEC_COM1, false);
	outb(0x3F8 + 4, 0x08); /* MCR: OUT2 gates the interrupt line */
	outb(0x3F8 + 1, 0x01); /* IER: received data available */
	rt_printf("serial: ready\n");
	for (;;) {
		irq_disable();
		if (!take_line(line, sizeof(line))) {
			halt(); /* sti; hlt: an interrupt between the two still wakes us */
			continue;
		}
		irq_enable();
		if (!line[0])
			continue;
		rt_printf("echo: %s\n", line);
		if (!memcmp(line, "done", 5))
			rt_pass("serial");
	}
}
