/* Crash test guest: loads an empty IDT and raises an exception, which the CPU cannot
 * deliver: a triple fault. vdi-hv must exit non-zero with a register dump. */
#include "rt.h"

void guest_main(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = {0, 0};

	rt_printf("triplefault: about to fault\n");
	__asm__ volatile("lidt %0; int3" : : "m"(empty));
	rt_fail("triplefault", "still running");
}
