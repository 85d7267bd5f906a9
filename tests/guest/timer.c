/* Timer test guest: programs the in-kernel PIT (channel 0, rate generator at 100 Hz),
 * routes ISA IRQ 0 through the IOAPIC as the MP table describes, and passes after 20
 * interrupts; it also checks the CMOS clock answers with a plausible BCD date. */
#include "rt.h"

#define VEC_TIMER 0x30

static volatile unsigned ticks;

static void timer_irq(uint8_t vector)
{
	(void)vector;
	ticks++;
	rt_lapic_eoi();
}

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

void guest_main(void)
{
	uint16_t divisor = 11932; /* 1193182 Hz / 100 */
	uint8_t year = cmos(0x09), century = cmos(0x32), month = cmos(0x08);

	rt_printf("timer: CMOS date %x%02x-%02x\n", century, year, month);
	if (century != 0x20 || month == 0 || month > 0x12)
		rt_fail("timer", "implausible CMOS date");
	rt_lapic_enable();
	rt_set_handler(VEC_TIMER, timer_irq);
	rt_ioapic_route(0, VEC_TIMER, false);
	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
	outb(0x40, divisor & 0xFF);
	outb(0x40, divisor >> 8);
	irq_enable();
	for (unsigned spins = 0; ticks < 20; spins++) {
		halt();
		if (spins > 100000)
			rt_fail("timer", "only %u ticks", ticks);
	}
	rt_printf("timer: %u ticks\n", ticks);
	rt_pass("timer");
}
