/* Runtime of the test guests: see rt.h. Freestanding: no libc, no SSE. */
#include "rt.h"

#include <stdarg.h>

#define COM1   0x3F8
#define LAPIC  0xFEE00000ULL
#define IOAPIC 0xFEC00000ULL

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

extern const uint64_t isr_table[256];
static struct idt_entry idt[256] __attribute__((aligned(16)));
static void (*handlers[256])(uint8_t);

void *memset(void *s, int c, size_t n)
{
	uint8_t *p = s;
	while (n--)
		*p++ = (uint8_t)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

void rt_putc(char c)
{
	if (c == '\n')
		rt_putc('\r');
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		cpu_relax();
	outb(COM1, (uint8_t)c);
}

int rt_getc(void)
{
	if (!(inb(COM1 + 5) & 0x01))
		return -1;
	return inb(COM1);
}

static void put_unsigned(uint64_t v, unsigned base, int width, char pad)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n < width--)
		rt_putc(pad);
	while (n)
		rt_putc(buf[--n]);
}

static void vprint(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int width = 0, lng = 0;
		char pad = ' ';

		if (*fmt != '%') {
			rt_putc(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l')
			lng = 1, fmt++;
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			if (v < 0)
				rt_putc('-'), v = -v;
			put_unsigned((uint64_t)v, 10, width, pad);
			break;
		}
		case 'u':
			put_unsigned(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width,
				     pad);
			break;
		case 'x':
			put_unsigned(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width,
				     pad);
			break;
		case 'p': put_unsigned((uint64_t)va_arg(ap, void *), 16, 0, ' '); break;
		case 'c': rt_putc((char)va_arg(ap, int)); break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			while (*s)
				rt_putc(*s++);
			break;
		}
		case '%': rt_putc('%'); break;
		default: rt_putc('?');
		}
	}
}

void rt_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

void rt_reset(void)
{
	irq_disable();
	for (;;) {
		for (int i = 0; i < 100000 && (inb(0x64) & 0x02); i++)
			cpu_relax();
		outb(0x64, 0xFE);
		__asm__ volatile("hlt");
	}
}

void rt_pass(const char *what)
{
	rt_printf("PASS %s\n", what);
	rt_reset();
}

void rt_fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	rt_printf("FAIL %s: ", what);
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	rt_putc('\n');
	rt_reset();
}

void rt_interrupt(uint64_t vector, uint64_t error, uint64_t rip);
void rt_interrupt(uint64_t vector, uint64_t error, uint64_t rip)
{
	if (handlers[vector]) {
		handlers[vector]((uint8_t)vector);
		return;
	}
	if (vector < 32)
		rt_fail("exception", "vector %u error %lx rip %lx", (unsigned)vector, error, rip);
	rt_printf("spurious interrupt %u\n", (unsigned)vector);
	rt_lapic_eoi();
}

void rt_set_handler(uint8_t vector, void (*fn)(uint8_t vector))
{
	handlers[vector] = fn;
}

void rt_lapic_enable(void)
{
	mmio_write32(LAPIC + 0xF0, 0x1FF); /* spurious vector 0xFF, APIC enabled */
	mmio_write32(LAPIC + 0x80, 0);	   /* task priority: accept all */
}

void rt_lapic_eoi(void)
{
	mmio_write32(LAPIC + 0xB0, 0);
}

uint32_t rt_lapic_id(void)
{
	return mmio_read32(LAPIC + 0x20) >> 24;
}

void rt_ioapic_route(unsigned gsi, uint8_t vector, bool level)
{
	uint32_t lo = vector | (level ? 1u << 15 : 0);

	mmio_write32(IOAPIC, 0x10 + 2 * gsi + 1);
	mmio_write32(IOAPIC + 0x10, 0); /* destination APIC 0 */
	mmio_write32(IOAPIC, 0x10 + 2 * gsi);
	mmio_write32(IOAPIC + 0x10, lo);
}

const char *rt_cmdline(void)
{
	uint64_t p = 0;

	if (!boot_info_ptr)
		return "";
	if (boot_info_is_pvh)
		p = *(uint64_t *)(boot_info_ptr + 24); /* start_info.cmdline_paddr */
	else
		p = *(uint32_t *)(boot_info_ptr + 0x228) |		   /* hdr.cmd_line_ptr */
		    (uint64_t) * (uint32_t *)(boot_info_ptr + 0xC8) << 32; /* ext_cmd_line_ptr */
	return p ? (const char *)p : "";
}

void rt_start(void);
void rt_start(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64_t)idt};

	for (int i = 0; i < 256; i++) {
		uint64_t a = isr_table[i];
		idt[i] = (struct idt_entry){(uint16_t)a,	 0x08, 0, 0x8E, (uint16_t)(a >> 16),
					    (uint32_t)(a >> 32), 0};
	}
	__asm__ volatile("lidt %0" : : "m"(idtr));
	/* Keep the legacy PIC out of the way: interrupts come through the IOAPIC. */
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
	guest_main();
	rt_fail("guest", "guest_main returned");
}
