/* Speed probe guest: prints "speed: start", runs a fixed busy loop (the count comes
 * from the command line, "loops=N" in thousands, default 100), then "speed: end". The
 * host times the gap to learn whether KVM runs at hardware speed here. */
#include "rt.h"

static unsigned loops_thousands(void)
{
	const char *c = rt_cmdline();
	unsigned n = 0;

	for (; *c; c++)
		if (!memcmp(c, "loops=", 6)) {
			for (c += 6; *c >= '0' && *c <= '9'; c++)
				n = n * 10 + (unsigned)(*c - '0');
			return n;
		}
	return 100;
}

void guest_main(void)
{
	uint64_t n = (uint64_t)loops_thousands() * 1000;

	rt_printf("speed: start\n");
	for (volatile uint64_t i = 0; i < n; i++)
		;
	rt_printf("speed: end\n");
	rt_pass("speed");
}
