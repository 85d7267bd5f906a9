/* Serial test guest: prints a greeting, then echoes each line received on COM1 through
 * the receive interrupt (IRQ 4 via the IOAPIC) as "echo: <line>"; "done" ends the test. */
#include "rt.h"

#define VEC_COM1 0x24

static volatile char line[128];
static volatile unsigned line_len;
static volatile bool line_ready;

static void com1_irq(uint8_t vector)
{
	(void)vector;
	while (inb(0x3F8 + 5) & 0x01) {
		char c = (char)inb(0x3F8);

		if (line_ready)
			continue;
		if (c == '\r' || c == '\n') {
			if (line_len)
				line_ready = true;
		} else if (line_len < sizeof(line) - 1) {
			line[line_len++] = c;
		}
	}
	rt_lapic_eoi();
}

void guest_main(void)
{
	rt_printf("serial: hello from the test guest, cmdline '%s', entry %s\n", rt_cmdline(),
		  boot_info_is_pvh ? "pvh" : "64-bit");
	rt_lapic_enable();
	rt_set_handler(VEC_COM1, com1_irq);
	rt_ioapic_route(4, VEC_COM1, false);
	outb(0x3F8 + 4, 0x08); /* MCR: OUT2 gates the interrupt line */
	outb(0x3F8 + 1, 0x01); /* IER: received data available */
	rt_printf("serial: ready\n");
	for (;;) {
		halt();
		if (!line_ready)
			continue;
		line[line_len] = '\0';
		rt_printf("echo: %s\n", (const char *)line);
		if (line_len == 4 && !memcmp((const char *)line, "done", 4))
			rt_pass("serial");
		line_len = 0;
		line_ready = false;
	}
}
