/* Runtime of the freestanding test guests: port and MMIO access, polled COM1 output,
 * a small printf, interrupts (IDT, local APIC, IOAPIC), and the verdict. A guest
 * defines guest_main() and ends with rt_pass() or rt_fail(), which print a line the
 * host test reads and reset the machine (vdi-hv then exits 0). */
#ifndef RT_H
#define RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void guest_main(void);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}
static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}
static inline void irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}
static inline void irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}
static inline void halt(void)
{
	__asm__ volatile("sti; hlt" ::: "memory");
}

void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Polled output on COM1. */
void rt_putc(char c);
void rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Polled input from COM1: returns -1 when no byte is waiting. */
int rt_getc(void);

/* Prints "PASS <what>" or "FAIL <what>: <reason>" and resets the machine. */
__attribute__((noreturn)) void rt_pass(const char *what);
__attribute__((noreturn, format(printf, 2, 3))) void rt_fail(const char *what, const char *fmt,
							     ...);
/* Resets through the i8042 (command 0xFE). */
__attribute__((noreturn)) void rt_reset(void);

/* Interrupts: the IDT is loaded before guest_main(); exceptions are fatal. */
void rt_set_handler(uint8_t vector, void (*fn)(uint8_t vector));
void rt_lapic_enable(void);
void rt_lapic_eoi(void);
uint32_t rt_lapic_id(void);
/* Routes IOAPIC pin gsi to vector on APIC 0. */
void rt_ioapic_route(unsigned gsi, uint8_t vector, bool level);

/* Where the loader left boot information: start_info (PVH) or boot_params. */
extern uint64_t boot_info_ptr;
extern uint32_t boot_info_is_pvh;
/* The command line passed by the loader, or "" when none. */
const char *rt_cmdline(void);

#endif
