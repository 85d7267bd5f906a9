/* SMP test guest: finds the vCPUs in the MP table (checking both checksums), starts
 * every application processor with INIT-SIPI-SIPI through a real-mode trampoline at
 * 0x8000 that climbs to long mode on the BSP's page tables, and passes once each AP
 * has reported its APIC id. The command line "cpus=N" says how many to expect. */
#include "rt.h"

#define TRAMPOLINE 0x8000ULL
#define LAPIC	   0xFEE00000ULL
#define MAX_CPUS   16

extern const uint8_t ap_tramp_start[], ap_tramp_end[], ap_gdt_desc[], ap_cr3[], ap_stack[];

volatile uint32_t ap_seen[MAX_CPUS];
static uint8_t ap_stacks[MAX_CPUS][4096] __attribute__((aligned(16)));

void ap_main(void);
void ap_main(void)
{
	uint32_t id = rt_lapic_id();

	if (id < MAX_CPUS)
		__atomic_store_n(&ap_seen[id], 1, __ATOMIC_SEQ_CST);
	for (;;)
		__asm__ volatile("cli; hlt");
}

__asm__(".code16\n"
	".globl ap_tramp_start, ap_tramp_end, ap_gdt_desc, ap_cr3, ap_stack\n"
	"ap_tramp_start:\n"
	"	cli\n"
	"	mov %cs, %ax\n"
	"	mov %ax, %ds\n"
	"	lgdtl (ap_gdt_desc - ap_tramp_start)\n"
	"	mov %cr0, %eax\n"
	"	or $1, %eax\n"
	"	mov %eax, %cr0\n"
	"	ljmpl $0x18, $(0x8000 + ap_pm - ap_tramp_start)\n"
	".code32\n"
	"ap_pm:\n"
	"	mov $0x10, %ax\n"
	"	mov %ax, %ds\n"
	"	mov %ax, %es\n"
	"	mov %ax, %ss\n"
	"	mov (0x8000 + ap_cr3 - ap_tramp_start), %eax\n"
	"	mov %eax, %cr3\n"
	"	mov %cr4, %eax\n"
	"	or $0x20, %eax\n"
	"	mov %eax, %cr4\n"
	"	mov $0xC0000080, %ecx\n"
	"	rdmsr\n"
	"	or $0x100, %eax\n"
	"	wrmsr\n"
	"	mov %cr0, %eax\n"
	"	or $0x80000000, %eax\n"
	"	mov %eax, %cr0\n"
	"	ljmp $0x08, $ap_long\n"
	"	.balign 8\n"
	"ap_gdt_desc: .word 0\n .long 0\n .word 0\n"
	"ap_cr3: .long 0\n"
	"ap_stack: .quad 0\n"
	"ap_tramp_end:\n"
	".code64\n"
	"ap_long:\n"
	"	mov (0x8000 + ap_stack - ap_tramp_start), %rsp\n"
	"	call ap_main\n");

static unsigned mptable_cpus(void)
{
	for (uint64_t p = 0xF0000; p < 0x100000; p += 16) {
		const uint8_t *mpf = (const uint8_t *)p;
		uint8_t sum = 0;

		if (memcmp(mpf, "_MP_", 4))
			continue;
		for (int i = 0; i < 16; i++)
			sum += mpf[i];
		if (sum)
			rt_fail("smp", "MP floating pointer checksum");
		const uint8_t *hdr = (const uint8_t *)(uint64_t) * (const uint32_t *)(mpf + 4);
		uint16_t len = *(const uint16_t *)(hdr + 4), count = *(const uint16_t *)(hdr + 34);
		sum = 0;
		for (int i = 0; i < len; i++)
			sum += hdr[i];
		if (memcmp(hdr, "PCMP", 4) || sum)
			rt_fail("smp", "MP configuration table signature or checksum");
		unsigned cpus = 0;
		const uint8_t *e = hdr + 44;
		for (unsigned i = 0; i < count; i++) {
			if (e[0] == 0) {
				cpus++;
				e += 20;
			} else {
				e += 8;
			}
		}
		return cpus;
	}
	rt_fail("smp", "no MP table");
}

static unsigned expected_cpus(void)
{
	const char *c = rt_cmdline();

	for (; *c; c++)
		if (!memcmp(c, "cpus=", 5))
			return (unsigned)(c[5] - '0');
	return 1;
}

static void delay(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		cpu_relax();
}

static void send_ipi(uint32_t apic, uint32_t low)
{
	mmio_write32(LAPIC + 0x310, apic << 24);
	mmio_write32(LAPIC + 0x300, low);
	for (int i = 0; i < 100000 && (mmio_read32(LAPIC + 0x300) & (1u << 12)); i++)
		cpu_relax();
}

void guest_main(void)
{
	unsigned want = expected_cpus(), cpus = mptable_cpus();
	uint64_t cr3;
	uint8_t *tramp = (uint8_t *)TRAMPOLINE;
	size_t len = (size_t)(ap_tramp_end - ap_tramp_start);
	extern uint8_t gdt[];

	rt_printf("smp: MP table lists %u CPUs, expecting %u\n", cpus, want);
	if (cpus != want || want > MAX_CPUS)
		rt_fail("smp", "MP table lists %u CPUs, not %u", cpus, want);
	rt_lapic_enable();
	memcpy(tramp, ap_tramp_start, len);
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	*(uint16_t *)(tramp + (ap_gdt_desc - ap_tramp_start)) = 4 * 8 - 1;
	*(uint32_t *)(tramp + (ap_gdt_desc - ap_tramp_start) + 2) = (uint32_t)(uint64_t)gdt;
	*(uint32_t *)(tramp + (ap_cr3 - ap_tramp_start)) = (uint32_t)cr3;

	for (uint32_t apic = 1; apic < cpus; apic++) {
		*(uint64_t *)(tramp + (ap_stack - ap_tramp_start)) =
		    (uint64_t)&ap_stacks[apic][4096];
		send_ipi(apic, 0x4500); /* INIT */
		delay(1000);
		send_ipi(apic, 0x4600 | (TRAMPOLINE >> 12)); /* STARTUP */
		delay(1000);
		if (!ap_seen[apic])
			send_ipi(apic, 0x4600 | (TRAMPOLINE >> 12));
		for (unsigned spin = 0; !ap_seen[apic]; spin++) {
			if (spin > 200000000)
				rt_fail("smp", "AP %u never reported", apic);
			cpu_relax();
		}
		rt_printf("smp: AP with APIC id %u is running\n", apic);
	}
	rt_pass("smp");
}
